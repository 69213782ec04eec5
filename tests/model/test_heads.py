"""Output heads and confidence values: symmetry, bin edges, pLDDT / PAE / pTM against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from alphafold.model.config import HeadsConfig
from alphafold.model.heads import (
    LARGE_LOGITS,
    apply_heads,
    compute_plddt,
    compute_predicted_aligned_error,
    make_heads,
    predicted_tm_score,
)

C_S, C_Z, C_M, N_RES, N_CLUST = 19, 14, 12, 17, 5


def _root(use_pae: bool) -> nn.Module:
    torch.manual_seed(0)
    root = nn.Module()
    for name, head in make_heads(HeadsConfig(use_predicted_aligned_error=use_pae), C_S, C_Z, C_M).items():
        root.add_module(name, head)
    with torch.no_grad():
        for p in root.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return root


def _reps():
    g = torch.Generator().manual_seed(1)
    return {"single": torch.randn(N_RES, C_S, generator=g),
            "pair": torch.randn(N_RES, N_RES, C_Z, generator=g),
            "msa": torch.randn(N_CLUST, N_RES, C_M, generator=g),
            "structure_module": torch.randn(N_RES, C_S, generator=g)}


@pytest.mark.parametrize("use_pae", [False, True])
def test_output_names_and_shapes(use_pae):
    with torch.no_grad():
        out = apply_heads(_root(use_pae), _reps(), torch.ones(N_RES))
    shapes = {"distogram/logits": (N_RES, N_RES, 64), "distogram/bin_edges": (63,),
              "masked_msa/logits": (N_CLUST, N_RES, 23), "experimentally_resolved/logits": (N_RES, 37),
              "predicted_lddt/logits": (N_RES, 50), "plddt": (N_RES,)}
    if use_pae:
        shapes.update({"predicted_aligned_error/logits": (N_RES, N_RES, 64),
                       "predicted_aligned_error": (N_RES, N_RES), "max_predicted_aligned_error": (),
                       "ptm": ()})
    assert {k: tuple(v.shape) for k, v in out.items()} == shapes
    logits = out["distogram/logits"]
    torch.testing.assert_close(logits, logits.transpose(0, 1))
    assert (logits - logits.mean()).abs().max() > 0.1
    torch.testing.assert_close(out["distogram/bin_edges"], torch.linspace(2.3125, 21.6875, 63))


def test_plddt_closed_forms():
    assert torch.allclose(compute_plddt(torch.zeros(3, 50)), torch.full((3,), 50.0))
    one_hot = torch.full((3, 50), -1e4)
    one_hot[0, 0], one_hot[1, 49], one_hot[2, 10] = 0, 0, 0
    torch.testing.assert_close(compute_plddt(one_hot), torch.tensor([1.0, 99.0, 21.0]))


def test_pae_and_ptm_closed_forms():
    breaks = torch.linspace(0, 31, 63)  # step 0.5: centres 0.25, 0.75, ..., 31.25 and catch-all 31.75
    logits = torch.full((40, 40, 64), -1e4)
    logits[..., 3] = 0
    pae, max_pae = compute_predicted_aligned_error(logits, breaks)
    torch.testing.assert_close(pae, torch.full((40, 40), 1.75))
    assert math.isclose(float(max_pae), 31.75)
    # every pair certain at error 1.75 Å: pTM = 1 / (1 + (1.75 / d0)^2), d0 = 1.24 (40 - 15)^(1/3) - 1.8
    d0 = 1.24 * 25 ** (1 / 3) - 1.8
    assert math.isclose(float(predicted_tm_score(logits, breaks)), 1 / (1 + (1.75 / d0) ** 2), rel_tol=1e-5)
    # with 10 real residues N is clipped to 19 (d0 = 0.168 Å) and padding does not count
    weights = torch.zeros(40)
    weights[:10] = 1
    d0_small = 1.24 * 4 ** (1 / 3) - 1.8
    logits[10:, :, :] = 0  # padded rows are uniform noise, ignored by the weights
    assert math.isclose(float(predicted_tm_score(logits, breaks, weights)), 1 / (1 + (1.75 / d0_small) ** 2),
                        rel_tol=1e-5)


def test_given_logits_replace_their_heads_and_feed_pae_and_ptm():
    # heads run elsewhere (e.g. on shards) hand in their logits; apply_heads derives the rest from them
    root = _root(use_pae=True)
    reps = {"single": torch.randn(N_RES, C_S), "pair": torch.randn(N_RES, N_RES, C_Z),
            "msa": torch.randn(N_CLUST, N_RES, C_M), "structure_module": torch.randn(N_RES, C_S)}
    mask = torch.ones(N_RES)
    whole = apply_heads(root, reps, mask)
    given = {k: whole[k] + 0.5 for k in LARGE_LOGITS}
    got = apply_heads(root, {k: reps[k] for k in ("single", "structure_module")}, mask, given)
    assert set(got) == set(whole)
    for key in LARGE_LOGITS:
        torch.testing.assert_close(got[key], given[key])
    # a uniform shift of the logits leaves the softmax, so PAE and pTM, unchanged
    for key in ("predicted_aligned_error", "ptm", "distogram/bin_edges", "plddt"):
        torch.testing.assert_close(got[key], whole[key], rtol=1e-5, atol=1e-5)
