"""Gangs: P fold-worker actors placed together that form one tensor-parallel process group.

A gang reserves P bundles in one placement group (STRICT_PACK: all on one node, so the group talks over the
node's own links), starts one :class:`~alphafold.runtime.worker.FoldWorker` actor per bundle, and has them
meet at rank 0's address. Every wait is bounded: if the placement group cannot be placed, or a member does
not join, the gang is torn down and :class:`GangUnavailable` raised, instead of the placed members waiting
forever for one that never comes. A single actor is a gang of one (no process group).

Every actor gets the loopback-only environment (``runtime_env``) so its gloo sockets and Ray clients stay on
127.0.0.1 on a single machine; on a cluster the caller passes its own.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from alphafold.parallel.group import ParallelConfig
from alphafold.runtime.worker import FoldWorker, ModelFactory, ServeResult

log = logging.getLogger(__name__)

# Environment variables forwarded into every actor when set in the driver: gloo's interface and the proxy
# settings that keep Ray's HTTP clients off the network (see DESIGN.md).
FORWARDED_ENV = (
    "GLOO_SOCKET_IFNAME", "RAY_USAGE_STATS_ENABLED", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE",
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "PYTHONPATH",
)


def actor_env() -> dict[str, str]:
    """The driver's settings from :data:`FORWARDED_ENV`, for an actor's ``runtime_env``."""
    return {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}


class GangUnavailable(RuntimeError):
    """The gang could not be placed or its members did not all join in time."""


@dataclasses.dataclass(frozen=True)
class GangOptions:
    """How gang members are placed.

    Attributes:
      cpus_per_rank: CPUs each member reserves (Ray sets OMP_NUM_THREADS from it).
      gpus_per_rank: GPUs each member reserves (1 with ``ParallelConfig(device="cuda")``).
      timeout_s: bound on placement, rendezvous and model loading, and the members' process-group timeout
        (the longest a rank waits for the others in one collective).
      parallel: backend/device of the process group.
    """

    cpus_per_rank: float = 1.0
    gpus_per_rank: float = 0.0
    timeout_s: float = 300.0
    parallel: ParallelConfig = dataclasses.field(default_factory=ParallelConfig)


RemoteFoldWorker = ray.remote(max_restarts=0, max_task_retries=0)(FoldWorker)


class Gang:
    """P actors of one tensor-parallel group, serving one target at a time."""

    def __init__(self, factory: ModelFactory, size: int, options: GangOptions | None = None):
        self.size = size
        self.options = options or GangOptions()
        opts = self.options
        bundle = {"CPU": opts.cpus_per_rank}
        if opts.gpus_per_rank:
            bundle["GPU"] = opts.gpus_per_rank
        self.pg = placement_group([dict(bundle) for _ in range(size)], strategy="STRICT_PACK")
        self.actors = []
        deadline = time.monotonic() + opts.timeout_s
        try:
            ready, _ = ray.wait([self.pg.ready()], timeout=opts.timeout_s)
            if not ready:
                raise GangUnavailable(
                    f"no node can hold a gang of {size} x {bundle} within {opts.timeout_s} s")
            parallel = dataclasses.replace(opts.parallel, rendezvous_timeout_s=opts.timeout_s)
            self.actors = [
                RemoteFoldWorker.options(
                    num_cpus=opts.cpus_per_rank, num_gpus=opts.gpus_per_rank,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(
                        self.pg, placement_group_bundle_index=i),
                    runtime_env={"env_vars": actor_env()},
                ).remote(factory, i, size, parallel)
                for i in range(size)
            ]
            addr, port = ray.get(self.actors[0].rendezvous_address.remote(), timeout=_left(deadline))
            self.pids = ray.get([a.join.remote(addr, port) for a in self.actors], timeout=_left(deadline))
        except ray.exceptions.RayError as err:
            # not placed or joined in time, a member died, or a member raised while joining or loading its
            # model (e.g. an unreadable params file: then every gang fails alike)
            self.kill()
            raise GangUnavailable(f"a gang of {size} did not form: {one_line(err)}") from err
        except BaseException:
            self.kill()
            raise
        log.info("gang of %d formed (pids %s)", size, self.pids)

    def serve(self, target: str, features_path: str, output_path: str | None) -> list[ray.ObjectRef]:
        """Start one target on every member; rank 0's result (first ref) carries the written output."""
        return [a.serve.remote(target, features_path, output_path) for a in self.actors]

    def kill(self) -> None:
        """End every member and release the placement group (idempotent)."""
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
        if self.pg is not None:
            remove_placement_group(self.pg)
            self.pg = None


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.1)


def one_line(err: BaseException) -> str:
    """A Ray error as one line: the type of its cause (the remote exception) and its last line."""
    cause = getattr(err, "cause", None) or err
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


__all__ = ["Gang", "GangOptions", "GangUnavailable", "ServeResult", "actor_env", "one_line"]
