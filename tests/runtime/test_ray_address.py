"""``alphafold predict-batch --ray-address`` joins a Ray cluster that is already running, and refuses, with
one line and within ``--connect-timeout``, an address where no Ray answers.

The cluster is a real separate Ray head started with ``ray start --head`` on 127.0.0.1 (loopback
environment of tests/conftest.py) in its own process group; it is stopped by killing exactly that group
(never ``ray stop``, which would end every Ray on the machine, this test session's included). The batch
runs in a subprocess, so this session's own Ray (tests/runtime/conftest.py) is not involved.

Tolerance of the outputs against the single-device Predictor in this process: float32, every float output
within 1e-5 x its max magnitude, everything else identical (``assert_outputs_match``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from synthetic_features import synthetic_features
from test_sharded_predictor import OPTIONS, assert_outputs_match

from alphafold.io_utils import load_npz, save_npz_atomic
from alphafold.model.predictor import Predictor
from alphafold.parallel.group import free_loopback_port
from alphafold.params.random_params import random_params

pytestmark = pytest.mark.distributed

N_RES = 13


@dataclasses.dataclass(frozen=True)
class Head:
    address: str
    temp: Path
    pgid: int

    def session_logs(self) -> Path:
        return self.temp / "session_latest" / "logs"


def _group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


@pytest.fixture(scope="module")
def ray_head():
    temp = Path(tempfile.mkdtemp(prefix="afhead", dir="/tmp"))  # short: Ray's socket paths are length-limited
    port = free_loopback_port()
    ray_bin = Path(sys.executable).with_name("ray")
    # its own session: every process of this head (GCS, raylet, agents, workers) is in the group it leads
    proc = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    pgid = proc.pid
    try:
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"ray start failed:\n{out}"
        yield Head(f"127.0.0.1:{port}", temp, pgid)
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 30
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _group_members(pgid)
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"processes of the Ray head left behind: {[(p.pid, p.name()) for p in left]}"


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    d = tmp_path_factory.mktemp("ray_address")
    save_npz_atomic(d / "params" / "params_model_1_ptm.npz", random_params("model_1_ptm", 2, 1, 1, seed=12))
    features = synthetic_features(N_RES, seed=13)
    save_npz_atomic(d / "features" / "t13.npz", features)
    return d


def _predict_batch(batch: Path, out: Path, address: str, *extra: str) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "alphafold", "predict-batch", str(batch / "features"),
         "--output-dir", str(out), "--params-dir", str(batch / "params"), "--ray-address", address,
         "--chunk-size", "none", "--num-recycle", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:  # timed out (or interrupted): leave no batch behind
            proc.kill()
            proc.wait(timeout=30)
    return proc, stdout, stderr


def test_predict_batch_joins_the_running_cluster(ray_head, batch, tmp_path):
    before = {p.pid for p in _group_members(ray_head.pgid)}
    out = tmp_path / "out"
    proc, _, stderr = _predict_batch(batch, out, ray_head.address, "--tp", "2", "--timeout", "300")
    assert proc.returncode == 0, stderr
    assert f"joined the Ray cluster at {ray_head.address}: 1 node(s), 2 CPUs" in stderr
    summary = json.loads((out / "predict_batch.json").read_text())["t13"]
    assert summary["status"] == "done" and summary["tp"] == 2
    logs = ray_head.session_logs()
    # the client was a driver of this cluster: its core-driver log is in the head's session, under its pid
    drivers = list(logs.glob(f"python-core-driver-*_{proc.pid}.log"))
    assert len(drivers) == 1, sorted(p.name for p in logs.iterdir())
    job = drivers[0].name.split("-")[3][:8]
    # both gang members were workers of this head, for that job: worker-<id>-<job>-<pid>.out per actor
    assert len(set(summary["pids"])) == 2
    for pid in summary["pids"]:
        (log,) = logs.glob(f"worker-*-{job}-{pid}.out")
        assert ":actor_name:FoldWorker" in log.read_text()
    # no Ray of its own: the head's processes are the same as before, and the batch left none behind
    assert {p.pid for p in _group_members(ray_head.pgid)} == before
    assert not [p for p in summary["pids"] if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    features = load_npz(batch / "features" / "t13.npz")
    ref = Predictor.from_params_file(batch / "params" / "params_model_1_ptm.npz",
                                     options=OPTIONS).predict(features, num_recycle=0)
    assert_outputs_match(load_npz(out / "t13.npz"), ref, "joined cluster, gang of 2")


def test_unreachable_address_is_one_line_error_within_the_timeout(batch, tmp_path):
    port = free_loopback_port()  # nothing listens there
    start = time.monotonic()
    proc, _, stderr = _predict_batch(batch, tmp_path / "out", f"127.0.0.1:{port}", "--connect-timeout", "3")
    assert proc.returncode == 2
    assert stderr.strip().splitlines() == [
        f"alphafold predict-batch: error: --ray-address: no Ray head answers at 127.0.0.1:{port} within 3 s "
        "(Connection refused); is the cluster running?"]
    assert time.monotonic() - start < 60
    assert not (tmp_path / "out").exists(), "nothing written"


def test_a_port_that_is_not_ray_is_an_error_not_an_endless_wait(batch, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel accepts connections; nothing ever speaks Ray
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        start = time.monotonic()
        proc, _, stderr = _predict_batch(batch, tmp_path / "out", address, "--connect-timeout", "5")
    assert proc.returncode == 2
    assert stderr.strip().splitlines()[-1] == (
        f"alphafold predict-batch: error: --ray-address: {address} accepts connections but no Ray cluster "
        "answered within 5 s (--connect-timeout)")
    assert time.monotonic() - start < 90
    assert not (tmp_path / "out").exists(), "nothing written"
