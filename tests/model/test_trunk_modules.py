"""Shape contracts and chunking invariance of the trunk modules (tiny, distinct sizes)."""

from __future__ import annotations

import math

import pytest
import torch

from alphafold.model.chunking import chunk_layer, resolve_chunk_size
from alphafold.model.evoformer import BlockSizes, EvoformerIteration
from alphafold.model.msa import MSAColumnGlobalAttention, OuterProductMean
from alphafold.model.torsion_features import atom37_to_torsion_angles
from alphafold.model.triangle import TriangleAttention, TriangleMultiplication

N_SEQ, N_RES = 7, 13
SIZES = BlockSizes(
    c_m=12,
    c_z=10,
    num_heads_msa_row=3,
    num_heads_msa_column=2,
    num_heads_pair=2,
    c_hidden_outer=5,
    c_hidden_tri_mul=9,
    transition_factor=2,
)


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Every parameter random (gates included), so no branch is the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def _inputs(seed: int = 0, c_m: int = SIZES.c_m):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(N_SEQ, N_RES, c_m, generator=g)
    z = torch.randn(N_RES, N_RES, SIZES.c_z, generator=g)
    msa_mask = (torch.rand(N_SEQ, N_RES, generator=g) > 0.2).float()
    seq_mask = torch.ones(N_RES)
    seq_mask[-2:] = 0
    return m, z, msa_mask, seq_mask[:, None] * seq_mask[None, :]


@pytest.mark.parametrize("is_extra_msa", [False, True])
def test_evoformer_block_shapes_and_chunking(is_extra_msa):
    block = EvoformerIteration(SIZES, is_extra_msa=is_extra_msa)
    _randomise(block, 1)
    m, z, msa_mask, pair_mask = _inputs()
    with torch.inference_mode():
        m_full, z_full = block(m.clone(), z.clone(), msa_mask, pair_mask, chunk_size=None)
        m_chunk, z_chunk = block(m.clone(), z.clone(), msa_mask, pair_mask, chunk_size=3)
    assert m_full.shape == (N_SEQ, N_RES, SIZES.c_m)
    assert z_full.shape == (N_RES, N_RES, SIZES.c_z)
    assert not torch.allclose(m_full, m) and not torch.allclose(z_full, z)
    torch.testing.assert_close(m_chunk, m_full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(z_chunk, z_full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("is_extra_msa", [False, True])
@pytest.mark.parametrize("chunk_size", [None, 4])
def test_masked_entries_do_not_reach_kept_ones(is_extra_msa, chunk_size):
    """DeepMind's masking: MSA entries with msa_mask 0 and pairs with a padding residue are never read by
    kept entries (attention keys, the outer product mean and the triangle projections are all masked), so
    changing them changes no kept output. Chunked == unchunked alone cannot see a mask that is ignored."""
    block = EvoformerIteration(SIZES, is_extra_msa=is_extra_msa)
    _randomise(block, 2)
    m, z, msa_mask, pair_mask = _inputs(5)
    msa_mask[:, -2:] = 0  # padding residues have no MSA entries
    g = torch.Generator().manual_seed(9)
    m_other = torch.where(msa_mask[..., None] > 0, m, torch.randn(m.shape, generator=g) * 3)
    z_other = torch.where(pair_mask[..., None] > 0, z, torch.randn(z.shape, generator=g) * 3)
    with torch.inference_mode():
        m_out, z_out = block(m.clone(), z.clone(), msa_mask, pair_mask, chunk_size)
        m_out2, z_out2 = block(m_other, z_other, msa_mask, pair_mask, chunk_size)
    kept_m, kept_z = msa_mask > 0, pair_mask > 0
    assert 0 < kept_m.sum() < msa_mask.numel() and 0 < kept_z.sum() < pair_mask.numel()
    torch.testing.assert_close(m_out2[kept_m], m_out[kept_m], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(z_out2[kept_z], z_out[kept_z], rtol=1e-5, atol=1e-5)
    # the masked entries did change, and they do move their own outputs
    assert not torch.allclose(m_out2[~kept_m], m_out[~kept_m])


def test_evoformer_block_rejects_mismatched_shapes():
    block = EvoformerIteration(SIZES, is_extra_msa=False)
    m, z, msa_mask, pair_mask = _inputs()
    with pytest.raises(ValueError, match="Evoformer block"):
        block(m[:, :-1], z, msa_mask, pair_mask)


def test_triangle_multiplication_matches_explicit_sum():
    """The batched-matmul contraction equals the paper's sums, incl. DeepMind's incoming operand swap."""
    _, z, _, pair_mask = _inputs(2)
    for outgoing in (True, False):
        tm = TriangleMultiplication(SIZES.c_z, SIZES.c_hidden_tri_mul, outgoing=outgoing)
        _randomise(tm, 3)
        with torch.inference_mode():
            left, right = tm.projections(tm.layer_norm_input(z), pair_mask)
            x = tm.contract(left, right)
            eq = "ikc,jkc->ijc" if outgoing else "kjc,kic->ijc"
            torch.testing.assert_close(x, torch.einsum(eq, left, right), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("outgoing", [True, False])
@pytest.mark.parametrize("c_hidden", [9, 35])
def test_triangle_multiplication_chunked_equals_unchunked(outgoing, c_hidden):
    """The lean path (row chunks, channel-major projections, x written over left in channel groups of
    c // 16, a last partial group with c = 35) gives the unchunked update."""
    _, z, _, pair_mask = _inputs(4)
    tm = TriangleMultiplication(SIZES.c_z, c_hidden, outgoing=outgoing)
    _randomise(tm, 5)
    with torch.inference_mode():
        full = tm(z, pair_mask)
        for chunk in (1, 4, 12):
            torch.testing.assert_close(tm(z, pair_mask, chunk), full, rtol=1e-5, atol=1e-5)
    assert full.abs().mean() > 0.1


@pytest.mark.parametrize("starting", [True, False])
def test_triangle_attention_chunked_equals_unchunked(starting):
    """The chunked path (normalised pair per row chunk, bias assembled from chunks) gives the unchunked
    update, padding rows included."""
    _, z, _, pair_mask = _inputs(6)
    ta = TriangleAttention(SIZES.c_z, SIZES.num_heads_pair, starting=starting)
    _randomise(ta, 7)
    with torch.inference_mode():
        full = ta(z, pair_mask)
        for chunk in (1, 5):
            torch.testing.assert_close(ta(z, pair_mask, chunk), full, rtol=1e-5, atol=1e-5)
    assert full.abs().mean() > 0.1


@pytest.mark.parametrize("starting", [True, False])
def test_triangle_attention_ending_is_starting_on_transpose(starting):
    _, z, _, pair_mask = _inputs(4)
    ta = TriangleAttention(SIZES.c_z, 2, starting=starting)
    _randomise(ta, 5)
    with torch.inference_mode():
        out = ta(z, pair_mask, chunk_size=4)
        ta.starting = not starting
        flipped = ta(z.transpose(0, 1), pair_mask.transpose(0, 1), chunk_size=None).transpose(0, 1)
    torch.testing.assert_close(out, flipped, rtol=1e-5, atol=1e-5)


def test_outer_product_mean_against_definition():
    m, _, msa_mask, _ = _inputs(6)
    opm = OuterProductMean(SIZES.c_m, SIZES.c_z, SIZES.c_hidden_outer)
    _randomise(opm, 7)
    with torch.inference_mode():
        a, b = opm.projections(m, msa_mask)
        outer = torch.einsum("sic,sje->ijce", a, b)
        expected = torch.einsum("ijce,cef->ijf", outer, opm.output_w) + opm.output_b
        norm = torch.einsum("si,sj->ij", msa_mask, msa_mask)[..., None]
        torch.testing.assert_close(
            opm(m, msa_mask, chunk_size=5), expected / (1e-3 + norm), rtol=1e-5, atol=1e-4
        )


def test_global_column_attention_ignores_masked_rows():
    """Changing a masked-out sequence's content changes no unmasked output (Alg. 19's masked mean)."""
    e, _, msa_mask, _ = _inputs(8)
    gca = MSAColumnGlobalAttention(SIZES.c_m, 3)
    _randomise(gca, 9)
    msa_mask[2, :] = 0
    e2 = e.clone()
    e2[2] += 5.0
    with torch.inference_mode():
        out1 = gca(e, msa_mask, chunk_size=4)
        out2 = gca(e2, msa_mask, chunk_size=None)
    keep = torch.ones(N_SEQ, dtype=torch.bool)
    keep[2] = False
    torch.testing.assert_close(out1[keep], out2[keep], rtol=1e-5, atol=1e-5)


def test_chunk_layer_broadcasts_size_one_inputs():
    x = torch.arange(10.0).reshape(10, 1)
    y = torch.full((1, 1), 2.0)
    out = chunk_layer(lambda a, b: a * b, (x, y), chunk_size=3)
    torch.testing.assert_close(out, x * 2)


def test_resolve_chunk_size():
    cpu = torch.device("cpu")
    assert resolve_chunk_size(7, 100, 10, 4, cpu, 4) == 7
    assert resolve_chunk_size(None, 100, 10, 4, cpu, 4) is None
    # tiny problem: everything fits, no chunking
    assert resolve_chunk_size("auto", 20, 8, 4, cpu, 4) is None
    # a huge length must be chunked
    size = resolve_chunk_size("auto", 200_000, 8, 4, cpu, 4)
    assert isinstance(size, int) and size < 200_000


def test_resolve_chunk_size_from_budget():
    cpu = torch.device("cpu")
    # a budget replaces the free memory: per row 2 buffers x 4 heads x 1000^2 x 4 bytes = 32 MB, and a
    # quarter of 3.2 GB holds 25 rows; 10x the budget, 250 rows
    assert resolve_chunk_size("auto", 1000, 8, 4, cpu, 4, free_bytes=3_200_000_000) == 25
    assert resolve_chunk_size("auto", 1000, 8, 4, cpu, 4, free_bytes=32_000_000_000) == 250
    # a fixed size ignores the budget
    assert resolve_chunk_size(7, 1000, 8, 4, cpu, 4, free_bytes=3_200_000_000) == 7


def _ideal_dihedral_chain(angle: float) -> torch.Tensor:
    """Four points with dihedral ``angle`` about the middle bond."""
    p0 = torch.tensor([1.0, 1.0, 0.0])
    p1 = torch.tensor([0.0, 1.0, 0.0])
    p2 = torch.tensor([0.0, 0.0, 0.0])
    p3 = torch.tensor([math.cos(angle), -1.0, math.sin(angle)])
    return torch.stack([p0, p1, p2, p3])


def test_chi1_torsion_of_known_geometry():
    """chi1 of a serine (N, CA, CB, OG) placed with a known dihedral comes out as that angle."""
    from alphafold.common import residue_constants as rc

    for angle in (0.3, -1.2, 2.5):
        pts = _ideal_dihedral_chain(angle)
        pos = torch.zeros(1, 1, 37, 3)
        mask = torch.zeros(1, 1, 37)
        for atom, p in zip(("N", "CA", "CB", "OG"), pts):
            pos[0, 0, rc.atom_order[atom]] = p
            mask[0, 0, rc.atom_order[atom]] = 1
        out = atom37_to_torsion_angles(torch.tensor([[rc.restype_order["S"]]]), pos, mask)
        sin, cos = out["torsion_angles_sin_cos"][0, 0, 3]
        dihedral = math.atan2(float(sin), float(cos))
        # IUPAC dihedral of p0-p1-p2-p3 computed independently
        b0, b1, b2 = pts[0] - pts[1], pts[2] - pts[1], pts[3] - pts[2]
        b1n = b1 / b1.norm()
        v = b0 - (b0 @ b1n) * b1n
        w = b2 - (b2 @ b1n) * b1n
        expected = math.atan2(float(torch.linalg.cross(b1n, v) @ w), float(v @ w))
        assert dihedral == pytest.approx(expected, abs=1e-5)
        assert out["torsion_angles_mask"][0, 0].tolist() == [0, 0, 0, 1, 0, 0, 0]
