"""Outputs from DeepMind's own model outputs (the reference fixtures): confidences match DeepMind's values.

The fixtures (docs/contracts.md, `$AF_REFERENCE_DIR`) hold DeepMind's JAX outputs under the model-output
names, without the run metadata our `run-features` adds; `aatype` and `residue_index` are taken from the
processed features here, as `run-features` does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from alphafold.io_utils import load_npz, save_npz_atomic
from alphafold.outputs import confidence
from alphafold.outputs.structure import read_structure

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = Path(os.environ.get("AF_REFERENCE_DIR", ROOT / ".cache" / "reference"))
CASES = sorted(p.parent for p in REFERENCE_DIR.glob("*/meta.json")) if REFERENCE_DIR.is_dir() else []

pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(not CASES, reason=f"no reference fixtures in {REFERENCE_DIR} (tests/reference/)"),
]


def _last_outputs(case: Path) -> dict:
    last = sorted(case.glob("outputs_r*.npz"), key=lambda p: int(p.stem.removeprefix("outputs_r")))[-1]
    return load_npz(last)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_confidences_match_deepmind(case):
    outputs = _last_outputs(case)
    # DeepMind's compute_plddt in float32 vs ours in float64
    np.testing.assert_allclose(
        confidence.plddt_from_logits(outputs["predicted_lddt/logits"]), outputs["plddt"], atol=1e-3
    )
    if "predicted_aligned_error/logits" in outputs and "ptm" in outputs:
        breaks = outputs.get("predicted_aligned_error/breaks", confidence.DEFAULT_PAE_BREAKS)
        pae, max_pae = confidence.pae_from_logits(outputs["predicted_aligned_error/logits"], breaks)
        np.testing.assert_allclose(pae, outputs["predicted_aligned_error"], atol=1e-3)
        assert max_pae == pytest.approx(np.asarray(outputs["max_predicted_aligned_error"]).item())
        assert confidence.ptm_from_logits(outputs["predicted_aligned_error/logits"], breaks) == pytest.approx(
            np.asarray(outputs["ptm"]).item(), abs=1e-4
        )


@pytest.mark.parametrize("case", CASES[:1], ids=[c.name for c in CASES[:1]])
def test_write_outputs_on_deepmind_outputs(case, cli, tmp_path):
    outputs = _last_outputs(case)
    features = load_npz(case / "features.npz")
    meta = json.loads((case / "meta.json").read_text())
    prediction = {k: v for k, v in outputs.items() if not k.startswith(("prev/", "representations/"))}
    prediction["aatype"] = features["aatype"][0]
    prediction["residue_index"] = features["residue_index"][0]
    prediction["meta/preset"] = np.array(meta["preset"].encode())
    prediction["meta/num_recycles_run"] = np.array(meta["num_recycle"])
    save_npz_atomic(tmp_path / "prediction.npz", prediction)
    out = tmp_path / case.name
    cli(
        "write-outputs",
        "--prediction",
        tmp_path / "prediction.npz",
        "--features",
        case / "features.npz",
        "--output-dir",
        out,
    )
    chain = read_structure(out / "ranked_0.pdb")
    mask = outputs["structure_module/final_atom_mask"] > 0.5
    np.testing.assert_array_equal(chain.atom_mask > 0.5, mask)
    np.testing.assert_allclose(
        chain.atom_positions[mask], outputs["structure_module/final_atom_positions"][mask], atol=6e-4
    )
    assert chain.sequence == meta["sources"]["query"]
    scores = json.loads((out / f"scores_{meta['preset']}.json").read_text())
    assert scores["mean_plddt"] == pytest.approx(float(outputs["plddt"].mean()), abs=1e-3)
    assert scores["num_recycles_run"] == meta["num_recycle"]
    assert (out / "msa_coverage.png").stat().st_size > 1000
