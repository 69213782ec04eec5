"""The sharded predictor beyond the default case, at P = 2 with odd N_res (15) against the single-device
Predictor: a template preset given features with zero templates, a preset without templates, and early
stopping on CA movement (rank 0 decides, every rank stops after the same pass).

Tolerance: float32, every float output within 1e-5 x its max magnitude, integer and metadata outputs
identical (``assert_outputs_match``). One launch of two ranks runs all three cases (keeps CI lean).
"""

from __future__ import annotations

import pytest
from synthetic_features import synthetic_features
from test_sharded_predictor import OPTIONS, assert_outputs_match

from alphafold.io_utils import save_npz_atomic
from alphafold.model.predictor import Predictor
from alphafold.parallel.group import ShardGroup
from alphafold.parallel.launch import spawn
from alphafold.parallel.predictor import ShardedPredictor
from alphafold.params.random_params import random_params

pytestmark = pytest.mark.distributed

N_RES = 15
# far above any CA movement of a random network: stop after the first recycle that can measure one
STOP_AT_ONCE = 1e9


def _cases(tmp) -> dict[str, tuple[str, dict, float]]:
    """name -> (params file, features, recycle tolerance)."""
    template_params, plain_params = tmp / "params_model_1_ptm.npz", tmp / "params_model_3_ptm.npz"
    save_npz_atomic(template_params, random_params("model_1_ptm", 2, 1, 1, seed=8))
    save_npz_atomic(plain_params, random_params("model_3_ptm", 2, 1, seed=9))
    no_templates = synthetic_features(N_RES, n_templ=0, seed=6)
    assert no_templates["template_aatype"].shape == (2, 0, N_RES)
    early = synthetic_features(N_RES, n_slices=4, seed=10)
    return {
        "template preset, zero templates": (str(template_params), no_templates, 0.0),
        "preset without templates": (str(plain_params), synthetic_features(N_RES, seed=7), 0.0),
        "early stop": (str(template_params), early, STOP_AT_ONCE),
    }


def _predict(predictor: Predictor, group: ShardGroup | None, features: dict, tolerance: float) -> dict:
    predictor = predictor.with_options(recycle_tolerance=tolerance)
    if group is None:
        return predictor.predict(features)
    return ShardedPredictor(predictor, group).predict(features)


def _rank(group: ShardGroup, cases: dict) -> dict:
    loaded = {path: Predictor.from_params_file(path, options=OPTIONS) for path, _, _ in cases.values()}
    return {name: _predict(loaded[path], group, features, tol)
            for name, (path, features, tol) in cases.items()}


def test_sharded_equals_single_device_for_zero_templates_no_templates_and_early_stop(tmp_path):
    cases = _cases(tmp_path)
    results = spawn(_rank, 2, cases, timeout_s=600)
    assert results[1] == {name: {} for name in cases}, "only rank 0 returns outputs"
    for name, (path, features, tol) in cases.items():
        ref = _predict(Predictor.from_params_file(path, options=OPTIONS), None, features, tol)
        assert_outputs_match(results[0][name], ref, f"P=2 {name}")
    assert int(results[0]["early stop"]["meta/num_recycles_run"]) == 1, "stopped after recycle 1 of 3"
    assert int(results[0]["preset without templates"]["meta/num_recycles_run"]) == 1
    assert results[0]["template preset, zero templates"]["representations/pair"].shape[:2] == (N_RES, N_RES)
