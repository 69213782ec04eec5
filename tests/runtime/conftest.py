"""One local Ray session shared by the Ray tests (ray.init costs ~3 s and ~700 MB), loopback only."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

# The synthetic processed features are shared with tests/parallel.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parallel"))


@pytest.fixture(scope="session")
def ray_session():
    import ray
    import ray_models

    # Actors unpickle the test model by value: they cannot import the tests directory.
    ray.cloudpickle.register_pickle_by_value(ray_models)
    # Children from before (e.g. multiprocessing's resource tracker of earlier spawn tests) are not Ray's.
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    temp = tempfile.mkdtemp(prefix="afray", dir="/tmp")  # short: Ray's socket paths have a length limit
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level="WARNING",
             log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        children = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        _, alive = psutil.wait_procs(children, timeout=30)
        alive = [p for p in alive if _running(p)]
        assert not alive, f"processes left behind by Ray: {[(p.pid, p.name()) for p in alive]}"


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
