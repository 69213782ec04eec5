"""Triangle updates of the pair representation (Jumper et al. (2021) Suppl. Alg. 11-14).

Each module returns the update; the block adds it. Attribute names are the haiku module names.
"""

from __future__ import annotations

import torch
from torch import nn

from alphafold.model.attention import Attention, mask_to_bias
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

    def forward(self, z: torch.Tensor, pair_mask: torch.Tensor) -> torch.Tensor:
        z_ln = self.layer_norm_input(z)
        left, right = self.projections(z_ln, pair_mask)
        x = self.contract(left, right)
        del left, right
        return self.output(x, z_ln)


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
        # [N_i, 1, 1, N]
        mask_bias = mask_to_bias(pair_mask)[:, None, None, :]
        return self.attention.chunked(z_ln, z_ln, [mask_bias, b.unsqueeze(0)], chunk_size)

    def forward(
        self, z: torch.Tensor, pair_mask: torch.Tensor, chunk_size: int | None = None
    ) -> torch.Tensor:
        if not self.starting:
            # ending node: attend along columns, i.e. starting-node attention on the transposed pair
            z = z.transpose(0, 1)
            pair_mask = pair_mask.transpose(0, 1)
        z_ln = self.query_norm(z)
        update = self.attend(z_ln, pair_mask, self.triangle_bias(z_ln), chunk_size)
        return update if self.starting else update.transpose(0, 1)
