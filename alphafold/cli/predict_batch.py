"""``alphafold predict-batch``: serve a directory of processed-feature files through Ray fold workers.

    alphafold predict-batch FEATURES_DIR --output-dir OUT --params-dir DIR [--preset NAME]
        [--tp P | --max-tp P --memory-budget-gb G] [--ray-address ADDR] [--num-actors K]

Each ``FEATURES_DIR/<target>.npz`` becomes ``OUT/<target>.npz`` (model outputs, written atomically by the
worker); a target whose output already exists is skipped unless ``--overwrite``. ``OUT/predict_batch.json``
records each target's status, gang size, attempts and error. Targets are routed to a single actor or a
gang of P actors sharing the pair representation: ``--tp P`` forces P for every target; otherwise the
memory model picks the smallest P <= ``--max-tp`` that fits ``--memory-budget-gb`` per device. A local
Ray is started (loopback only) unless ``--ray-address`` names a running cluster; joining it is bounded by
``--connect-timeout`` (an address where no Ray answers is an error, never an endless wait).
Exit code 0 when every target is done or skipped, 1 when any failed or was refused, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from alphafold.cli.argtypes import (
    chunk_size,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from alphafold.errors import UserError
from alphafold.io_utils import write_text_atomic

if TYPE_CHECKING:  # torch is imported only when a subcommand runs
    from alphafold.model.options import RuntimeOptions
    from alphafold.runtime.routing import RoutingPolicy

log = logging.getLogger(__name__)

# Local Ray on one machine stays on loopback with these (DESIGN.md); an existing cluster keeps its own.
# They replace the user's values (a site proxy in http_proxy would otherwise carry Ray's metadata probe off
# the machine); nothing a local batch does needs the network.
LOCAL_RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "GLOO_SOCKET_IFNAME": "lo",
    "http_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "no_proxy": "127.0.0.1,localhost,::1",
    "NO_PROXY": "127.0.0.1,localhost,::1",
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict-batch", help="predict a directory of processed-feature files with Ray actors",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("features_dir", help="directory of processed-feature files <target>.npz")
    p.add_argument("--output-dir", required=True, help="directory for <target>.npz outputs")
    p.add_argument("--params-dir", required=True, help="directory holding params_<preset>.npz")
    p.add_argument("--preset", help="params preset, e.g. model_1_ptm (default: the only params file)")
    p.add_argument("--tp", type=positive_int, help="gang size P for every target (default: route by memory)")
    p.add_argument("--max-tp", type=positive_int, default=1, help="largest gang when routing by memory")
    p.add_argument("--memory-budget-gb", type=positive_float, default=16.0,
                   help="memory per device (GB, 10^9 bytes): routing and 'auto' chunking plan with it")
    p.add_argument("--ray-address", help="join this Ray cluster (HOST:PORT of its head) instead of starting "
                                         "a local one")
    p.add_argument("--connect-timeout", type=positive_float, default=60.0,
                   help="seconds to wait for the cluster at --ray-address to answer")
    p.add_argument("--num-cpus", type=positive_int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--num-actors", type=positive_int, default=1, help="single actors serving short targets")
    p.add_argument("--cpus-per-rank", type=non_negative_float, default=1.0)
    p.add_argument("--gpus-per-rank", type=non_negative_float, default=0.0, help="> 0 runs on CUDA with NCCL")
    p.add_argument("--num-recycle", type=non_negative_int, help="recycles (default: what the features carry)")
    p.add_argument("--chunk-size", type=chunk_size, default="auto",
                   help="rows per chunk: an int, 'none' or 'auto'")
    p.add_argument("--max-attempts", type=positive_int, default=3, help="tries per target when a worker dies")
    p.add_argument("--timeout", type=positive_float, default=600.0,
                   help="seconds to place and form a gang; also the longest a rank waits for the others in "
                        "one collective")
    p.add_argument("--overwrite", action="store_true", help="predict targets whose output exists")
    p.set_defaults(func=run)


def _params_file(params_dir: Path, preset: str | None) -> Path:
    if not params_dir.is_dir():
        raise UserError(str(params_dir), "is not a directory")
    if preset:
        path = params_dir / f"params_{preset}.npz"
        if not path.is_file():
            raise UserError(str(path), f"no params file for preset {preset!r}")
        return path
    found = sorted(params_dir.glob("params_*.npz"))
    if len(found) != 1:
        raise UserError(str(params_dir), f"holds {len(found)} params_*.npz files; choose one with --preset")
    return found[0]


def cpus_per_rank(requested: float, num_cpus: int | None, largest_gang: int) -> float:
    """CPUs each rank reserves: as requested, but never so many that the largest gang cannot be placed on
    a local Ray of ``num_cpus`` CPUs (a gang waiting for CPUs that do not exist only times out)."""
    if num_cpus is None:
        return requested
    return min(requested, num_cpus / max(largest_gang, 1))


def runtime_options(args: argparse.Namespace) -> RuntimeOptions:
    """The workers' options. Their "auto" chunking plans with the per-device budget the router uses, not
    with the host's free memory, which every actor on a host would count as its own."""
    from alphafold.model.options import RuntimeOptions

    return RuntimeOptions(chunk_size=args.chunk_size, num_recycle=args.num_recycle,
                          device="cuda" if args.gpus_per_rank > 0 else "cpu",
                          memory_budget_gb=args.memory_budget_gb)


def routing_policy(args: argparse.Namespace, params: Path) -> RoutingPolicy:
    """What the router plans with: the per-device budget, every rank's weights (the params file) and its
    process base (:data:`~alphafold.runtime.routing.PROCESS_BASE_BYTES`, which the memory model is
    calibrated with), at the chunk size the workers run: unchunked for 'none', 4 (DeepMind's subbatch) for
    'auto', which plans its chunks within the same budget."""
    from alphafold.runtime.routing import PROCESS_BASE_BYTES, RoutingPolicy

    chunk = 4 if args.chunk_size == "auto" else args.chunk_size
    return RoutingPolicy(budget_bytes=int(args.memory_budget_gb * 1e9), max_tp=args.max_tp,
                         weights_bytes=params.stat().st_size, base_bytes=PROCESS_BASE_BYTES, chunk_size=chunk)


def run(args: argparse.Namespace) -> int:
    from alphafold.parallel.group import ParallelConfig
    from alphafold.runtime.driver import Driver
    from alphafold.runtime.factory import PredictorFactory
    from alphafold.runtime.gang import GangOptions
    from alphafold.runtime.routing import choose_tp
    from alphafold.runtime.targets import discover_targets, npz_shapes, target_shape

    out_dir = Path(args.output_dir)
    params = _params_file(Path(args.params_dir), args.preset)
    npz_shapes(params)  # an unreadable params file is named here, not by every worker's load
    targets = discover_targets(args.features_dir, out_dir)
    todo = [t for t in targets if args.overwrite or not Path(t.output_path).exists()]
    skipped = [t.name for t in targets if t not in todo]
    for name in skipped:
        log.info("%s: output exists, skipped", name)
    options = runtime_options(args)
    factory = PredictorFactory(str(params), args.preset, options)
    if args.tp is not None:
        def route(target):
            return args.tp
    else:
        policy = routing_policy(args, params)

        def route(target):
            return choose_tp(target_shape(target), policy)

    reports = {}
    if todo:
        local_cpus = None if args.ray_address else args.num_cpus
        cpus = cpus_per_rank(args.cpus_per_rank, local_cpus, args.tp or args.max_tp)
        gang_options = GangOptions(cpus_per_rank=cpus, gpus_per_rank=args.gpus_per_rank,
                                   timeout_s=args.timeout, parallel=ParallelConfig(device=options.device))
        reports = _with_ray(args, lambda: Driver(factory, route, gang_options, args.max_attempts,
                                                 args.num_actors).run(todo))
    summary = {name: {"status": "skipped", "output": str(out_dir / f"{name}.npz")} for name in skipped}
    for name, report in reports.items():
        summary[name] = {"status": report.status, "tp": report.tp, "attempts": report.attempts,
                         "seconds": round(report.seconds, 3), "error": report.error, "pids": report.pids,
                         "output": str(out_dir / f"{name}.npz")}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "predict_batch.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    bad = sorted(n for n, s in summary.items() if s["status"] not in ("done", "skipped"))
    log.info("%d done, %d skipped, %d failed or refused; summary in %s",
             sum(s["status"] == "done" for s in summary.values()), len(skipped), len(bad),
             out_dir / "predict_batch.json")
    for name in bad:
        log.error("%s: %s: %s", name, summary[name]["status"], summary[name]["error"])
    return 1 if bad else 0


# A local Ray's temporary directory: /tmp/afray-<pid of this command>-<random>. Short, because Ray's socket
# paths are length-limited; named by the pid, so a later run can tell one whose command was killed (kill -9,
# a cancelled SLURM job: nothing removed it) from one still in use. The "-" around the pid is a character
# mkdtemp's random part never holds, so no other afray* directory (e.g. a plain mkdtemp(prefix="afray"))
# can be mistaken for one of these.
RAY_TEMP_PREFIX = "afray-"
_RAY_TEMP_NAME = re.compile(rf"{RAY_TEMP_PREFIX}(\d+)-[a-z0-9_]+")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_stale_ray_temp_dirs(root: str | os.PathLike = "/tmp") -> list[Path]:
    """Remove the local-Ray temporary directories (ours, under ``root``) whose predict-batch process is
    gone: what an interrupted run leaves behind. Returns the removed directories."""
    removed = []
    for path in Path(root).glob(f"{RAY_TEMP_PREFIX}*-*"):
        match = _RAY_TEMP_NAME.fullmatch(path.name)
        try:
            if not match or not path.is_dir() or path.stat().st_uid != os.getuid():
                continue
        except FileNotFoundError:
            continue
        if _pid_alive(int(match.group(1))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        log.info("removed %s, left by an interrupted local Ray", path)
        removed.append(path)
    return removed


def local_ray_temp_dir(root: str | os.PathLike = "/tmp") -> str:
    remove_stale_ray_temp_dirs(root)
    return tempfile.mkdtemp(prefix=f"{RAY_TEMP_PREFIX}{os.getpid()}-", dir=root)


def _with_ray(args: argparse.Namespace, work):
    import ray

    temp = None
    if args.ray_address:
        join_cluster(args.ray_address, args.connect_timeout)
    else:
        os.environ.update(LOCAL_RAY_ENV)  # inherited by Ray's processes and forwarded to every actor
        temp = local_ray_temp_dir()
        log.info("local Ray (%s CPUs), temporary directory %s", args.num_cpus or "all", temp)
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, _temp_dir=temp, logging_level="WARNING")
    try:
        return work()
    finally:
        ray.shutdown()
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


def join_cluster(address: str, timeout_s: float) -> None:
    """``ray.init(address=...)``, bounded by ``timeout_s``.

    Ray itself retries an unreachable head for many minutes, so first the head's port is probed (until it
    accepts or the time is up: a head still starting gets the whole window), then ``ray.init`` runs under a
    watchdog: a port that accepts but never answers as Ray ends the process with the error (exit code 2)
    instead of waiting on. Nothing has been written at this point, so nothing is lost.
    """
    import ray

    if address != "auto":
        host, _, port = address.split("://", 1)[-1].rpartition(":")
        if not host or not port.isdigit():
            raise UserError("--ray-address", f"{address!r} is not HOST:PORT of a Ray head")
        _wait_for_port(host, int(port), timeout_s, address)
    joined = threading.Event()

    def give_up() -> None:
        if not joined.is_set():
            print(f"alphafold predict-batch: error: --ray-address: {address} accepts connections but no Ray "
                  f"cluster answered within {timeout_s:.0f} s (--connect-timeout)",
                  file=sys.stderr, flush=True)
            os._exit(2)

    watchdog = threading.Timer(timeout_s, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        ray.init(address=address, logging_level="WARNING")
    except (ConnectionError, RuntimeError, ValueError) as err:
        lines = str(err).strip().splitlines()
        raise UserError("--ray-address", f"could not join the Ray cluster at {address}: "
                                         f"{lines[-1] if lines else type(err).__name__}") from err
    finally:
        joined.set()
        watchdog.cancel()
    resources = ray.cluster_resources()
    log.info("joined the Ray cluster at %s: %d node(s), %g CPUs, %g GPUs", address,
             sum(1 for node in ray.nodes() if node.get("Alive")), resources.get("CPU", 0),
             resources.get("GPU", 0))


def _wait_for_port(host: str, port: int, timeout_s: float, address: str) -> None:
    """Return once ``host:port`` accepts a TCP connection; UserError when it has not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=max(min(5.0, timeout_s), 0.1)):
                return
        except OSError as err:
            if time.monotonic() + 1.0 > deadline:
                raise UserError("--ray-address", f"no Ray head answers at {address} within {timeout_s:.0f} s "
                                                 f"({err.strerror or err}); is the cluster running?") from err
        time.sleep(1.0)
