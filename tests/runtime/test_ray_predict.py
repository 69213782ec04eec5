"""The real network served by Ray: a gang of 2 CPU actors (pair representation sharded, one gloo group)
predicts a target and matches a single actor's prediction; ``alphafold predict-batch`` end to end.

Tolerance: float32, every float output within 1e-5 x its max magnitude; everything else identical.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_features import synthetic_features

from alphafold.io_utils import load_npz, save_npz_atomic
from alphafold.model.options import RuntimeOptions
from alphafold.parallel.group import ParallelConfig
from alphafold.params.random_params import random_params
from alphafold.runtime.driver import Driver
from alphafold.runtime.factory import PredictorFactory
from alphafold.runtime.gang import GangOptions
from alphafold.runtime.targets import discover_targets

pytestmark = pytest.mark.distributed

RTOL = 1e-5
OPTIONS = GangOptions(cpus_per_rank=1, timeout_s=120, parallel=ParallelConfig(rendezvous_timeout_s=120))


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ray_predict")
    params_dir = d / "params"
    save_npz_atomic(params_dir / "params_model_1_ptm.npz", random_params("model_1_ptm", 2, 1, 1, seed=4))
    features = d / "features"
    for name, n_res in (("t19", 19), ("t12", 12)):
        save_npz_atomic(features / f"{name}.npz", synthetic_features(n_res, seed=n_res))
    return d


def test_gang_of_two_predicts_like_a_single_actor(ray_session, batch_dir, tmp_path):
    factory = PredictorFactory(str(batch_dir / "params" / "params_model_1_ptm.npz"),
                               options=RuntimeOptions(chunk_size=None))
    (target,) = [t for t in discover_targets(batch_dir / "features", tmp_path) if t.name == "t19"]
    single = type(target)(target.name + "_single", target.features_path, str(tmp_path / "single.npz"),
                          target.n_res)
    gang = type(target)(target.name + "_gang", target.features_path, str(tmp_path / "gang.npz"), target.n_res)
    reports = Driver(factory, lambda t: 2 if t is gang else 1, OPTIONS).run([single, gang])
    assert reports[gang.name].status == "done" and reports[gang.name].tp == 2
    assert len(set(reports[gang.name].pids)) == 2
    assert reports[single.name].status == "done" and reports[single.name].tp == 1
    ref, got = load_npz(tmp_path / "single.npz"), load_npz(tmp_path / "gang.npz")
    assert set(got) == set(ref) and "representations/pair" in got
    for key, value in ref.items():
        if key.startswith("meta/timings/"):
            continue  # wall times, not results
        if np.issubdtype(value.dtype, np.floating):
            scale = float(np.abs(value).max()) or 1.0
            assert float(np.abs(got[key] - value).max()) <= RTOL * scale, key
        else:
            np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_predict_batch_cli_serves_a_directory_and_skips_done_targets(batch_dir, tmp_path, cli):
    out = tmp_path / "out"
    args = ("predict-batch", batch_dir / "features", "--output-dir", out, "--params-dir",
            batch_dir / "params", "--tp", "2", "--num-cpus", "2", "--chunk-size", "none",
            "--num-recycle", "0")
    cli(*args, timeout=900)
    summary = json.loads((out / "predict_batch.json").read_text())
    assert {k: v["status"] for k, v in summary.items()} == {"t12": "done", "t19": "done"}
    assert all(v["tp"] == 2 for v in summary.values())
    for name, n_res in (("t12", 12), ("t19", 19)):
        outputs = load_npz(out / f"{name}.npz")
        assert outputs["structure_module/final_atom_positions"].shape == (n_res, 37, 3)
        assert int(outputs["meta/num_recycles_run"]) == 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary files left"
    # a second run finds every output in place and predicts nothing
    second = cli(*args, timeout=900)
    assert json.loads((out / "predict_batch.json").read_text()) == {
        k: {"status": "skipped", "output": v["output"]} for k, v in summary.items()}
    assert "0 done, 2 skipped" in second.stderr

