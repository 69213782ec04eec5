"""The reference fixtures exist, cover the cases of issue 2, and are what the harness says they are.

Never imports JAX: the fixtures are read with numpy only. The slow test regenerates the smallest case in
the reference venv (a subprocess) and checks it is bit-for-bit the cached one.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REFERENCE_CASES, ROOT, reference_dir

pytestmark = pytest.mark.reference

HERE = Path(__file__).resolve().parent
MANIFESTS = ROOT / "alphafold" / "params" / "manifests"
PRESETS = [f"model_{i}" for i in range(1, 6)] + [f"model_{i}_ptm" for i in range(1, 6)]

# What each case must be (issue 2, item 4).
EXPECTED = {
    "reduced_notemplate": dict(preset="model_3", evoformer=2, extra_msa=1, template_pair_stack=0),
    "reduced_template": dict(preset="model_1", evoformer=2, extra_msa=1, template_pair_stack=2),
    "model_1_ptm_L40": dict(preset="model_1_ptm", evoformer=48, extra_msa=4, template_pair_stack=2),
}
STACK_MARKERS = {"/evoformer_iteration/": "evoformer", "/extra_msa_stack/": "extra_msa",
                 "__layer_stack_no_state": "template_pair_stack"}
OUTPUT_KEYS = (
    "structure_module/final_atom_positions", "structure_module/final_atom_mask", "plddt",
    "predicted_lddt/logits", "distogram/logits", "distogram/bin_edges", "masked_msa/logits",
    "experimentally_resolved/logits", "representations/msa", "representations/msa_first_row",
    "representations/pair", "representations/single", "representations/structure_module",
    "prev/pos", "prev/msa_first_row", "prev/pair",
)
PTM_KEYS = ("predicted_aligned_error", "predicted_aligned_error/logits", "max_predicted_aligned_error", "ptm")
TEMPLATE_KEYS = ("template/torsion_angles_sin_cos", "template/alt_torsion_angles_sin_cos",
                 "template/torsion_angles_mask")


def _manifest(preset: str) -> dict:
    return json.loads((MANIFESTS / f"{preset}.json").read_text())


def _stack(key: str) -> str | None:
    return next((v for k, v in STACK_MARKERS.items() if k in key), None)


@pytest.mark.parametrize("name", REFERENCE_CASES)
def test_case_is_complete_and_as_specified(reference_case, name):
    case = reference_case(name)
    meta, want = case.meta, EXPECTED[name]
    assert meta["preset"] == want["preset"]
    assert meta["blocks"] == {k: want[k] for k in ("evoformer", "extra_msa", "template_pair_stack")}
    assert 1 <= case.num_recycle <= 3
    for r in range(case.num_recycle + 1):
        assert (case.path / f"outputs_r{r}.npz").is_file(), f"{name}: outputs_r{r}.npz missing"
    assert not (case.path / f"outputs_r{case.num_recycle + 1}.npz").exists()


@pytest.mark.parametrize("name", REFERENCE_CASES)
def test_params_follow_deepmind_layout_and_none_is_constant(reference_case, name):
    case = reference_case(name)
    params = case.params
    manifest = _manifest(case.meta["preset"])["shapes"]
    assert sorted(params.files) == sorted(manifest), "key set differs from DeepMind's layout"
    blocks = case.meta["blocks"]
    total = 0
    for key in params.files:
        x = params[key]
        assert x.dtype == np.float32, key
        stack = _stack(key)
        full = tuple(manifest[key])
        if stack is None:
            assert x.shape == full, key
            chunks = [x]
        else:
            # A reduced file has the same keys; only the leading block axis differs.
            assert x.shape == (blocks[stack],) + full[1:], key
            chunks = list(x)
        for i, c in enumerate(chunks):
            assert np.ptp(c) > 0, f"{key} block {i} is constant"
        assert np.isfinite(x).all(), key
        total += x.size
    assert total == case.meta["num_params"]


def test_full_model_1_ptm_has_deepmind_size(reference_case):
    case = reference_case("model_1_ptm_L40")
    params = case.params
    assert len(params.files) == 338
    assert sum(params[k].size for k in params.files) == 93_237_338


def test_manifests_cover_ten_presets_consistently():
    m = {p: _manifest(p) for p in PRESETS}
    assert m["model_1_ptm"]["num_tensors"] == 338 and m["model_1_ptm"]["num_params"] == 93_237_338
    for p, man in m.items():
        assert man["preset"] == p
        assert man["num_tensors"] == len(man["shapes"])
        assert man["num_params"] == sum(int(np.prod(s)) for s in man["shapes"].values())
        # Monomer files are unfused: separate left/right projections and gates.
        tri = [k for k in man["shapes"] if "/triangle_multiplication_outgoing/" in k]
        assert any("/left_projection//" in k for k in tri) and any("/right_gate//" in k for k in tri)
        assert not any("/projection//" in k or "/gate//" in k for k in tri)
    # Models 1-2 use templates, 3-5 do not; _ptm adds the predicted-aligned-error head only.
    keys = {p: set(man["shapes"]) for p, man in m.items()}
    assert keys["model_1"] == keys["model_2"]
    assert keys["model_3"] == keys["model_4"] == keys["model_5"]
    assert keys["model_3"] < keys["model_1"]
    assert all("template" in k for k in keys["model_1"] - keys["model_3"])
    for i in range(1, 6):
        extra = keys[f"model_{i}_ptm"] - keys[f"model_{i}"]
        assert extra and all("/predicted_aligned_error_head/" in k for k in extra)
        assert keys[f"model_{i}"] < keys[f"model_{i}_ptm"]


@pytest.mark.parametrize("name", REFERENCE_CASES)
def test_features_carry_a_recycle_axis_and_real_msa(reference_case, name):
    case = reference_case(name)
    feats = case.features
    n = case.num_recycle + 1
    length = case.meta["sources"]["length"]
    for key in feats.files:
        assert feats[key].shape[0] == n, key
    assert feats["aatype"].shape == (n, length)
    assert feats["msa_feat"].shape[1:] == (case.meta["num_msa_clusters"], length, 49)
    assert feats["extra_msa"].shape[1:] == (case.meta["num_extra_msa"], length)
    # A real MSA: clusters and extra rows are populated, and the clusters are not all the query.
    assert feats["msa_mask"][0].sum(axis=1).min() > 0
    assert feats["extra_msa_mask"][0].sum() > 0
    true_msa = feats["true_msa"][0]
    assert (true_msa[1:] != true_msa[0]).any()


def test_template_case_has_a_real_nonempty_template(reference_case):
    case = reference_case("reduced_template")
    feats = case.features
    mask = feats["template_mask"][0]
    assert mask[0] == 1 and mask[1:].sum() == 0  # one real template, padded to max_templates
    atoms = feats["template_all_atom_masks"][0, 0]
    pos = feats["template_all_atom_positions"][0, 0]
    aligned = atoms[:, 1] > 0  # CA present
    assert aligned.sum() == case.meta["sources"]["template_aligned"] > case.meta["sources"]["length"] // 2
    # Real geometry: consecutive aligned CA atoms of the template about 3.8 Å apart.
    idx = np.flatnonzero(aligned)
    consecutive = idx[1:][np.diff(idx) == 1]
    ca_dist = np.linalg.norm(pos[consecutive, 1] - pos[consecutive - 1, 1], axis=-1)
    assert np.median(ca_dist) == pytest.approx(3.8, abs=0.1)
    # The no-template case has none.
    assert "template_mask" not in reference_case("reduced_notemplate").features.files


@pytest.mark.parametrize("name", REFERENCE_CASES)
def test_outputs_and_recycle_chain(reference_case, name):
    case = reference_case(name)
    length = case.meta["sources"]["length"]
    ptm = case.meta["preset"].endswith("_ptm")
    prev = None
    for r in range(case.num_recycle + 1):
        out = case.outputs(r)
        for key in OUTPUT_KEYS + (PTM_KEYS if ptm else ()):
            assert key in out.files, f"{name} r{r}: {key} missing"
        if not ptm:
            assert not set(PTM_KEYS) & set(out.files)
        if case.meta["uses_templates"]:
            _check_template_torsions(case, out)
        else:
            assert not set(TEMPLATE_KEYS) & set(out.files)
        for key in out.files:
            if out[key].dtype.kind == "f":
                assert out[key].dtype == np.float32 and np.isfinite(out[key]).all(), key
        assert out["structure_module/final_atom_positions"].shape == (length, 37, 3)
        assert out["representations/pair"].shape == (length, length, 128)
        assert out["masked_msa/logits"].shape == (case.meta["num_msa_clusters"], length, 23)
        if ptm:
            assert out["predicted_aligned_error/logits"].shape == (length, length, 64)
            assert out["predicted_aligned_error"].shape == (length, length)
            assert out["ptm"].shape == out["max_predicted_aligned_error"].shape == ()
            assert 0 < out["ptm"] < 1
        # Recycle r's inputs are recycle r-1's outputs (zeros at r = 0): the harness's own loop.
        if prev is None:
            for key in ("prev/pos", "prev/msa_first_row", "prev/pair"):
                assert not out[key].any(), key
        else:
            np.testing.assert_array_equal(out["prev/pos"], prev["structure_module/final_atom_positions"])
            np.testing.assert_array_equal(out["prev/msa_first_row"], prev["representations/msa_first_row"])
            np.testing.assert_array_equal(out["prev/pair"], prev["representations/pair"])
            # Recycling changes the result: the recycle is not a no-op.
            assert not np.array_equal(out["representations/pair"], prev["representations/pair"])
        prev = {k: out[k] for k in out.files}


def _check_template_torsions(case, out) -> None:
    """The template torsion angles the model used: shapes, the fixture's own templates, and the undefined
    pre-omega angle of residue 0 (what the parity tests need) saved as a unit (sin, cos) vector."""
    feats = case.features
    num_templ, length = feats["template_aatype"].shape[1:]
    sin_cos, alt, mask = (out[k] for k in TEMPLATE_KEYS)
    assert sin_cos.shape == alt.shape == (num_templ, length, 7, 2) and mask.shape == (num_templ, length, 7)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    real = feats["template_mask"][0] > 0
    # padded templates have no atoms, hence no defined angle; the real one has many
    assert not mask[~real].any() and mask[real][..., :3].mean() > 0.5
    # pre-omega and phi of residue 0 need the previous residue: undefined. The pre-omega is normalised
    # rounding noise, (nearly) a unit vector, not zeros: the value the parity tests need.
    assert not mask[:, 0, :2].any()
    pre_omega = sin_cos[real][:, 0, 0]
    assert (np.linalg.norm(pre_omega, axis=-1) > 0.99).all()
    # defined angles are unit vectors; the alternative angles differ only in chi angles
    defined = mask > 0
    np.testing.assert_allclose(np.linalg.norm(sin_cos[defined], axis=-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(alt[..., :3, :], sin_cos[..., :3, :])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_harness_regenerates_bit_for_bit(reference_case, tmp_path):
    """Regenerate reduced_notemplate from its seed in the reference venv; every file must be identical."""
    case = reference_case("reduced_notemplate")
    venv = Path(os.environ.get("AF_REFERENCE_VENV") or ROOT / ".cache" / "reference-venv")
    python = venv / "bin" / "python"
    if not python.is_file():
        pytest.fail(f"reference venv {venv} missing: run `bash tests/reference/setup_venv.sh`")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"JAX_PLATFORMS": "cpu"}
    out = tmp_path / "out"
    work = tmp_path / "cwd"  # outside the repository: DeepMind's package is also named alphafold
    work.mkdir()
    proc = subprocess.run(
        [str(python), str(HERE / "make_fixture.py"), "reduced_notemplate", "--out", str(out),
         "--seed", str(case.meta["seed"])],
        cwd=work, env=env, capture_output=True, text=True, timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    fresh = out / "reduced_notemplate"
    cached = sorted(p.name for p in case.path.iterdir())
    assert sorted(p.name for p in fresh.iterdir()) == cached
    for name in cached:
        assert _sha256(fresh / name) == _sha256(case.path / name), f"{name} differs from {reference_dir()}"
