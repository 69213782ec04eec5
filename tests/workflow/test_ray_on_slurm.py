"""cluster/ray-on-slurm.sh inside a real SLURM allocation: Ray head started, command run against it,
Ray stopped afterwards (loopback only)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.workflow.conftest import squeue_all, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.distributed, pytest.mark.slow]

CLIENT = """
import os, ray
ray.init(address=os.environ["AF_RAY_ADDRESS"], logging_level="ERROR")
@ray.remote
def square(x):
    return x * x
total = sum(ray.get([square.remote(i) for i in range(5)]))
print("CPUS", int(ray.cluster_resources()["CPU"]), "RESULT", total)
"""


def test_ray_cluster_inside_an_allocation(testcluster, tmp_path):
    client = tmp_path / "client.py"
    client.write_text(CLIENT)
    env = {**os.environ, **testcluster, "AF_RAY_LOOPBACK": "1", "AF_PYTHON": sys.executable,
           "AF_RAY_PORT": str(21000 + os.getpid() % 1000),
           "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])}
    # A bystander Ray on the same node (another job's, a user's, this test session's): the script must stop
    # only its own Ray, never every Ray on the node.
    bystander_tmp = f"/tmp/afbystander{os.getpid()}"
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    subprocess.run([ray_bin, "start", "--head", "--port", str(23000 + os.getpid() % 1000),
                    "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--include-dashboard=false",
                    "--temp-dir", bystander_tmp, "--disable-usage-stats"],
                   env=env, capture_output=True, text=True, check=True, timeout=120)
    try:
        _run_job(env, client, tmp_path, testcluster)
        assert subprocess.run(["pgrep", "-f", f"{bystander_tmp}/"], capture_output=True).returncode == 0, (
            "the script stopped a Ray it did not start")
    finally:
        subprocess.run(["pkill", "-KILL", "-f", f"{bystander_tmp}/"], capture_output=True)
        wait_for(lambda: subprocess.run(["pgrep", "-f", f"{bystander_tmp}/"], capture_output=True).returncode,
                 timeout=30, what="the bystander Ray to stop")
        subprocess.run(["rm", "-rf", bystander_tmp])


def _run_job(env, client, tmp_path, testcluster):
    out = tmp_path / "job.out"
    job = subprocess.run(["sbatch", "--parsable", "-c", "2", "--mem=3000", "-o", str(out),
                          str(ROOT / "cluster" / "ray-on-slurm.sh"), sys.executable, str(client)],
                         env=env, capture_output=True, text=True, check=True, timeout=30).stdout.strip()

    def finished():
        states = [j["state"] for j in squeue_all(testcluster) if j["id"] == job]
        return states and states[0] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT") and states[0]

    try:
        state = wait_for(finished, timeout=240, interval=1, what=f"SLURM job {job}")
    finally:
        subprocess.run(["scancel", job], env=env, capture_output=True)
    text = out.read_text()
    assert state == "COMPLETED", text[-3000:]
    assert "CPUS 2 RESULT 30" in text
    assert "[ray-on-slurm] stopping Ray" in text
    # Nothing of this Ray is left running.
    leftover = subprocess.run(["pgrep", "-f", f"ray_{job}"], capture_output=True, text=True).stdout.split()
    assert leftover == []
