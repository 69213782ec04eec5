"""One Evoformer block, shared by the main stack and the extra-MSA stack
(Jumper et al. (2021) Suppl. Alg. 6 "EvoformerStack" lines 2-10, Alg. 18 "ExtraMsaStack").

The block is a list of residual updates. Stacks are ``nn.ModuleList``s of blocks (DeepMind stores them as
one stacked array per parameter; block i loads ``array[i]``). The sub-modules stay separately callable so
that :mod:`alphafold.parallel` can run the same weights on shards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from alphafold.model.config import EvoformerConfig, ExtraMsaConfig
from alphafold.model.msa import (
    MSAColumnAttention,
    MSAColumnGlobalAttention,
    MSARowAttentionWithPairBias,
    OuterProductMean,
    Transition,
)
from alphafold.model.triangle import TriangleAttention, TriangleMultiplication


@dataclass(frozen=True)
class BlockSizes:
    """Channel and head counts of one block (the main and extra-MSA stacks differ only in c_m and heads)."""

    c_m: int
    c_z: int
    num_heads_msa_row: int
    num_heads_msa_column: int
    num_heads_pair: int
    c_hidden_outer: int
    c_hidden_tri_mul: int
    transition_factor: int

    @classmethod
    def main(cls, c: EvoformerConfig) -> BlockSizes:
        return cls(
            c.c_m,
            c.c_z,
            c.num_heads_msa,
            c.num_heads_msa,
            c.num_heads_pair,
            c.c_hidden_outer,
            c.c_hidden_tri_mul,
            c.transition_factor,
        )

    @classmethod
    def extra(cls, c: EvoformerConfig, e: ExtraMsaConfig) -> BlockSizes:
        return cls(
            e.c_e,
            c.c_z,
            e.num_heads_row,
            e.num_heads_column,
            c.num_heads_pair,
            c.c_hidden_outer,
            c.c_hidden_tri_mul,
            c.transition_factor,
        )


class EvoformerIteration(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 6 "EvoformerStack" lines 2-10 (one block).

    With ``is_extra_msa`` the column attention is Alg. 19 "MSAColumnGlobalAttention" (Alg. 18).
    """

    def __init__(self, sizes: BlockSizes, is_extra_msa: bool):
        super().__init__()
        s = sizes
        self.is_extra_msa = is_extra_msa
        self.msa_row_attention_with_pair_bias = MSARowAttentionWithPairBias(s.c_m, s.c_z, s.num_heads_msa_row)
        if is_extra_msa:
            self.msa_column_global_attention = MSAColumnGlobalAttention(s.c_m, s.num_heads_msa_column)
        else:
            self.msa_column_attention = MSAColumnAttention(s.c_m, s.num_heads_msa_column)
        self.msa_transition = Transition(s.c_m, s.transition_factor)
        self.outer_product_mean = OuterProductMean(s.c_m, s.c_z, s.c_hidden_outer)
        self.triangle_multiplication_outgoing = TriangleMultiplication(
            s.c_z, s.c_hidden_tri_mul, outgoing=True
        )
        self.triangle_multiplication_incoming = TriangleMultiplication(
            s.c_z, s.c_hidden_tri_mul, outgoing=False
        )
        self.triangle_attention_starting_node = TriangleAttention(s.c_z, s.num_heads_pair, starting=True)
        self.triangle_attention_ending_node = TriangleAttention(s.c_z, s.num_heads_pair, starting=False)
        self.pair_transition = Transition(s.c_z, s.transition_factor)

    def column_attention(
        self, m: torch.Tensor, msa_mask: torch.Tensor, chunk_size: int | None
    ) -> torch.Tensor:
        if self.is_extra_msa:
            return self.msa_column_global_attention(m, msa_mask, chunk_size)
        return self.msa_column_attention(m, msa_mask, chunk_size)

    def forward(
        self,
        m: torch.Tensor,
        z: torch.Tensor,
        msa_mask: torch.Tensor,
        pair_mask: torch.Tensor,
        chunk_size: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
        m: [N_seq, N_res, c_m] MSA representation (updated in place).
        z: [N_res, N_res, c_z] pair representation (updated in place).
        msa_mask: [N_seq, N_res]; pair_mask: [N_res, N_res].
        """
        if m.dim() != 3 or z.dim() != 3 or m.shape[1] != z.shape[0] or z.shape[0] != z.shape[1]:
            raise ValueError(
                f"Evoformer block expects m [S, N, c_m] and z [N, N, c_z], got {m.shape}, {z.shape}"
            )
        # MSA stack (lines 2-4)
        m += self.msa_row_attention_with_pair_bias(m, msa_mask, z, chunk_size)
        m += self.column_attention(m, msa_mask, chunk_size)
        m += self.msa_transition(m, chunk_size)
        # communication (line 5)
        z += self.outer_product_mean(m, msa_mask, chunk_size)
        # pair stack (lines 6-10)
        z += self.triangle_multiplication_outgoing(z, pair_mask, chunk_size)
        z += self.triangle_multiplication_incoming(z, pair_mask, chunk_size)
        z += self.triangle_attention_starting_node(z, pair_mask, chunk_size)
        z += self.triangle_attention_ending_node(z, pair_mask, chunk_size)
        z += self.pair_transition(z, chunk_size)
        return m, z
