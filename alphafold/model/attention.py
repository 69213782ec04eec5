"""Attention with DeepMind's parameter layout: gated multi-head attention and global attention.

Projections are ``[in, heads, head_dim]`` (``query_w``, ``key_w``, ``value_w``, ``gating_w``), the output
``output_w`` is ``[heads, head_dim, out]``, as in DeepMind's params files (docs/contracts.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch._subclasses.fake_tensor import is_fake

from alphafold.model.chunking import chunk_layer

# DeepMind's mask bias: 1e9 * (mask - 1). Large but finite, so a fully masked row softmaxes to uniform.
MASK_BIAS = 1e9


def mask_to_bias(mask: torch.Tensor) -> torch.Tensor:
    """Additive attention bias from a {0, 1} mask: 0 where kept, -1e9 where masked."""
    return (mask - 1.0) * MASK_BIAS


def has_values(t: torch.Tensor) -> bool:
    """Whether a tensor holds data. The memory tracer's meta and fake tensors have shapes only, so a
    data-dependent shortcut (a mask with nothing masked, an absent template) cannot be taken for them:
    they run the general path, and the traced peak is an upper bound. Pass the result of an op on the
    input (under fake tracing even a real input's results are fake)."""
    return t.device.type != "meta" and not is_fake(t)


def _nothing_masked(mask: torch.Tensor) -> bool:
    """Whether every entry of the mask is kept (False when that is unknowable, see :func:`has_values`)."""
    kept = mask.all()
    return has_values(kept) and bool(kept)


def key_mask_biases(mask: torch.Tensor) -> list[torch.Tensor]:
    """The key-mask bias of a row-wise attention, [*, 1, 1, K] from a mask [*, K], as a list of biases for
    :class:`Attention`: empty when nothing is masked.

    Adding a zero bias changes no logit, but summing it with a [H, Q, K] bias materialises [*, H, Q, K]
    (a third of a triangle attention's time); most targets have no padding. Contiguous, because masks of
    column-wise attention come transposed: the summed bias would inherit that layout and the attention
    kernel would copy it element by element (4x the attention's time and a bias-sized private copy, seen
    in the ending-node triangle attention at L = 400-600).
    """
    if _nothing_masked(mask):
        return []
    # [*, 1, 1, K]
    return [mask_to_bias(mask.contiguous())[..., None, None, :]]


class Attention(nn.Module):
    """Multi-head attention with optional sigmoid gating (Jumper et al. (2021) Suppl. Alg. 7 lines 3-7).

    Queries come from ``q_x``, keys and values from ``m_x``; additive biases (mask bias, pair bias) are
    broadcast to the logits ``[*, H, Q, K]``.
    """

    def __init__(
        self,
        c_q: int,
        c_m: int,
        num_heads: int,
        key_dim: int,
        value_dim: int,
        c_out: int,
        gating: bool = True,
    ):
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.query_w = nn.Parameter(torch.randn(c_q, num_heads, key_dim) / math.sqrt(c_q))
        self.key_w = nn.Parameter(torch.randn(c_m, num_heads, key_dim) / math.sqrt(c_m))
        self.value_w = nn.Parameter(torch.randn(c_m, num_heads, value_dim) / math.sqrt(c_m))
        if gating:
            self.gating_w = nn.Parameter(torch.zeros(c_q, num_heads, value_dim))
            self.gating_b = nn.Parameter(torch.ones(num_heads, value_dim))
        else:
            self.gating_w = None
            self.gating_b = None
        self.output_w = nn.Parameter(
            torch.randn(num_heads, value_dim, c_out) / math.sqrt(num_heads * value_dim)
        )
        self.output_b = nn.Parameter(torch.zeros(c_out))

    def forward(self, q_x: torch.Tensor, m_x: torch.Tensor, biases: Sequence[torch.Tensor]) -> torch.Tensor:
        """Args:
            q_x: [*, Q, c_q] query inputs.
            m_x: [*, K, c_m] key/value inputs.
            biases: tensors broadcastable to [*, H, Q, K].

        Returns:
            [*, Q, c_out]
        """
        # [*, H, Q, D]
        q = torch.einsum("...qa,ahc->...hqc", q_x, self.query_w)
        k = torch.einsum("...ka,ahc->...hkc", m_x, self.key_w)
        v = torch.einsum("...ka,ahc->...hkc", m_x, self.value_w)
        bias = None
        for b in biases:
            bias = b if bias is None else bias + b
        # softmax(q k^T / sqrt(d) + bias) v, without keeping the logits after the call
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.key_dim**-0.5)
        # [*, Q, H, D]
        o = o.transpose(-2, -3)
        if self.gating_w is not None:
            g = torch.sigmoid(torch.einsum("...qa,ahc->...qhc", q_x, self.gating_w) + self.gating_b)
            o = o * g
        return torch.einsum("...qhc,hco->...qo", o, self.output_w) + self.output_b

    def chunked(
        self, q_x: torch.Tensor, m_x: torch.Tensor, biases: Sequence[torch.Tensor], chunk_size: int | None
    ) -> torch.Tensor:
        """``forward`` over chunks of the leading batch axis (biases of size 1 there are broadcast)."""
        return chunk_layer(lambda q, m, *b: self(q, m, b), (q_x, m_x, *biases), chunk_size)


class GlobalAttention(nn.Module):
    """Global attention: one averaged query per column (Jumper et al. (2021) Suppl. Alg. 19 lines 2-7)."""

    def __init__(self, c: int, num_heads: int, head_dim: int, c_out: int):
        super().__init__()
        self.head_dim = head_dim
        self.query_w = nn.Parameter(torch.randn(c, num_heads, head_dim) / math.sqrt(c))
        self.key_w = nn.Parameter(torch.randn(c, head_dim) / math.sqrt(c))
        self.value_w = nn.Parameter(torch.randn(c, head_dim) / math.sqrt(c))
        self.gating_w = nn.Parameter(torch.zeros(c, num_heads, head_dim))
        self.gating_b = nn.Parameter(torch.ones(num_heads, head_dim))
        self.output_w = nn.Parameter(
            torch.randn(num_heads, head_dim, c_out) / math.sqrt(num_heads * head_dim)
        )
        self.output_b = nn.Parameter(torch.zeros(c_out))

    def forward(self, m: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args:
            m: [*, S, c] (S: the attended axis, the MSA sequences of one column).
            mask: [*, S].

        Returns:
            [*, S, c_out]
        """
        # [*, S, 1]
        mask_s = mask.unsqueeze(-1)
        # Alg. 19 line 2: q_i = mean_s q_si over unmasked rows; [*, c]
        q_avg = (mask_s * m).sum(-2) / (mask_s.sum(-2) + 1e-10)
        # [*, H, D]
        q = torch.einsum("...a,ahc->...hc", q_avg, self.query_w) * self.head_dim**-0.5
        # [*, S, D]
        k = m @ self.key_w
        v = m @ self.value_w
        # [*, H, S]
        logits = torch.einsum("...hc,...sc->...hs", q, k) + mask_to_bias(mask).unsqueeze(-2)
        a = torch.softmax(logits, dim=-1)
        # [*, H, D]
        o = torch.einsum("...hs,...sc->...hc", a, v)
        # [*, S, H, D]
        g = torch.sigmoid(torch.einsum("...sa,ahc->...shc", m, self.gating_w) + self.gating_b)
        o = o.unsqueeze(-3) * g
        return torch.einsum("...shc,hco->...so", o, self.output_w) + self.output_b
