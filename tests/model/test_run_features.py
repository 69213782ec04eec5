"""`alphafold run-features` and the Predictor on a tiny random network (no reference fixtures needed).

Random parameters come from `alphafold.params.random_params` (DeepMind's layout, 1 block per stack), features
are synthetic processed features with a leading recycle axis.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alphafold.common import residue_constants as rc
from alphafold.io_utils import load_npz, save_npz_atomic
from alphafold.model.options import RuntimeOptions
from alphafold.model.predictor import Predictor
from alphafold.params.random_params import random_params

N_RES, N_CLUST, N_EXTRA, N_TEMPL, N_RECYCLE_SLICES = 15, 5, 9, 2, 3


def synthetic_features(seed: int = 0) -> dict[str, np.ndarray]:
    """Processed features in AF2 v2.3 layout (every feature with a leading recycle axis)."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    aatype = rng.integers(0, 20, N_RES)
    aatype[2] = rc.restype_order["G"]
    one = {
        "aatype": aatype,
        "residue_index": np.arange(N_RES),
        "seq_mask": np.ones(N_RES, f32),
        "target_feat": np.eye(22, dtype=f32)[aatype],
        "msa_feat": rng.normal(size=(N_CLUST, N_RES, 49)).astype(f32),
        "msa_mask": np.ones((N_CLUST, N_RES), f32),
        "extra_msa": rng.integers(0, 23, (N_EXTRA, N_RES)),
        "extra_msa_mask": np.ones((N_EXTRA, N_RES), f32),
        "extra_has_deletion": (rng.random((N_EXTRA, N_RES)) > 0.8).astype(f32),
        "extra_deletion_value": rng.random((N_EXTRA, N_RES)).astype(f32),
    }
    ca = np.cumsum(rng.normal(size=(N_TEMPL, N_RES, 3)) * 2.2, axis=1)
    pos = (ca[:, :, None, :] + rng.normal(size=(N_TEMPL, N_RES, 37, 3))).astype(f32)
    t_aatype = rng.integers(0, 21, (N_TEMPL, N_RES))
    mask = (rng.random((N_TEMPL, N_RES, 37)) > 0.3).astype(f32)
    cb = np.where(t_aatype == rc.restype_order["G"], rc.atom_order["CA"], rc.atom_order["CB"])
    one.update(
        {
            "template_aatype": t_aatype,
            "template_all_atom_positions": pos,
            "template_all_atom_masks": mask,
            "template_mask": np.ones(N_TEMPL, f32),
            "template_pseudo_beta": np.take_along_axis(pos, cb[:, :, None, None], axis=2)[:, :, 0],
            "template_pseudo_beta_mask": np.take_along_axis(mask, cb[:, :, None], axis=2)[:, :, 0],
        }
    )
    return {k: np.stack([v] * N_RECYCLE_SLICES) for k, v in one.items()}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("run_features")
    params = d / "params_model_1_ptm.npz"
    save_npz_atomic(params, random_params("model_1_ptm", 1, 1, 1, 3))
    features = d / "features.npz"
    np.savez(features, **synthetic_features())
    return d, params, features


@pytest.fixture(scope="module")
def two_slice_features(files):
    d, _, features = files
    path = d / "features_2.npz"
    np.savez(path, **{k: v[:2] for k, v in load_npz(features).items()})
    return path


@pytest.fixture(scope="module")
def predictor(files):
    _, params, _ = files
    return Predictor.from_params_file(params, options=RuntimeOptions(chunk_size=None))


def test_cli_writes_contract_outputs(files, cli):
    d, params, features = files
    out = d / "out.npz"
    proc = cli(
        "run-features",
        "--params",
        params,
        "--features",
        features,
        "--output",
        out,
        "--num-recycle",
        "1",
        "--chunk-size",
        "4",
    )
    assert "recycle 1/1" in proc.stderr and "CA movement" in proc.stderr
    res = load_npz(out)
    shapes = {
        "structure_module/final_atom_positions": (N_RES, 37, 3),
        "structure_module/final_atom_mask": (N_RES, 37),
        "plddt": (N_RES,),
        "predicted_lddt/logits": (N_RES, 50),
        "distogram/logits": (N_RES, N_RES, 64),
        "distogram/bin_edges": (63,),
        "masked_msa/logits": (N_CLUST, N_RES, 23),
        "experimentally_resolved/logits": (N_RES, 37),
        "predicted_aligned_error": (N_RES, N_RES),
        "predicted_aligned_error/logits": (N_RES, N_RES, 64),
        "max_predicted_aligned_error": (),
        "ptm": (),
        "representations/msa_first_row": (N_RES, 256),
        "representations/pair": (N_RES, N_RES, 128),
        "representations/single": (N_RES, 384),
        "representations/structure_module": (N_RES, 384),
        "meta/num_recycles_run": (),
        "meta/timings/predict": (),
        "aatype": (N_RES,),
        "residue_index": (N_RES,),
    }
    for key, shape in shapes.items():
        assert res[key].shape == shape, key
        if res[key].dtype.kind == "f":
            assert np.isfinite(res[key]).all(), key
    assert int(res["meta/num_recycles_run"]) == 1
    assert float(res["meta/timings/predict"]) > 0
    assert res["meta/preset"].item() == b"model_1_ptm"
    assert bool(res["meta/untrained"])
    assert len(res["meta/params_sha256"].item()) == 64
    assert [p.name for p in d.iterdir() if p.name.startswith("out")] == ["out.npz"]


def test_chunking_is_invisible(files, predictor):
    # one recycle, so the row-chunked recycling embedder reads a real previous structure and pair (the
    # first pass's are constant); chunks of 4 rows leave a partial last chunk at N_RES = 15
    _, _, features_path = files
    features = load_npz(features_path)
    full = predictor.predict(features, num_recycle=1)
    chunked = predictor.with_options(chunk_size=4).predict(features, num_recycle=1)
    for key in ("representations/pair", "distogram/logits", "structure_module/final_atom_positions"):
        scale = np.abs(full[key]).max()
        assert np.abs(chunked[key] - full[key]).max() <= 1e-4 * scale, key


def test_no_templates_equals_all_templates_masked(files, predictor):
    """A template preset accepts features with zero templates: the same as templates all masked out."""
    _, _, features_path = files
    features = load_npz(features_path)
    masked = dict(features, template_mask=np.zeros_like(features["template_mask"]),
                  template_all_atom_masks=np.zeros_like(features["template_all_atom_masks"]))
    none = {k: (v[:, :0] if k.startswith("template_") else v) for k, v in features.items()}
    out_masked = predictor.predict(masked, num_recycle=0)
    out_none = predictor.predict(none, num_recycle=0)
    keys = ("representations/pair", "representations/msa_first_row", "structure_module/final_atom_positions")
    for key in keys:
        scale = np.abs(out_masked[key]).max()
        assert np.abs(out_none[key] - out_masked[key]).max() <= 1e-5 * scale, key


def test_recycle_tolerance_stops_early(files, predictor):
    _, _, features_path = files
    out = predictor.with_options(recycle_tolerance=1e6).predict(load_npz(features_path))
    # the features carry 3 slices (2 recycles by default); the first recycle's movement is below a huge
    # tolerance: stop after it
    assert int(out["meta/num_recycles_run"]) == 1 < N_RECYCLE_SLICES - 1


def test_run_recycle_reproduces_the_loop(files, predictor):
    """One pass from explicit prev inputs equals the same pass inside the loop."""
    _, _, features_path = files
    features = load_npz(features_path)
    first = predictor.run_recycle(
        features,
        0,
        {
            "prev_pos": np.zeros((N_RES, 37, 3), np.float32),
            "prev_msa_first_row": np.zeros((N_RES, 256), np.float32),
            "prev_pair": np.zeros((N_RES, N_RES, 128), np.float32),
        },
    )
    second = predictor.run_recycle(
        features,
        1,
        {
            "prev_pos": first["structure_module/final_atom_positions"],
            "prev_msa_first_row": first["representations/msa_first_row"],
            "prev_pair": first["representations/pair"],
        },
    )
    looped = predictor.predict(features, num_recycle=1)
    np.testing.assert_allclose(
        second["representations/pair"], looped["representations/pair"], rtol=0, atol=1e-5
    )


def test_cli_errors_are_one_line(files, cli, tmp_path):
    d, params, features = files
    full = load_npz(features)
    broken = tmp_path / "features.npz"
    np.savez(broken, **{k: v for k, v in full.items() if k not in ("msa_feat", "template_mask")})
    proc = cli(
        "run-features", "--params", params, "--features", broken, "--output", tmp_path / "o.npz", check=False
    )
    assert proc.returncode == 2
    assert "msa_feat" in proc.stderr and "template_mask" in proc.stderr and "Traceback" not in proc.stderr

    proc = cli(
        "run-features",
        "--params",
        params,
        "--features",
        features,
        "--output",
        tmp_path / "o.npz",
        "--num-recycle",
        "5",
        check=False,
    )
    assert proc.returncode == 2 and "num_recycle 5" in proc.stderr and "Traceback" not in proc.stderr

    # a params file that lacks keys: the loader lists them
    bad_params = tmp_path / "params_model_1_ptm.npz"
    p = load_npz(params)
    np.savez(bad_params, **{k: v for k, v in p.items() if "pair_activiations" not in k})
    proc = cli(
        "run-features",
        "--params",
        bad_params,
        "--features",
        features,
        "--output",
        tmp_path / "o.npz",
        check=False,
    )
    assert proc.returncode == 2 and "pair_activiations" in proc.stderr and "missing" in proc.stderr
    assert not (tmp_path / "o.npz").exists()


def test_bfloat16_trunk_stays_close_to_float32(files, predictor):
    """bf16 runs the trunk in bfloat16 (structure module and heads in float32); ~1% off on random weights."""
    _, params, features_path = files
    features = load_npz(features_path)
    ref = predictor.predict(features, num_recycle=0)
    bf16 = Predictor.from_params_file(params, options=RuntimeOptions(chunk_size=4, dtype="bfloat16"))
    assert bf16.model.evoformer.preprocess_1d.weights.dtype == torch.bfloat16
    assert bf16.model.structure_module.initial_projection.weights.dtype == torch.float32
    out = bf16.predict(features, num_recycle=0)
    for key in ("representations/pair", "distogram/logits", "structure_module/final_atom_positions"):
        assert out[key].dtype == np.float32 and np.isfinite(out[key]).all(), key
        scale = np.abs(ref[key]).max()
        assert 0 < np.abs(out[key] - ref[key]).max() <= 0.1 * scale, key
