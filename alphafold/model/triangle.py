"""Triangle updates of the pair representation (Jumper et al. (2021) Suppl. Alg. 11-14).

Each module returns the update; the block adds it. Attribute names are the haiku module names.
"""

from __future__ import annotations

import torch
from torch import nn

from alphafold.model.attention import Attention, key_mask_biases
from alphafold.model.chunking import chunk_layer
from alphafold.model.primitives import LayerNorm, Linear


class TriangleMultiplication(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 11 "TriangleMultiplicationOutgoing" and
    Alg. 12 "TriangleMultiplicationIncoming".

    Notation: DeepMind's equations are "outgoing" ``ikc,jkc->ijc`` and "incoming" ``kjc,kic->ijc`` with
    left_projection as the first operand in both. So for "incoming" the paper's a_ki is DeepMind's
    right_projection and b_kj its left_projection; the params file follows DeepMind, and so does this class.
    """

    def __init__(self, c_z: int, c_hidden: int, outgoing: bool):
        super().__init__()
        self.outgoing = outgoing
        self.layer_norm_input = LayerNorm(c_z)
        self.left_projection = Linear(c_z, c_hidden)
        self.right_projection = Linear(c_z, c_hidden)
        self.left_gate = Linear(c_z, c_hidden)
        self.right_gate = Linear(c_z, c_hidden)
        self.center_layer_norm = LayerNorm(c_hidden)
        self.output_projection = Linear(c_hidden, c_z)
        self.gating_linear = Linear(c_z, c_z)

    def projections(self, z_ln: torch.Tensor, pair_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Alg. 11/12 lines 2-3 on the normalised pair: gated, masked left/right projections [*, N, c]."""
        mask = pair_mask.unsqueeze(-1)
        left = mask * self.left_projection(z_ln) * torch.sigmoid(self.left_gate(z_ln))
        right = mask * self.right_projection(z_ln) * torch.sigmoid(self.right_gate(z_ln))
        return left, right

    def contract(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Sum over the third node k, one channel at a time as a batched matmul (no [N, N, N] tensor).

        outgoing: x_ij = sum_k left_ik right_jk; incoming: x_ij = sum_k left_kj right_ki.
        Shapes: outgoing left [N_i, N_k, c], right [N_j, N_k, c]; incoming left [N_k, N_j, c],
        right [N_k, N_i, c]. Returns [N_i, N_j, c].
        """
        if self.outgoing:
            # [c, N_i, N_k] @ [c, N_k, N_j]
            x = torch.bmm(left.permute(2, 0, 1), right.permute(2, 1, 0))
        else:
            # [c, N_i, N_k] @ [c, N_k, N_j]
            x = torch.bmm(right.permute(2, 1, 0), left.permute(2, 0, 1))
        # [N_i, N_j, c]
        return x.permute(1, 2, 0)

    def output(self, x: torch.Tensor, z_ln: torch.Tensor) -> torch.Tensor:
        """Alg. 11/12 line 4: g_ij * Linear(LayerNorm(x_ij)), g from the normalised input pair."""
        return self.output_projection(self.center_layer_norm(x)) * torch.sigmoid(self.gating_linear(z_ln))

    def forward(
        self, z: torch.Tensor, pair_mask: torch.Tensor, chunk_size: int | None = None
    ) -> torch.Tensor:
        """z [N, N, c_z], pair_mask [N, N] -> the update of z. With ``chunk_size`` (rows of z per
        chunk) the lean path of :meth:`chunked` runs: same result, a third of the peak memory."""
        if chunk_size is not None and chunk_size < z.shape[0]:
            return self.chunked(z, pair_mask, chunk_size)
        z_ln = self.layer_norm_input(z)
        left, right = self.projections(z_ln, pair_mask)
        x = self.contract(left, right)
        del left, right
        return self.output(x, z_ln)

    def chunked(self, z: torch.Tensor, pair_mask: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """Alg. 11/12 with no pair-sized temporary besides the projections and the update.

        The unchunked path holds z_ln, both projections, their permuted copies for the contraction, x
        and the output's temporaries at once (about 8 pair-sized tensors besides z). Here the normalised
        pair is recomputed per chunk of rows, the projections are written channel-major ([c, N, N], the
        layout the matrix products read without copying), x_c overwrites left_c channel by channel, and
        the output is built row chunk by row chunk: at most 3 pair-sized tensors (left, right, update).
        """
        n = z.shape[0]
        c = self.left_projection.weights.shape[1]
        # [c, N, N]: left_c[i, k] and right_c[j, k] of Alg. 11 (outgoing) / left_c[k, j], right_c[k, i]
        left = z.new_empty(c, n, n)
        right = z.new_empty(c, n, n)
        for start in range(0, n, chunk_size):
            rows = slice(start, min(start + chunk_size, n))
            a, b = self.projections(self.layer_norm_input(z[rows]), pair_mask[rows])
            left[:, rows] = a.permute(2, 0, 1)
            right[:, rows] = b.permute(2, 0, 1)
            del a, b
        # x_c = left_c right_c^T (outgoing) or right_c^T left_c (incoming), a few channels at a time,
        # written over left_c once it is no longer read; [c, N_i, N_j]
        group = max(1, c // 16)
        for start in range(0, c, group):
            ch = slice(start, min(start + group, c))
            if self.outgoing:
                x_ch = torch.bmm(left[ch], right[ch].transpose(1, 2))
            else:
                x_ch = torch.bmm(right[ch].transpose(1, 2), left[ch])
            left[ch] = x_ch
            del x_ch
        del right
        x = left
        update = torch.empty_like(z)
        for start in range(0, n, chunk_size):
            rows = slice(start, min(start + chunk_size, n))
            # [r, N_j, c]
            update[rows] = self.output(x[:, rows].permute(1, 2, 0), self.layer_norm_input(z[rows]))
        return update


class TriangleAttention(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 13 "TriangleAttentionStartingNode" and
    Alg. 14 "TriangleAttentionEndingNode" (the ending-node version is the starting-node one on z^T).
    """

    def __init__(self, c_z: int, num_heads: int, starting: bool, key_dim: int | None = None):
        super().__init__()
        self.starting = starting
        key_dim = key_dim if key_dim is not None else c_z
        self.query_norm = LayerNorm(c_z)
        self.feat_2d_weights = nn.Parameter(torch.randn(c_z, num_heads) / c_z**0.5)
        self.attention = Attention(
            c_z, c_z, num_heads, key_dim // num_heads, key_dim // num_heads, c_z, gating=True
        )

    def triangle_bias(self, z_ln: torch.Tensor) -> torch.Tensor:
        """Alg. 13 line 3: b_jk^h = LinearNoBias(z_jk). [N, N, c_z] -> [H, N, N]."""
        return torch.einsum("qkc,ch->hqk", z_ln, self.feat_2d_weights)

    def attend(
        self, z_ln: torch.Tensor, pair_mask: torch.Tensor, b: torch.Tensor, chunk_size: int | None
    ) -> torch.Tensor:
        """Alg. 13 lines 2, 4-7 for rows i of ``z_ln`` [N_i, N, c_z] given the triangle bias b [H, N, N]."""
        biases = key_mask_biases(pair_mask) + [b.unsqueeze(0)]
        return self.attention.chunked(z_ln, z_ln, biases, chunk_size)

    def forward(
        self, z: torch.Tensor, pair_mask: torch.Tensor, chunk_size: int | None = None
    ) -> torch.Tensor:
        if not self.starting:
            # ending node: attend along columns, i.e. starting-node attention on the transposed pair
            z = z.transpose(0, 1)
            pair_mask = pair_mask.transpose(0, 1)
        n = z.shape[0]
        if chunk_size is None or chunk_size >= n:
            z_ln = self.query_norm(z)
            update = self.attend(z_ln, pair_mask, self.triangle_bias(z_ln), chunk_size)
        else:
            update = self._chunked(z, pair_mask, chunk_size)
        return update if self.starting else update.transpose(0, 1)

    def _chunked(self, z: torch.Tensor, pair_mask: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """The same attention with the normalised pair made per chunk of rows, never whole: a row i's
        queries, keys and values all come from row i; only the bias [H, N, N] reads every row."""
        n = z.shape[0]
        # [H, N, N]
        b = z.new_empty(self.feat_2d_weights.shape[1], n, n)
        for start in range(0, n, chunk_size):
            rows = slice(start, min(start + chunk_size, n))
            b[:, rows] = self.triangle_bias(self.query_norm(z[rows]))
        biases = key_mask_biases(pair_mask) + [b.unsqueeze(0)]

        def rows_update(z_rows: torch.Tensor, *biases_rows: torch.Tensor) -> torch.Tensor:
            z_ln = self.query_norm(z_rows)
            return self.attention(z_ln, z_ln, biases_rows)

        return chunk_layer(rows_update, (z, *biases), chunk_size)
