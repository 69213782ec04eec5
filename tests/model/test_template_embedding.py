"""Template pointwise attention (Alg. 17) accumulated template by template equals the softmax over all
templates at once (tiny, distinct sizes)."""

from __future__ import annotations

import pytest
import torch

from alphafold.model.attention import mask_to_bias
from alphafold.model.config import TemplateConfig
from alphafold.model.template import TemplateEmbedding, dgram_from_positions

N_RES, C_Z, NUM_TEMPLATES = 11, 14, 3
CONFIG = TemplateConfig(enabled=True, num_blocks=1, c_t=10, num_heads_tri=2, c_hidden_tri_mul=6,
                        num_heads_pointwise=3, c_hidden_pointwise=15)


def _batch(seed: int, template_mask: list[float]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = len(template_mask)
    pos = torch.randn(t, N_RES, 37, 3, generator=g) * 8
    mask = (torch.rand(t, N_RES, 37, generator=g) > 0.1).float()
    return {
        "template_aatype": torch.randint(0, 21, (t, N_RES), generator=g),
        "template_all_atom_positions": pos,
        "template_all_atom_masks": mask,
        "template_pseudo_beta": pos[:, :, 3],
        "template_pseudo_beta_mask": mask[:, :, 3],
        "template_mask": torch.tensor(template_mask),
    }


def _all_at_once(module: TemplateEmbedding, z, batch, pair_mask) -> torch.Tensor:
    """Alg. 17 as written: every template's pair stack, stacked, one softmax over the T templates."""
    embed = module.single_template_embedding
    t = torch.stack([
        embed(batch["template_aatype"][i], batch["template_all_atom_positions"][i],
              batch["template_all_atom_masks"][i], batch["template_pseudo_beta"][i],
              batch["template_pseudo_beta_mask"][i], pair_mask, None)
        for i in range(batch["template_mask"].shape[0])
    ], dim=2)
    n = z.shape[0]
    bias = mask_to_bias(batch["template_mask"])[None, None, None, :]
    out = module.attention(z.reshape(n * n, 1, -1), t.reshape(n * n, t.shape[2], -1), [bias])
    return out.reshape(n, n, -1)


@pytest.mark.parametrize("template_mask", [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
def test_accumulated_softmax_equals_softmax_over_all_templates(template_mask):
    torch.manual_seed(0)
    module = TemplateEmbedding(CONFIG, C_Z)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    z = torch.randn(N_RES, N_RES, C_Z, generator=g)
    seq_mask = torch.ones(N_RES)
    seq_mask[-1] = 0
    pair_mask = seq_mask[:, None] * seq_mask[None, :]
    batch = _batch(3, template_mask)
    with torch.inference_mode():
        expected = _all_at_once(module, z, batch, pair_mask)
        for chunk in (None, 4):
            got = module(z, batch, pair_mask, chunk)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert expected.abs().mean() > 0.1


def test_no_present_template_gives_no_update():
    module = TemplateEmbedding(CONFIG, C_Z)
    z = torch.randn(N_RES, N_RES, C_Z)
    with torch.inference_mode():
        out = module(z, _batch(1, [0.0, 0.0]), torch.ones(N_RES, N_RES), 5)
    assert torch.count_nonzero(out) == 0


def test_pair_features_of_a_row_block_are_those_rows_of_the_whole():
    # the chunked embedding and each rank of the sharded one build only their rows of the [N, N, 88] features
    embed = TemplateEmbedding(CONFIG, C_Z).single_template_embedding
    batch = _batch(5, [1.0])
    args = [batch[k][0] for k in ("template_aatype", "template_all_atom_positions", "template_all_atom_masks",
                                  "template_pseudo_beta", "template_pseudo_beta_mask")]
    whole = embed.pair_features(*args)
    assert whole.shape == (N_RES, N_RES, 88)
    blocks = [embed.pair_features(*args, rows=slice(a, b)) for a, b in ((0, 4), (4, 4), (4, 10), (10, 11))]
    assert [b.shape[0] for b in blocks] == [4, 0, 6, 1]
    torch.testing.assert_close(torch.cat(blocks), whole, rtol=0, atol=0)
    # not trivially zero: distogram bins, masks and both residues' amino acids are set
    assert whole[..., :39].sum() > 0 and whole[..., 39:].sum() > 0


def test_absent_template_slots_are_not_embedded():
    # their weight in Alg. 17 is exactly 0 (checked against all slots at once above): their pair stacks are
    # skipped, so a target with 1 template in 4 slots pays for 1 stack
    module = TemplateEmbedding(CONFIG, C_Z)
    calls = []
    module.single_template_embedding.register_forward_hook(lambda mod, args, out: calls.append(args[0]))
    batch = _batch(2, [0.0, 1.0, 0.0])
    with torch.inference_mode():
        out = module(torch.randn(N_RES, N_RES, C_Z), batch,
               torch.ones(N_RES, N_RES, dtype=torch.bfloat16), None)
    assert len(calls) == 1 and torch.equal(calls[0], batch["template_aatype"][1])
    assert out.abs().max() > 0


def test_bfloat16_trunk_bins_the_float32_template_positions():
    # DeepMind bins the float32 pseudo-beta distances and casts the one-hot afterwards. Positions rounded to
    # bfloat16 first (8 mantissa bits: 0.25-0.5 Å at 30-100 Å) would move pairs into neighbouring 1.25 Å bins.
    module = TemplateEmbedding(CONFIG, C_Z).to(torch.bfloat16)
    batch = _batch(4, [1.0])
    batch["template_pseudo_beta"] = batch["template_pseudo_beta"] + 70.0
    batch["template_pseudo_beta_mask"] = torch.ones_like(batch["template_pseudo_beta_mask"])
    seen = []
    module.single_template_embedding.embedding2d.register_forward_hook(
        lambda mod, args, out: seen.append(args[0]))
    with torch.inference_mode():
        module(torch.randn(N_RES, N_RES, C_Z).to(torch.bfloat16), batch,
               torch.ones(N_RES, N_RES, dtype=torch.bfloat16), None)
    pb = batch["template_pseudo_beta"][0]
    assert pb.dtype == torch.float32
    expected = dgram_from_positions(pb, CONFIG.dgram_num_bins, CONFIG.dgram_min_bin, CONFIG.dgram_max_bin)
    # the backbone mask zeroes some pairs' features; compare where it keeps them
    kept = seen[0][..., -1:] > 0
    assert kept.sum() > N_RES
    got = seen[0][..., :CONFIG.dgram_num_bins].float()
    assert torch.equal(got * kept, expected * kept)
