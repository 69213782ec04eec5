"""Parity of the structure module and every output head with DeepMind's JAX model (reference fixtures).

Each fixture recycle's saved ``representations/{single,pair,msa}`` are fed to our structure module and
heads, loaded from the fixture's ``params.npz`` by the production loader, and every output is compared
with DeepMind's. Tolerances (issue 3): max |ours - theirs| <= 1e-4 * max |theirs| for every output, and
<= 1e-3 Å absolute for coordinates, float32 on CPU. Fixtures live in ``$AF_REFERENCE_DIR`` (default
``<repo>/.cache/reference``); CI always has them, so a missing fixture fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REFERENCE_CASES
from torch import nn

from alphafold.model.config import HeadsConfig, StructureModuleConfig
from alphafold.model.heads import apply_heads, make_heads
from alphafold.model.structure_module import StructureModule
from alphafold.params.loader import ROOT_PREFIX, load_into

pytestmark = pytest.mark.reference

OWN_MODULES = ("structure_module", "distogram_head", "experimentally_resolved_head", "masked_msa_head",
               "predicted_lddt_head", "predicted_aligned_error_head")
RELATIVE_TOL = 1e-4
COORDINATE_TOL = 1e-3  # Å
COORDINATES = ("structure_module/final_atom_positions",)


class _Outputs(nn.Module):
    """The structure module and heads under the root names of the params file."""

    def __init__(self, use_pae: bool) -> None:
        super().__init__()
        self.structure_module = StructureModule(StructureModuleConfig())
        for name, head in make_heads(HeadsConfig(use_predicted_aligned_error=use_pae)).items():
            self.add_module(name, head)


@pytest.fixture(scope="module", params=REFERENCE_CASES)
def case(request, reference_case):
    ref = reference_case(request.param)
    with ref.params as f:
        keys = [k for k in f.files if k.startswith(ROOT_PREFIX)
                and k[len(ROOT_PREFIX):].split("/", 1)[0].split("//", 1)[0] in OWN_MODULES]
        params = {k: f[k] for k in keys}
    use_pae = any("predicted_aligned_error_head" in k for k in keys)
    model = _Outputs(use_pae)
    load_into(model, params, where=str(ref.path / "params.npz"))
    with ref.features as f:
        features = {k: f[k] for k in ("aatype", "seq_mask")}
    return ref, model, features, use_pae


def _run(model: _Outputs, ref: dict[str, np.ndarray], aatype: np.ndarray, seq_mask: np.ndarray):
    t = {k: torch.from_numpy(ref[f"representations/{k}"]) for k in ("single", "pair", "msa")}
    mask = torch.from_numpy(seq_mask.astype(np.float32))
    with torch.no_grad():
        sm = model.structure_module(t["single"], t["pair"], torch.from_numpy(aatype.astype(np.int64)), mask)
        out = {"representations/structure_module": sm["act"],
               "structure_module/final_atom_positions": sm["final_atom_positions"],
               "structure_module/final_atom_mask": sm["final_atom_mask"]}
        out.update(apply_heads(model, {**t, "structure_module": sm["act"]}, mask))
    return {k: v.numpy() for k, v in out.items()}


def test_structure_module_and_heads_match_deepmind(case):
    case_ref, model, features, use_pae = case
    name = case_ref.name
    failures = []
    for r in range(case_ref.num_recycle + 1):
        with case_ref.outputs(r) as f:
            ref = {k: f[k] for k in f.files}
        ours = _run(model, ref, features["aatype"][r], features["seq_mask"][r])
        if not use_pae:
            assert "ptm" not in ours
        for key, value in ours.items():
            if key not in ref:
                failures.append(f"{name} r{r} {key}: not in the fixture")
                continue
            theirs = ref[key].astype(np.float32)
            if theirs.shape == (1,) and value.shape == ():  # the fixtures store pTM and max PAE as [1]
                theirs = theirs.reshape(())
            assert value.shape == theirs.shape, (name, r, key, value.shape, theirs.shape)
            diff = float(np.max(np.abs(value - theirs))) if value.size else 0.0
            scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
            rel = diff / scale if scale > 0 else diff
            limit_ok = diff <= COORDINATE_TOL if key in COORDINATES else True
            if rel > RELATIVE_TOL or not limit_ok:
                failures.append(f"{name} r{r} {key}: max abs diff {diff:.3g}, relative {rel:.3g}")
    assert not failures, "\n".join(failures)
