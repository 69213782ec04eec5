"""Running the Snakemake workflow (locally or on the single-node test SLURM) from tests, bounded in time.

Every Snakemake run is started in its own process group under ``timeout -s KILL`` (a hung Snakemake
ignores SIGTERM while it waits for jobs) and is killed, with its children, if the test ends early.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake_cmd(*args: str, profile: str = "local", timeout: float = 600) -> list[str]:
    return ["timeout", "-s", "KILL", str(int(timeout)), *SNAKEMAKE,
            "--workflow-profile", str(ROOT / "cluster" / "profiles" / profile), *map(str, args)]


def run_snakemake(*args: str, profile: str = "local", timeout: float = 600, env: dict | None = None,
                  check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(snakemake_cmd(*args, profile=profile, timeout=timeout), cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          start_new_session=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-6000:]}")
    return proc


def start_snakemake(*args: str, profile: str = "local", timeout: float = 600, env: dict | None = None,
                    log: Path) -> subprocess.Popen:
    fh = open(log, "w")
    return subprocess.Popen(snakemake_cmd(*args, profile=profile, timeout=timeout), cwd=ROOT, stdout=fh,
                            stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                            start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a started Snakemake and everything in its process group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="session")
def testcluster(tmp_path_factory):
    """A real single-node SLURM (cluster/testcluster/start.sh), stopped and removed at the end."""
    if os.geteuid() != 0:
        pytest.skip("the test SLURM must be started as root (scripts/test.sh runs as root)")
    for tool in ("slurmctld", "slurmd", "munged", "sbatch"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (bash scripts/system-deps.sh)")
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "AF_TESTCLUSTER_DIR": str(state)}
    # Port per test session, so two sessions on one machine do not collide.
    env["AF_TESTCLUSTER_PORT"] = str(17000 + os.getpid() % 2000 * 2)
    start_sh = str(ROOT / "cluster/testcluster/start.sh")
    start = subprocess.run(["timeout", "-s", "KILL", "60", "bash", start_sh], env=env, capture_output=True,
                           text=True)
    if start.returncode != 0:
        subprocess.run(["bash", str(ROOT / "cluster/testcluster/stop.sh")], env=env, capture_output=True)
        raise AssertionError(f"test cluster did not start:\n{start.stdout}\n{start.stderr}")
    slurm_env = {"SLURM_CONF": str(state / "etc" / "slurm.conf")}
    try:
        yield slurm_env
    finally:
        subprocess.run(["timeout", "-s", "KILL", "60", "bash", str(ROOT / "cluster/testcluster/stop.sh")],
                       env=env, capture_output=True)


def squeue_all(env: dict) -> list[dict]:
    """Every job the test cluster still lists (MinJobAge keeps finished ones): id, state, name, comment,
    memory request, time limit."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%j|%k|%m|%l|%P|%b"], capture_output=True,
                         text=True, env={**os.environ, **env}, timeout=30, check=True).stdout
    fields = ("id", "state", "name", "comment", "mem", "time_limit", "partition", "tres")
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines()]
