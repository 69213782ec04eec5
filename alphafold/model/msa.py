"""MSA-side updates of an Evoformer block: row attention with pair bias, column (and global column)
attention, transitions and the outer product mean (Jumper et al. (2021) Suppl. Alg. 7-10, 19).

Each module returns the *update*; the block adds it to its input (residual), as DeepMind's modules do.
Attribute names are the haiku module names of the params file.
"""

from __future__ import annotations

import torch
from torch import nn

from alphafold.model.attention import Attention, GlobalAttention, key_mask_biases
from alphafold.model.chunking import chunk_layer
from alphafold.model.primitives import LayerNorm, Linear


class MSARowAttentionWithPairBias(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 7 "MSARowAttentionWithPairBias"."""

    def __init__(self, c_m: int, c_z: int, num_heads: int):
        super().__init__()
        self.query_norm = LayerNorm(c_m)
        self.feat_2d_norm = LayerNorm(c_z)
        self.feat_2d_weights = nn.Parameter(torch.randn(c_z, num_heads) / c_z**0.5)
        self.attention = Attention(c_m, c_m, num_heads, c_m // num_heads, c_m // num_heads, c_m, gating=True)

    def pair_bias(self, z: torch.Tensor) -> torch.Tensor:
        """Alg. 7 line 3: b_ij^h = LinearNoBias(LayerNorm(z_ij)). [N_res, N_res, c_z] -> [H, N_res, N_res]."""
        return torch.einsum("qkc,ch->hqk", self.feat_2d_norm(z), self.feat_2d_weights)

    def attend(
        self, m: torch.Tensor, msa_mask: torch.Tensor, b: torch.Tensor, chunk_size: int | None
    ) -> torch.Tensor:
        """Alg. 7 lines 1-2, 4-7 given the pair bias ``b`` [H, N_res', N_res] (a row shard may pass its rows).

        Args:
            m: [N_seq, N_res, c_m]; msa_mask: [N_seq, N_res].
        """
        m = self.query_norm(m)
        biases = key_mask_biases(msa_mask) + [b.unsqueeze(0)]
        return self.attention.chunked(m, m, biases, chunk_size)

    def forward(
        self, m: torch.Tensor, msa_mask: torch.Tensor, z: torch.Tensor, chunk_size: int | None = None
    ) -> torch.Tensor:
        return self.attend(m, msa_mask, self.pair_bias(z), chunk_size)


class MSAColumnAttention(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 8 "MSAColumnAttention"."""

    def __init__(self, c_m: int, num_heads: int):
        super().__init__()
        self.query_norm = LayerNorm(c_m)
        self.attention = Attention(c_m, c_m, num_heads, c_m // num_heads, c_m // num_heads, c_m, gating=True)

    def forward(self, m: torch.Tensor, msa_mask: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        # [N_res, N_seq, c_m]: attend along the sequences of each column
        m_t = self.query_norm(m.transpose(0, 1))
        update = self.attention.chunked(m_t, m_t, key_mask_biases(msa_mask.transpose(0, 1)), chunk_size)
        # [N_seq, N_res, c_m]
        return update.transpose(0, 1)


class MSAColumnGlobalAttention(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 19 "MSAColumnGlobalAttention" (extra-MSA stack)."""

    def __init__(self, c_e: int, num_heads: int):
        super().__init__()
        self.query_norm = LayerNorm(c_e)
        self.attention = GlobalAttention(c_e, num_heads, c_e // num_heads, c_e)

    def forward(self, e: torch.Tensor, msa_mask: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        # [N_res, N_extra, c_e]
        e_t = self.query_norm(e.transpose(0, 1))
        update = chunk_layer(self.attention, (e_t, msa_mask.transpose(0, 1)), chunk_size)
        # [N_extra, N_res, c_e]
        return update.transpose(0, 1)


class Transition(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 9 "MSATransition" and Alg. 15 "PairTransition"."""

    def __init__(self, c: int, factor: int):
        super().__init__()
        self.input_layer_norm = LayerNorm(c)
        self.transition1 = Linear(c, factor * c)
        self.transition2 = Linear(factor * c, c)

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        return self.transition2(torch.relu(self.transition1(self.input_layer_norm(x))))

    def forward(self, x: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """x: [N_rows, N_res, c] -> update of the same shape (DeepMind applies no mask here)."""
        return chunk_layer(self._rows, (x,), chunk_size)


class OuterProductMean(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 10 "OuterProductMean"."""

    def __init__(self, c_m: int, c_z: int, c_hidden: int):
        super().__init__()
        self.layer_norm_input = LayerNorm(c_m)
        self.left_projection = Linear(c_m, c_hidden)
        self.right_projection = Linear(c_m, c_hidden)
        self.output_w = nn.Parameter(torch.randn(c_hidden, c_hidden, c_z) / c_hidden)
        self.output_b = nn.Parameter(torch.zeros(c_z))

    def projections(self, m: torch.Tensor, msa_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Alg. 10 lines 1-2: masked a_si, b_si, each [N_seq, N_res, c]."""
        m = self.layer_norm_input(m)
        mask = msa_mask.unsqueeze(-1)
        return mask * self.left_projection(m), mask * self.right_projection(m)

    def contract(
        self,
        a: torch.Tensor,
        b: torch.Tensor,
        mask_a: torch.Tensor,
        mask_b: torch.Tensor,
        chunk_size: int | None,
    ) -> torch.Tensor:
        """Alg. 10 lines 3-4 for the residues i of ``a`` against the residues j of ``b``.

        Args:
            a: [N_seq, N_i, c]; b: [N_seq, N_j, c]; mask_a: [N_seq, N_i]; mask_b: [N_seq, N_j].

        Returns:
            [N_i, N_j, c_z]: mean over sequences of outer products, projected.
        """
        c_hidden = a.shape[-1]
        # [c*c, c_z]
        w = self.output_w.reshape(c_hidden * c_hidden, -1)
        # [N_j, c, N_seq]
        b_t = b.permute(1, 2, 0)

        def rows(a_rows: torch.Tensor, mask_rows: torch.Tensor) -> torch.Tensor:
            # a_rows: [n_i, N_seq, c]; outer product summed over sequences: [n_i, c, N_j, c]
            outer = torch.einsum("isc,jes->icje", a_rows, b_t)
            # [n_i, N_j, c*c]
            outer = outer.permute(0, 2, 1, 3).reshape(a_rows.shape[0], b.shape[1], c_hidden * c_hidden)
            out = outer @ w + self.output_b
            # number of sequences where both residues are present; [n_i, N_j, 1]
            norm = torch.einsum("is,sj->ij", mask_rows, mask_b).unsqueeze(-1)
            return out / (1e-3 + norm)

        # [N_i, N_seq, c] and [N_i, N_seq]: chunks run over residues i
        return chunk_layer(rows, (a.transpose(0, 1), mask_a.transpose(0, 1)), chunk_size)

    def forward(self, m: torch.Tensor, msa_mask: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        a, b = self.projections(m, msa_mask)
        return self.contract(a, b, msa_mask, msa_mask, chunk_size)
