"""The sharded trunk (embeddings, templates with torsion rows, extra-MSA stack, Evoformer, recycled inputs)
equals the model's ``EmbeddingsAndEvoformer`` at P = 2, 3 with odd N_res.

Tolerance: float32, |sharded - reference| <= 1e-5 x max|reference| elementwise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alphafold.model.config import EvoformerConfig, ExtraMsaConfig, ModelConfig, TemplateConfig
from alphafold.model.embeddings import EmbeddingsAndEvoformer
from alphafold.parallel.group import ShardGroup
from alphafold.parallel.launch import spawn
from alphafold.parallel.trunk import assemble, sharded_trunk

pytestmark = pytest.mark.distributed

CONFIG = ModelConfig(
    evoformer=EvoformerConfig(num_blocks=2, c_m=16, c_z=12, c_s=10, num_heads_msa=4, num_heads_pair=3,
                              c_hidden_outer=5, c_hidden_tri_mul=7, transition_factor=2),
    extra_msa=ExtraMsaConfig(num_blocks=1, c_e=8, num_heads_row=2, num_heads_column=2),
    template=TemplateConfig(enabled=True, embed_torsion_angles=True, num_blocks=1, c_t=10, num_heads_tri=2,
                            c_hidden_tri_mul=6, transition_factor=2, num_heads_pointwise=2,
                            c_hidden_pointwise=8),
)
N_SEQ, N_EXTRA, N_TEMPL = 9, 11, 2
RTOL = 1e-5


def _model() -> EmbeddingsAndEvoformer:
    model = EmbeddingsAndEvoformer(CONFIG)
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    return model.eval()


def _batch(n: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(n)
    c_m, c_z = CONFIG.evoformer.c_m, CONFIG.evoformer.c_z

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    def ints(high, *shape):
        return torch.randint(0, high, shape, generator=gen)

    seq_mask = torch.ones(n)
    seq_mask[-1] = 0
    residue_index = torch.arange(n)
    residue_index[n // 2:] += 40  # a chain break beyond relpos' clipping distance
    return {
        "target_feat": torch.nn.functional.one_hot(ints(21, n), 22).float(),
        "msa_feat": rand(N_SEQ, n, CONFIG.msa_feat_dim),
        "msa_mask": (torch.rand(N_SEQ, n, generator=gen) > 0.1).float(),
        "seq_mask": seq_mask,
        "aatype": ints(20, n),
        "residue_index": residue_index,
        "extra_msa": ints(23, N_EXTRA, n),
        "extra_msa_mask": (torch.rand(N_EXTRA, n, generator=gen) > 0.2).float(),
        "extra_has_deletion": (torch.rand(N_EXTRA, n, generator=gen) > 0.7).float(),
        "extra_deletion_value": torch.rand(N_EXTRA, n, generator=gen),
        "template_aatype": ints(21, N_TEMPL, n),
        "template_all_atom_positions": 3 * rand(N_TEMPL, n, 37, 3),
        "template_all_atom_masks": (torch.rand(N_TEMPL, n, 37, generator=gen) > 0.2).float(),
        "template_pseudo_beta": 3 * rand(N_TEMPL, n, 3),
        "template_pseudo_beta_mask": (torch.rand(N_TEMPL, n, generator=gen) > 0.2).float(),
        "template_mask": torch.tensor([1.0, 0.0]),
        "prev_pos": 5 * rand(n, 37, 3),
        "prev_msa_first_row": rand(n, c_m),
        "prev_pair": rand(n, n, c_z),
    }


KEYS = ("msa", "msa_first_row", "pair", "single")


def _rank(group: ShardGroup, lengths, chunk_size) -> list[dict[str, np.ndarray]]:
    model, results = _model(), []
    with torch.no_grad():
        for n in lengths:
            out = sharded_trunk(model, _batch(n), group, chunk_size)
            got = {"pair_rows": out["pair_rows"].numpy(), "first_row_here": out["msa_first_row"].numpy()}
            whole = assemble(out, group)
            if group.rank == 0:
                got.update({k: whole[k].numpy() for k in KEYS})
            else:
                assert whole is None
            results.append(got)
    return results


# P = 1 runs the same code through ShardedPredictor in test_sharded_predictor.py
@pytest.mark.parametrize("world_size,lengths,chunk_size", [(2, [13], None), (3, [17], 4)])
def test_sharded_trunk_equals_model_trunk(world_size, lengths, chunk_size):
    per_rank = spawn(_rank, world_size, lengths, chunk_size, timeout_s=300)
    model = _model()
    for i, n in enumerate(lengths):
        with torch.no_grad():
            ref = {k: v.numpy() for k, v in model(_batch(n), chunk_size).items()}
        got = per_rank[0][i]
        for key in KEYS:
            scale, err = float(np.abs(ref[key]).max()), float(np.abs(got[key] - ref[key]).max())
            assert got[key].shape == ref[key].shape, key
            assert err <= RTOL * scale, f"P={world_size} {key}: error {err:.3g} > {RTOL} x {scale:.3g}"
        rows = np.concatenate([r[i]["pair_rows"] for r in per_rank], axis=0)
        np.testing.assert_array_equal(rows, got["pair"])
        # the first MSA row (recycled, and the single representation's input) is on every rank
        for r in per_rank:
            np.testing.assert_array_equal(r[i]["first_row_here"], got["msa_first_row"])
