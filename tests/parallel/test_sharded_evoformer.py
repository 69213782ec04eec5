"""Sharded blocks equal the single-process model's blocks (gloo, P = 1, 2, 3, odd N_res, masked inputs).

Tolerance: float32, |sharded - reference| <= 1e-5 x max|reference| elementwise (relative to the tensor's
scale; the sharded sums run in a different order, nothing else differs).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alphafold.model.config import TemplateConfig
from alphafold.model.evoformer import BlockSizes, EvoformerIteration
from alphafold.model.template import TemplatePairBlock
from alphafold.parallel import comm
from alphafold.parallel.evoformer import evoformer_block, shard_inputs, template_pair_block
from alphafold.parallel.group import ShardGroup
from alphafold.parallel.launch import spawn

pytestmark = pytest.mark.distributed

# Distinct sizes: N_seq 14, c_m 16, c_z 12, heads 4/2/3, OPM 5, triangle multiplication 7.
SIZES = BlockSizes(c_m=16, c_z=12, num_heads_msa_row=4, num_heads_msa_column=2, num_heads_pair=3,
                   c_hidden_outer=5, c_hidden_tri_mul=7, transition_factor=2)
TEMPLATE = TemplateConfig(c_t=10, num_heads_tri=2, c_hidden_tri_mul=6, transition_factor=2)
N_SEQ = 14
RTOL = 1e-5


def _randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(module.named_parameters()):
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
    return module.eval()


def _inputs(n_res: int, n_seq: int, c_m: int, c_z: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(n_seq, n_res, c_m, generator=gen)
    z = torch.randn(n_res, n_res, c_z, generator=gen)
    msa_mask = (torch.rand(n_seq, n_res, generator=gen) > 0.2).float()
    seq_mask = torch.ones(n_res)
    seq_mask[-2:] = 0  # padded residues at the end, as the feature pipeline pads
    return m, z, msa_mask, seq_mask[:, None] * seq_mask[None, :]


def _blocks():
    return {
        "evoformer": _randomise(EvoformerIteration(SIZES, is_extra_msa=False), 1),
        "extra_msa": _randomise(EvoformerIteration(SIZES, is_extra_msa=True), 2),
        "template": _randomise(TemplatePairBlock(TEMPLATE), 3),
    }


def _rank(group: ShardGroup, cases) -> list[dict[str, np.ndarray]]:
    return [_rank_case(group, *case) for case in cases]


def _rank_case(group: ShardGroup, n_res: int, n_seq: int, chunk_size: int | None) -> dict[str, np.ndarray]:
    out = {}
    with torch.no_grad():
        for name, block in _blocks().items():
            if name == "template":
                _, t, _, pair_mask = _inputs(n_res, n_seq, SIZES.c_m, TEMPLATE.c_t, 5)
                t_rows = comm.shard(t, 0, group).clone()
                out[f"{name}/z"] = template_pair_block(block, t_rows, pair_mask, group, chunk_size).numpy()
                continue
            m, z, msa_mask, pair_mask = _inputs(n_res, n_seq, SIZES.c_m, SIZES.c_z, 4)
            m_s, z_s = shard_inputs(m, z, group)
            m_s, z_s = evoformer_block(block, m_s, z_s, msa_mask, pair_mask, group, chunk_size)
            out[f"{name}/m"], out[f"{name}/z"] = m_s.numpy(), z_s.numpy()
    return out


def _reference(n_res: int, n_seq: int, chunk_size: int | None) -> dict[str, np.ndarray]:
    ref = {}
    with torch.no_grad():
        for name, block in _blocks().items():
            if name == "template":
                _, t, _, pair_mask = _inputs(n_res, n_seq, SIZES.c_m, TEMPLATE.c_t, 5)
                ref[f"{name}/z"] = block(t, pair_mask, chunk_size).numpy()
                continue
            m, z, msa_mask, pair_mask = _inputs(n_res, n_seq, SIZES.c_m, SIZES.c_z, 4)
            m, z = block(m, z, msa_mask, pair_mask, chunk_size)
            ref[f"{name}/m"], ref[f"{name}/z"] = m.numpy(), z.numpy()
    return ref


def _assert_close(got: np.ndarray, ref: np.ndarray, what: str) -> None:
    scale = float(np.abs(ref).max())
    err = float(np.abs(got - ref).max())
    assert got.shape == ref.shape, what
    assert err <= RTOL * scale, f"{what}: max error {err:.3g} > {RTOL} x {scale:.3g}"


# (N_res, N_seq, chunk size) per group size; one process group serves all cases of its size.
CASES = {
    1: [(17, N_SEQ, None)],
    2: [(17, N_SEQ, None)],
    # chunked; and fewer sequences than ranks (one rank holds no MSA rows)
    3: [(19, N_SEQ, 3), (13, 2, None)],
}


@pytest.mark.parametrize("world_size", sorted(CASES))
def test_sharded_blocks_equal_single_process_blocks(world_size):
    per_rank = spawn(_rank, world_size, CASES[world_size], timeout_s=300)
    for i, (n_res, n_seq, chunk_size) in enumerate(CASES[world_size]):
        ref = _reference(n_res, n_seq, chunk_size)
        for key in ref:
            # sequences (m) and rows (z) were sharded contiguously in rank order
            got = np.concatenate([results[i][key] for results in per_rank], axis=0)
            _assert_close(got, ref[key], f"P={world_size} N_res={n_res} N_seq={n_seq} {key}")
