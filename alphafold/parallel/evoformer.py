"""Sharded Evoformer, extra-MSA and template pair blocks: the model's blocks run on shards of m and z.

Jumper et al. (2021) Suppl. Alg. 6 "EvoformerStack" (and Alg. 18 "ExtraMsaStack", Alg. 16
"TemplatePairStack") with the representations split across the P ranks of a group:

* block boundary: m sequence-sharded [S_r, N, c_m], z row-sharded [R, N, c_z];
* MSA row attention with pair bias (Alg. 7) on the sequence shard; its bias [H, N, N] is computed on
  the local rows of z and gathered;
* m -> residue-sharded [S, R, c_m] (all-to-all) for column attention (Alg. 8 / 19), the transition (Alg. 9)
  and the outer product mean (Alg. 10), whose projection b [S, N, c_hidden] is gathered (c_hidden = 32) and
  whose output rows are the local rows of z; m -> sequence-sharded again;
* pair stack: rows -> outgoing multiplication -> cols -> incoming multiplication -> rows -> starting-node
  attention -> cols -> ending-node attention -> transition -> rows (see :mod:`alphafold.parallel.pair_ops`).

The residue split of m is the row split of z (``comm.split_sizes(N_res, P)``), so the outer product mean's
output lands on the rank that holds those rows. Masks are small ([S, N], [N, N]) and stay whole everywhere.
"""

from __future__ import annotations

import torch

from alphafold.model.evoformer import EvoformerIteration
from alphafold.model.template import TemplatePairBlock
from alphafold.parallel import comm
from alphafold.parallel.group import ShardGroup
from alphafold.parallel.pair_ops import (
    local_rows,
    to_cols,
    to_rows,
    triangle_attention,
    triangle_multiplication,
)


def msa_to_residues(m: torch.Tensor, n_seq: int, group: ShardGroup) -> torch.Tensor:
    """[S_r, N, c] sequence shard -> [S, R, c] residue shard."""
    return comm.reshard(m, 0, 1, group, n_src=n_seq)


def msa_to_sequences(m: torch.Tensor, n_res: int, group: ShardGroup) -> torch.Tensor:
    """[S, R, c] residue shard -> [S_r, N, c] sequence shard."""
    return comm.reshard(m, 1, 0, group, n_src=n_res)


def evoformer_block(
    block: EvoformerIteration, m: torch.Tensor, z: torch.Tensor, msa_mask: torch.Tensor,
    pair_mask: torch.Tensor, group: ShardGroup, chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Evoformer (or extra-MSA) block on shards.

    Args:
      m: [S_r, N, c_m] this rank's sequences of the MSA representation.
      z: [R, N, c_z] this rank's rows of the pair representation.
      msa_mask: [S, N] whole; pair_mask: [N, N] whole.
    Returns:
      the updated (m, z) shards, same layouts.
    """
    n_seq, n_res = msa_mask.shape
    r0, r1 = comm.local_range(n_res, group)
    s0, s1 = comm.local_range(n_seq, group)
    if z.shape[:2] != (r1 - r0, n_res) or m.shape[:2] != (s1 - s0, n_res):
        raise ValueError(f"rank {group.rank}: shards m {tuple(m.shape)}, z {tuple(z.shape)} do not match "
                         f"N_seq={n_seq}, N_res={n_res} on {group.size} ranks")
    # Alg. 6 line 2: row attention on the sequence shard, pair bias gathered [H, N, N]
    row_att = block.msa_row_attention_with_pair_bias
    b = comm.gather(row_att.pair_bias(z), 1, n_res, group)
    m += row_att.attend(m, msa_mask[s0:s1], b, chunk_size)
    del b
    # lines 3-4 on residue columns
    m = msa_to_residues(m, n_seq, group)
    msa_mask_cols = msa_mask[:, r0:r1]
    m += block.column_attention(m, msa_mask_cols, chunk_size)
    m += block.msa_transition(m, chunk_size)
    # line 5: outer product mean, rows i local, b_sj of every residue j gathered [S, N, c]
    opm = block.outer_product_mean
    a_i, b_i = opm.projections(m, msa_mask_cols)
    b_all = comm.gather(b_i, 1, n_res, group)
    del b_i
    z += opm.contract(a_i, b_all, msa_mask_cols, msa_mask, chunk_size)
    del a_i, b_all
    m = msa_to_sequences(m, n_res, group)
    # lines 6-10: the pair stack
    z = pair_stack_evoformer_order(block, z, pair_mask, group, chunk_size)
    return m, z


def pair_stack_evoformer_order(block, z: torch.Tensor, pair_mask: torch.Tensor, group: ShardGroup,
                               chunk_size: int | None) -> torch.Tensor:
    """Alg. 6 lines 6-10 on a row shard [R, N, c_z]; returns the updated row shard."""
    z += triangle_multiplication(block.triangle_multiplication_outgoing, z, pair_mask, group)
    z = to_cols(z, group)
    z += triangle_multiplication(block.triangle_multiplication_incoming, z, pair_mask, group)
    z = to_rows(z, group)
    z += triangle_attention(block.triangle_attention_starting_node, z, pair_mask, group, chunk_size)
    z = to_cols(z, group)
    z += triangle_attention(block.triangle_attention_ending_node, z, pair_mask, group, chunk_size)
    z += block.pair_transition(z, chunk_size)
    return to_rows(z, group)


def template_pair_block(block: TemplatePairBlock, t: torch.Tensor, pair_mask: torch.Tensor,
                        group: ShardGroup, chunk_size: int | None = None) -> torch.Tensor:
    """Alg. 16 lines 2-6 (DeepMind's order: attention first) on a row shard [R, N, c_t] of one template."""
    t += triangle_attention(block.triangle_attention_starting_node, t, pair_mask, group, chunk_size)
    t = to_cols(t, group)
    t += triangle_attention(block.triangle_attention_ending_node, t, pair_mask, group, chunk_size)
    t = to_rows(t, group)
    t += triangle_multiplication(block.triangle_multiplication_outgoing, t, pair_mask, group)
    t = to_cols(t, group)
    t += triangle_multiplication(block.triangle_multiplication_incoming, t, pair_mask, group)
    t += block.pair_transition(t, chunk_size)
    return to_rows(t, group)


def shard_inputs(m: torch.Tensor, z: torch.Tensor, group: ShardGroup) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's shards (copies) of whole m [S, N, c_m] and z [N, N, c_z]: sequences and rows."""
    return local_rows(m, group).clone(), local_rows(z, group).clone()
