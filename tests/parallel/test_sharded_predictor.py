"""Whole predictions (random model_1_ptm weights, 2 Evoformer blocks, templates, 1 recycle) with the pair
representation sharded over P = 1 and 3 ranks equal the single-device Predictor's, for N_res = 17 and for
N_res = 2 (fewer residues than ranks: one rank holds no rows at all).

Tolerance: float32, every float output within 1e-5 x its max magnitude (coordinates, logits, pLDDT, PAE,
representations), integer and metadata outputs identical. (P = 2 is checked through a Ray gang in
tests/runtime/test_ray_predict.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_features import synthetic_features

from alphafold.io_utils import load_npz, save_npz_atomic
from alphafold.model.options import RuntimeOptions
from alphafold.model.predictor import Predictor
from alphafold.parallel.group import ShardGroup
from alphafold.parallel.launch import spawn
from alphafold.parallel.predictor import ShardedPredictor
from alphafold.params.random_params import random_params

pytestmark = pytest.mark.distributed

N_RES = 17
RTOL = 1e-5
OPTIONS = RuntimeOptions(chunk_size=None)


def assert_outputs_match(got: dict, ref: dict, what: str) -> None:
    assert set(got) == set(ref), what
    for key, value in ref.items():
        if key.startswith("meta/timings/"):
            continue  # wall times, not results
        if np.issubdtype(value.dtype, np.floating):
            scale = float(np.abs(value).max()) or 1.0
            err = float(np.abs(got[key] - value).max())
            assert err <= RTOL * scale, f"{what} {key}: error {err:.3g} > {RTOL} x {scale:.3g}"
        else:
            np.testing.assert_array_equal(got[key], value, err_msg=f"{what} {key}")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sharded_predictor")
    params = d / "params_model_1_ptm.npz"
    save_npz_atomic(params, random_params("model_1_ptm", 2, 1, 1, seed=3))
    features = synthetic_features(N_RES, seed=5)
    return params, features


def _rank(group: ShardGroup, params: str, batches: list[dict]) -> list[dict]:
    # the sharded code path even at P = 1 (its collectives are no-ops there)
    predictor = ShardedPredictor.from_params_file(params, group, options=OPTIONS)
    return [predictor.predict(features) for features in batches]


@pytest.mark.parametrize("world_size", [1, 3])
def test_sharded_prediction_equals_single_device(files, world_size):
    params, features = files
    batches = [features, synthetic_features(2, n_clust=2, n_extra=3, n_templ=1, seed=3)]
    results = spawn(_rank, world_size, str(params), batches, timeout_s=600)
    single = Predictor.from_params_file(params, options=OPTIONS)
    for i, batch in enumerate(batches):
        n_res = batch["aatype"].shape[-1]
        assert all(r[i] == {} for r in results[1:]), "only rank 0 returns outputs"
        assert_outputs_match(results[0][i], single.predict(batch), f"P={world_size}, N_res={n_res}")
        assert int(results[0][i]["meta/num_recycles_run"]) == 1


def _on_disk(files, tmp_path):
    """params, features, the features saved as a file, and where run-features is to write."""
    params, features = files
    save_npz_atomic(tmp_path / "features.npz", features)
    return params, features, tmp_path / "features.npz", tmp_path / "out.npz"


def test_run_features_tp_two_writes_the_single_device_outputs(files, tmp_path, cli):
    params, features, path, out = _on_disk(files, tmp_path)
    proc = cli("run-features", "--params", params, "--features", path, "--output", out, "--tp", "2",
               "--num-recycle", "0", "--chunk-size", "none", timeout=900)
    assert "2 ranks" in proc.stderr
    ref = Predictor.from_params_file(params, options=OPTIONS).predict(features, num_recycle=0)
    assert_outputs_match(load_npz(out), ref, "run-features --tp 2")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary files left"


def test_run_features_tp_two_reports_bad_input_in_one_line(files, tmp_path, cli):
    params, features, path, out = _on_disk(files, tmp_path)
    # the features carry 2 recycle slices; the ranks find that out, the command reports it
    proc = cli("run-features", "--params", params, "--features", path, "--output", out, "--tp", "2",
               "--num-recycle", "3", check=False, timeout=600)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"alphafold run-features: error: {path}: num_recycle 3 needs 4 recycle slices but the features "
        "carry 2")
    assert not out.exists()
    # no recycle slice at all: named before any rank starts (it was an IndexError in every rank)
    empty = tmp_path / "empty.npz"
    save_npz_atomic(empty, {k: v[:0] for k, v in features.items()})
    for tp in ("1", "2"):
        proc = cli("run-features", "--params", params, "--features", empty, "--output", out, "--tp", tp,
                   check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == (
            f"alphafold run-features: error: {empty}: aatype has shape (0, {N_RES}): no recycle slice or no "
            "residue")
    assert not out.exists()


def test_ranks_on_one_host_plan_auto_chunking_with_their_share_of_its_memory(monkeypatch, tmp_path):
    """run-features --tp P on CPU: P ranks share the host's free memory, so each plans with 1/P of it."""
    from alphafold.model import chunking
    from alphafold.parallel import run

    seen = []

    def launched(fn, tp, params, preset, options, *rest, **kwargs):
        seen.append(options)
        return [{}]

    monkeypatch.setattr(chunking, "free_memory_bytes", lambda device: 12_000_000_000)
    monkeypatch.setattr(run, "spawn", launched)
    for options in (RuntimeOptions(chunk_size="auto"),
                    RuntimeOptions(chunk_size="auto", memory_budget_gb=2.0),
                    RuntimeOptions(chunk_size=8)):
        run.run_sharded(tmp_path / "p.npz", tmp_path / "f.npz", tmp_path / "o.npz", 3, options)
    assert [o.memory_budget_gb for o in seen] == [4.0, 2.0, None]
