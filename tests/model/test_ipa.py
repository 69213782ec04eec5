"""Invariant point attention (Suppl. Alg. 22): invariance under a global rigid motion, masking."""

from __future__ import annotations

import math

import torch

from alphafold.model.config import StructureModuleConfig
from alphafold.model.ipa import InvariantPointAttention
from alphafold.model.rigid import QuatAffine, Rigid

CONFIG = StructureModuleConfig(c_s=19, c_z=14, num_heads=3, num_scalar_qk=5, num_point_qk=4, num_scalar_v=6,
                               num_point_v=7)
N_RES = 12


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    ipa = InvariantPointAttention(CONFIG).double()
    with torch.no_grad():
        for p in ipa.parameters():  # no zero output projection, no constant tensors
            p.add_(0.3 * torch.randn_like(p))
    s = torch.randn(N_RES, CONFIG.c_s, dtype=torch.float64)
    z = torch.randn(N_RES, N_RES, CONFIG.c_z, dtype=torch.float64)
    q = torch.randn(N_RES, 4, dtype=torch.float64)
    frames = QuatAffine.from_quaternion(q, 3 * torch.randn(N_RES, 3, dtype=torch.float64))
    return ipa, s, z, frames


def test_output_shape_and_dependence_on_frames():
    ipa, s, z, frames = _setup()
    mask = torch.ones(N_RES, dtype=torch.float64)
    out = ipa(s, z, mask, frames)
    assert out.shape == (N_RES, CONFIG.c_s)
    # moving one residue's frame relative to the others changes the result (points matter)
    moved = QuatAffine.from_quaternion(frames.quaternion, frames.trans.clone().index_add_(
        0, torch.tensor([3]), torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.float64)), False)
    assert (ipa(s, z, mask, moved) - out).abs().max() > 1e-3


def test_invariant_under_global_rigid_transform():
    ipa, s, z, frames = _setup(1)
    mask = torch.ones(N_RES, dtype=torch.float64)
    out = ipa(s, z, mask, frames)
    q = torch.tensor([0.3, -0.5, 0.8, 0.1], dtype=torch.float64)
    g = QuatAffine.from_quaternion(q.expand(N_RES, 4), torch.tensor([5.0, -7.0, 11.0], dtype=torch.float64)
                                   .expand(N_RES, 3))
    moved = g.to_rigid().compose(frames)
    out_moved = ipa(s, z, mask, Rigid(moved.rot, moved.trans))
    torch.testing.assert_close(out_moved, out, rtol=1e-9, atol=1e-9)


def test_masked_residues_do_not_influence_real_ones():
    ipa, s, z, frames = _setup(2)
    mask = torch.ones(N_RES, dtype=torch.float64)
    mask[-3:] = 0
    out = ipa(s, z, mask, frames)
    s2, z2 = s.clone(), z.clone()
    s2[-3:] += 5 * torch.randn(3, CONFIG.c_s, dtype=torch.float64)
    z2[:, -3:] += 5 * torch.randn(N_RES, 3, CONFIG.c_z, dtype=torch.float64)
    out2 = ipa(s2, z2, mask, frames)
    torch.testing.assert_close(out2[:-3], out[:-3], rtol=0, atol=1e-8)


def test_variance_weights():
    ipa = InvariantPointAttention(StructureModuleConfig())
    assert math.isclose(ipa.scalar_weight, math.sqrt(1 / (3 * 16)))
    assert math.isclose(ipa.point_weight, math.sqrt(2 / (9 * 4)) * math.sqrt(1 / 3))
    assert math.isclose(ipa.pair_weight, math.sqrt(1 / 3))
    # softplus(trainable_point_weights) starts at 1
    torch.testing.assert_close(torch.nn.functional.softplus(ipa.trainable_point_weights), torch.ones(12))


def test_query_row_blocks_give_those_rows_of_the_whole_attention():
    # each query residue attends with its own pair row: rows 0-4, 5-10, 11 computed apart equal the whole;
    # an empty block (a rank without rows when N_res < P) gives an empty update
    ipa, s, z, frames = _setup(3)
    mask = torch.ones(N_RES, dtype=torch.float64)
    mask[-2] = 0
    whole = ipa(s, z, mask, frames)
    blocks = [ipa(s, z[a:b], mask, frames, query_start=a) for a, b in ((0, 5), (5, 5), (5, 11), (11, 12))]
    assert [b.shape for b in blocks] == [(5, CONFIG.c_s), (0, CONFIG.c_s), (6, CONFIG.c_s), (1, CONFIG.c_s)]
    torch.testing.assert_close(torch.cat(blocks), whole, rtol=1e-12, atol=1e-12)


def test_padding_query_rows_are_the_unmasked_softmax_without_rounding_noise():
    # A padding query's logits all carry the same mask shift, which softmax ignores: its row is the unmasked
    # attention. DeepMind's form (logits - 1e5) rounds the logits to ~3 decimals in float32 (~1e-3 relative
    # error in the output); ours stays within float32 rounding of the float64 value (bound 1e-5 relative).
    ipa, s, z, frames = _setup(4)
    mask = torch.ones(N_RES, dtype=torch.float64)
    mask[-3:] = 0
    exact = ipa(s, z, torch.ones_like(mask), frames)[-3:]
    ipa32 = InvariantPointAttention(CONFIG)
    ipa32.load_state_dict({k: v.float() for k, v in ipa.state_dict().items()})
    frames32 = QuatAffine.from_quaternion(frames.quaternion.float(), frames.trans.float(), False)
    got = ipa32(s.float(), z.float(), mask.float(), frames32)[-3:].double()
    assert (got - exact).abs().max() <= 1e-5 * exact.abs().max()
