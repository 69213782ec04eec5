"""Invariant point attention, Jumper et al. (2021) Suppl. Alg. 22.

Parameters under DeepMind's names (``.../fold_iteration/invariant_point_attention/...``): ``q_scalar``,
``kv_scalar``, ``q_point_local``, ``kv_point_local``, ``attention_2d``, ``output_projection`` and the
per-head ``trainable_point_weights`` (passed through softplus, the paper's gamma^h).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from alphafold.model.config import StructureModuleConfig
from alphafold.model.primitives import Linear
from alphafold.model.rigid import Rigid


class InvariantPointAttention(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 22 "InvariantPointAttention".

    Each residue emits scalar queries/keys/values and 3-D query/key/value points in its local frame. Point
    attention compares query and key points in the global frame, so the logits, and the outputs (point
    results are mapped back into the query's local frame), are invariant to a global rigid motion.
    """

    def __init__(self, config: StructureModuleConfig, dist_epsilon: float = 1e-8) -> None:
        super().__init__()
        c = config
        self.num_heads, self.num_scalar_qk, self.num_scalar_v = c.num_heads, c.num_scalar_qk, c.num_scalar_v
        self.num_point_qk, self.num_point_v = c.num_point_qk, c.num_point_v
        self.dist_epsilon = dist_epsilon
        h = c.num_heads
        self.q_scalar = Linear(c.c_s, h * c.num_scalar_qk)
        self.kv_scalar = Linear(c.c_s, h * (c.num_scalar_v + c.num_scalar_qk))
        self.q_point_local = Linear(c.c_s, h * 3 * c.num_point_qk)
        self.kv_point_local = Linear(c.c_s, h * 3 * (c.num_point_qk + c.num_point_v))
        # softplus^-1(1): the point term starts with weight 1 per head
        self.trainable_point_weights = nn.Parameter(torch.full((h,), math.log(math.e - 1.0)))
        self.attention_2d = Linear(c.c_z, h)
        c_out = h * (c.c_z + c.num_scalar_v + 4 * c.num_point_v)
        self.output_projection = Linear(c_out, c.c_s, init="zeros")

        # Variance weights (Suppl. 1.8.2, Alg. 22 line 7): with q, k ~ N(0, 1) iid,
        #   scalar term: Var(q.k) = N_qk over the channels, so 1/sqrt(N_qk) gives unit variance;
        #   point term: 1/2 ||q - k||^2 = 1/2 ||q||^2 - q.k + 1/2 ||k||^2; DeepMind counts, per point,
        #     Var(1/2 ||q||^2 - q.k) = 1/4 Var(chi^2_3) + Var(q.k) = 6/4 + 3 = 9/2, so
        #     w_C = sqrt(2 / (9 N_qk_points)) gives unit variance over the points;
        #   pair bias: unit variance already.
        # w_L = sqrt(1/3) then shares unit logit variance equally among the three terms. DeepMind folds
        # w_L into each term instead of multiplying the sum: w_L / sqrt(N_qk), w_L w_C (times the per-head
        # softplus(gamma^h)) and w_L.
        self.scalar_weight = math.sqrt(1.0 / (3 * max(c.num_scalar_qk, 1)))
        self.point_weight = math.sqrt(1.0 / (3 * max(c.num_point_qk, 1) * 9.0 / 2))
        self.pair_weight = math.sqrt(1.0 / 3)

    def _points(self, linear: Linear, s: torch.Tensor, num_points: int, frames: Rigid) -> torch.Tensor:
        """Local points from ``linear(s)``, mapped to the global frame: [N_res, H, num_points, 3]."""
        n = s.shape[0]
        # DeepMind's layout of the projection: x block, y block, z block, each [H * num_points]
        # [N_res, 3, H * P] -> [N_res, H * P, 3]
        p_local = linear(s).view(n, 3, self.num_heads * num_points).transpose(-1, -2)
        p_global = frames.unsqueeze(-1).apply(p_local)
        # [N_res, H, P, 3]
        return p_global.view(n, self.num_heads, num_points, 3)

    def _point_logits(self, q_pts: torch.Tensor, k_pts: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """-gamma^h / 2 sum_p ||T_i q_p - T_j k_p||^2, [H, N_res, N_res], from global points [N_res, H, P, 3].

        Computed as differences (not ||q||^2 + ||k||^2 - 2 q.k, whose float32 cancellation at coordinates
        of tens of nm moves atoms by 0.02 Å), accumulated point by point so that only [H, N_res, N_res]
        temporaries exist, never DeepMind's [H, N_res, N_res, P_qk] (benchmarks/structure_module.py).
        """
        # [H, N_res, P_qk, 3]
        q_h, k_h = q_pts.transpose(0, 1), k_pts.transpose(0, 1)
        d2_weighted = q_h.new_zeros(q_h.shape[0], q_h.shape[1], k_h.shape[1])
        for p in range(q_h.shape[2]):
            d2 = sum(torch.square(q_h[:, :, None, p, x] - k_h[:, None, :, p, x]) for x in range(3))
            d2_weighted = d2_weighted + gamma[:, None, None] * d2
        return -0.5 * d2_weighted

    @staticmethod
    def _attend_pair(a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """o_i^h = sum_j a_ij^h z_ij, [N_res, H, c_z], as a matmul batched over i: [H, N] @ [N, c_z] per
        query row reads z in place (an einsum "hij,ijc->ihc" may copy z, the largest tensor here)."""
        return torch.matmul(a.transpose(0, 1), z)

    def forward(self, s: torch.Tensor, z: torch.Tensor, mask: torch.Tensor, frames: Rigid,
                query_start: int = 0) -> torch.Tensor:
        """Args:
            s: [N_res, c_s] single representation.
            z: [Q, N_res, c_z] pair representation (already layer-normed), rows ``query_start`` to
              ``query_start + Q`` (all N_res rows by default). Each query residue i attends over all j
              with its own row z_i; so a block of rows gives exactly those rows' outputs.
            mask: [N_res] sequence mask.
            frames: [N_res] backbone frames T_i (translations in the network's 10 Å units).
            query_start: index of the first query residue (the first row of ``z``).

        Returns:
            [Q, c_s] update of s for the query residues.
        """
        n, h = s.shape[0], self.num_heads
        rows = z.shape[0]
        q0, q1 = query_start, query_start + rows
        s_q, frames_q = s[q0:q1], frames[q0:q1]
        # Alg. 22 lines 1-3: scalar and point queries (query rows), keys and values (all residues)
        # [Q, H, C_qk]
        q = self.q_scalar(s_q).view(rows, h, self.num_scalar_qk)
        # [N_res, H, C_qk + C_v]
        k, v = self.kv_scalar(s).view(n, h, -1).split([self.num_scalar_qk, self.num_scalar_v], dim=-1)
        q_pts = self._points(self.q_point_local, s_q, self.num_point_qk, frames_q)
        kv_pts = self._points(self.kv_point_local, s, self.num_point_qk + self.num_point_v, frames)
        k_pts, v_pts = kv_pts.split([self.num_point_qk, self.num_point_v], dim=-2)

        # Alg. 22 line 7: a_ij^h = w_L (q.k / sqrt(c) + b_ij - gamma^h w_C / 2 sum_p ||T_i q_p - T_j k_p||^2)
        # [H, Q, N_res]
        a_scalar = torch.matmul((self.scalar_weight * q).transpose(0, 1), k.permute(1, 2, 0))
        gamma = self.point_weight * F.softplus(self.trainable_point_weights)
        a_point = self._point_logits(q_pts, k_pts, gamma)
        b = self.pair_weight * self.attention_2d(z).permute(2, 0, 1)
        # DeepMind subtracts 1e5 (1 - m_i m_j). For a padding query (m_i = 0) that shifts its whole row
        # uniformly, which softmax ignores; but at 1e5 float32 keeps ~3 decimals of the logits, so the row
        # became rounding noise and amplified 1e-7 input differences to 1e-4. Same function, without the
        # rounding: a padding query's row is left unshifted, a real query's masked keys are shifted.
        key_masked = (1.0 - mask[None, :]) * mask[q0:q1, None]
        a = a_scalar + a_point + b - 1e5 * key_masked
        a = torch.softmax(a, dim=-1)

        # Alg. 22 lines 8-10: attend to pair values, scalar values and global value points
        # [Q, H * c_z]
        o_pair = self._attend_pair(a, z).reshape(rows, h * z.shape[-1])
        # [H, Q, C_v] -> [Q, H * C_v]
        o_scalar = torch.matmul(a, v.transpose(0, 1)).transpose(0, 1).reshape(rows, h * self.num_scalar_v)
        # sum_j a_ij T_j v_j as one matmul over j: DeepMind sums a broadcast product to force float32 on
        # TPUs; a torch float32 matmul is full precision unless TF32 is switched on, which we never do.
        # [H, N_res, P_v * 3]
        v_h = v_pts.transpose(0, 1).reshape(h, n, self.num_point_v * 3)
        # [H, Q, P_v * 3] -> [Q, H * P_v, 3], back into each query residue's local frame
        o_pts_global = torch.matmul(a, v_h).transpose(0, 1).reshape(rows, h * self.num_point_v, 3)
        o_pts = frames_q.unsqueeze(-1).invert_apply(o_pts_global)
        o_pts_norm = torch.sqrt(self.dist_epsilon + torch.sum(torch.square(o_pts), dim=-1))

        # Alg. 22 line 11: concatenate in DeepMind's order and project
        features = [o_scalar, o_pts[..., 0], o_pts[..., 1], o_pts[..., 2], o_pts_norm, o_pair]
        return self.output_projection(torch.cat(features, dim=-1))
