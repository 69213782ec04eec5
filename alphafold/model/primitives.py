"""Linear and LayerNorm layers holding their parameters in DeepMind's shapes and names.

DeepMind's haiku ``Linear`` stores ``weights`` as [in, out] (torch's ``nn.Linear.weight`` is the
transpose) and ``bias`` [out]; its ``LayerNorm`` stores ``scale`` and ``offset``. Keeping those names and
shapes makes loading a params file a renaming (docs/contracts.md, "Torch parameter naming").

Initialisation only matters for untrained use (tests, ``alphafold params random``): weights are drawn
from a truncated normal with variance ``scale / fan_in`` (DeepMind's "linear"/"relu" initialisers), or
zero for ``init="zeros"``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Init = Literal["linear", "relu", "zeros"]


class Linear(nn.Module):
    """``x @ weights + bias`` over the last axis; ``weights`` [c_in, c_out], ``bias`` [c_out]."""

    def __init__(self, c_in: int, c_out: int, *, use_bias: bool = True, init: Init = "linear") -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.empty(c_in, c_out))
        self.bias = nn.Parameter(torch.zeros(c_out)) if use_bias else None
        if init == "zeros":
            nn.init.zeros_(self.weights)
        else:
            # truncated normal with std sqrt(scale / fan_in), rescaled for the truncation at 2 std
            std = math.sqrt((2.0 if init == "relu" else 1.0) / c_in) / 0.87962566103423978
            nn.init.trunc_normal_(self.weights, std=std, a=-2 * std, b=2 * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(x, self.weights)
        return y + self.bias if self.bias is not None else y


class LayerNorm(nn.Module):
    """Layer normalisation over the last axis (eps 1e-5, as haiku), parameters ``scale`` and ``offset``."""

    def __init__(self, c: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(c))
        self.offset = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.scale, self.offset, self.eps)
