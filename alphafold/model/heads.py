"""Output heads of the monomer network and the confidence values computed from them.

API for the root module (which stands for haiku's ``alphafold_iteration``)::

    for name, head in make_heads(config.heads).items():   # attribute names are DeepMind's
        self.add_module(name, head)
    ...
    out.update(apply_heads(self, representations, seq_mask))

``representations`` holds ``single`` [N_res, c_s], ``pair`` [N_res, N_res, c_z], ``msa``
[N_clust, N_res, c_m] and ``structure_module`` [N_res, c_s] (the structure module's ``act``).
:func:`apply_heads` returns the model-output names of docs/contracts.md: ``distogram/logits``,
``distogram/bin_edges``, ``masked_msa/logits``, ``experimentally_resolved/logits``,
``predicted_lddt/logits``, ``plddt`` and, with ``use_predicted_aligned_error``,
``predicted_aligned_error/logits``, ``predicted_aligned_error``, ``max_predicted_aligned_error``, ``ptm``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from alphafold.model.config import HeadsConfig
from alphafold.model.primitives import LayerNorm, Linear


class PredictedLDDTHead(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 29 "predictPerResidueLDDT_Ca" (DeepMind's ``predicted_lddt_head``)."""

    def __init__(self, c_s: int, num_channels: int, num_bins: int) -> None:
        super().__init__()
        self.input_layer_norm = LayerNorm(c_s)
        self.act_0 = Linear(c_s, num_channels, init="relu")
        self.act_1 = Linear(num_channels, num_channels, init="relu")
        self.logits = Linear(num_channels, num_bins, init="zeros")

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """s [N_res, c_s] (structure-module output) -> logits [N_res, num_bins] over lDDT-Ca bins."""
        # lines 1-3: LayerNorm, two ReLU layers, softmax over the bins (left to compute_plddt)
        a = F.relu(self.act_0(self.input_layer_norm(s)))
        a = F.relu(self.act_1(a))
        return self.logits(a)


def compute_plddt(logits: torch.Tensor) -> torch.Tensor:
    """pLDDT in [0, 100], [N_res]: expectation of the bin centres (k + 1/2) / num_bins, times 100."""
    num_bins = logits.shape[-1]
    centres = (torch.arange(num_bins, dtype=logits.dtype, device=logits.device) + 0.5) / num_bins
    return torch.sum(torch.softmax(logits, dim=-1) * centres, dim=-1) * 100


class DistogramHead(nn.Module):
    """Jumper et al. (2021) Suppl. Sec. 1.9.8 "Distogram prediction" (DeepMind's ``distogram_head``).

    Logits are symmetrised: l_ij = h_ij + h_ji of one linear projection of z.
    """

    def __init__(self, c_z: int, num_bins: int, first_break: float, last_break: float) -> None:
        super().__init__()
        self.half_logits = Linear(c_z, num_bins, init="zeros")
        self.num_bins, self.first_break, self.last_break = num_bins, first_break, last_break

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [N_res, N_res, c_z] -> (logits [N_res, N_res, num_bins], bin edges [num_bins - 1] in Å)."""
        half = self.half_logits(z)
        logits = half + half.transpose(0, 1)
        return logits, self.bin_edges(z)

    def bin_edges(self, like: torch.Tensor) -> torch.Tensor:
        """[num_bins - 1] bin edges in Å, on the device and in the dtype of ``like``."""
        edges = torch.linspace(self.first_break, self.last_break, self.num_bins - 1, device=like.device)
        return edges.to(like.dtype)


class MaskedMsaHead(nn.Module):
    """Jumper et al. (2021) Suppl. Sec. 1.9.9 "Masked MSA prediction" (DeepMind's ``masked_msa_head``)."""

    def __init__(self, c_m: int, num_output: int) -> None:
        super().__init__()
        self.logits = Linear(c_m, num_output, init="zeros")

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        """m [N_clust, N_res, c_m] -> logits [N_clust, N_res, num_output]."""
        return self.logits(m)


class ExperimentallyResolvedHead(nn.Module):
    """Jumper et al. (2021) Suppl. Sec. 1.9.10 "Experimentally resolved prediction".

    DeepMind's ``experimentally_resolved_head``.
    """

    def __init__(self, c_s: int) -> None:
        super().__init__()
        self.logits = Linear(c_s, 37, init="zeros")

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """s [N_res, c_s] (Evoformer single representation) -> logits [N_res, 37] (sigmoid -> probability)."""
        return self.logits(s)


class PredictedAlignedErrorHead(nn.Module):
    """Jumper et al. (2021) Suppl. Sec. 1.9.7 "TM-score prediction" (``predicted_aligned_error_head``)."""

    def __init__(self, c_z: int, num_bins: int, max_error_bin: float) -> None:
        super().__init__()
        self.logits = Linear(c_z, num_bins, init="zeros")
        self.num_bins, self.max_error_bin = num_bins, max_error_bin

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [N_res, N_res, c_z] -> (logits [N_res, N_res, num_bins], breaks [num_bins - 1] in Å)."""
        return self.logits(z), self.breaks(z)

    def breaks(self, like: torch.Tensor) -> torch.Tensor:
        """[num_bins - 1] error bin breaks in Å, on the device and in the dtype of ``like``."""
        breaks = torch.linspace(0.0, self.max_error_bin, self.num_bins - 1, device=like.device)
        return breaks.to(like.dtype)


def _error_bin_centres(breaks: torch.Tensor) -> torch.Tensor:
    """[num_bins] centres: each break plus half a step, and a catch-all bin one step beyond the last."""
    step = breaks[1] - breaks[0]
    centres = breaks + step / 2
    return torch.cat([centres, centres[-1:] + step])


def compute_predicted_aligned_error(
    logits: torch.Tensor, breaks: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected aligned error [N_res, N_res] (Å) and the largest value it can take (the last centre)."""
    centres = _error_bin_centres(breaks)
    return torch.sum(torch.softmax(logits, dim=-1) * centres, dim=-1), centres[-1]


def predicted_tm_score(
    logits: torch.Tensor, breaks: torch.Tensor, residue_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """pTM: the predicted TM-score of the best-aligned residue frame (Suppl. Sec. 1.9.7, eqn. 40).

    pTM = max_i sum_j w_j E[f(e_ij)] / sum_j w_j, with f(d) = 1 / (1 + (d / d0)^2) and the TM-score's
    d0(N) = 1.24 (N - 15)^(1/3) - 1.8 (Yang & Skolnick 2004, eqn. 5), N = sum of the weights clipped at
    19 so that d0 stays positive (d0(19) = 0.168 Å).
    """
    if residue_weights is None:
        residue_weights = logits.new_ones(logits.shape[0])
    centres = _error_bin_centres(breaks)
    num_res = torch.clamp(residue_weights.sum(), min=19)
    d0 = 1.24 * (num_res - 15) ** (1.0 / 3) - 1.8
    tm_per_bin = 1.0 / (1 + torch.square(centres) / torch.square(d0))
    expected_tm = torch.sum(torch.softmax(logits, dim=-1) * tm_per_bin, dim=-1)
    pair_weights = residue_weights[None, :] * residue_weights[:, None]
    normed = pair_weights / (1e-8 + pair_weights.sum(-1, keepdim=True))
    per_alignment = torch.sum(expected_tm * normed, dim=-1)
    return torch.max(per_alignment * residue_weights)


def make_heads(config: HeadsConfig, c_s: int = 384, c_z: int = 128, c_m: int = 256) -> dict[str, nn.Module]:
    """The heads of one network, keyed by their DeepMind attribute names (register them on the root)."""
    heads: dict[str, nn.Module] = {
        "distogram_head": DistogramHead(
            c_z, config.distogram_num_bins, config.distogram_first_break, config.distogram_last_break
        ),
        "experimentally_resolved_head": ExperimentallyResolvedHead(c_s),
        "masked_msa_head": MaskedMsaHead(c_m, config.masked_msa_num_output),
        "predicted_lddt_head": PredictedLDDTHead(c_s, config.plddt_num_channels, config.plddt_num_bins),
    }
    if config.use_predicted_aligned_error:
        heads["predicted_aligned_error_head"] = PredictedAlignedErrorHead(
            c_z, config.pae_num_bins, config.pae_max_error_bin
        )
    return heads


# Logits of the heads that read the pair or MSA representation; a caller that computed them elsewhere
# (e.g. on shards, :mod:`alphafold.parallel.heads`) passes them to :func:`apply_heads` instead.
LARGE_LOGITS = ("distogram/logits", "masked_msa/logits", "predicted_aligned_error/logits")


def apply_heads(
    root: nn.Module, representations: Mapping[str, torch.Tensor], seq_mask: torch.Tensor,
    logits: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Run every head registered on ``root`` (see :func:`make_heads`); returns model-output names.

    ``logits`` may hold any of :data:`LARGE_LOGITS`, already computed: those heads are not run, and
    ``representations`` then needs no ``pair`` (or ``msa``). Everything derived from them (bin edges, PAE,
    pTM) is computed here either way. Runs in float32 whatever the trunk's dtype (inputs cast, autocast
    off), as DeepMind does.
    """
    with torch.autocast(device_type=seq_mask.device.type, enabled=False):
        return _apply_heads(root, {k: v.float() for k, v in representations.items()}, seq_mask.float(),
                            {k: v.float() for k, v in (logits or {}).items()})


def _apply_heads(
    root: nn.Module, representations: Mapping[str, torch.Tensor], seq_mask: torch.Tensor,
    given: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    s = representations["single"]
    out: dict[str, torch.Tensor] = {}
    if "distogram/logits" in given:
        out["distogram/logits"] = given["distogram/logits"]
        out["distogram/bin_edges"] = root.distogram_head.bin_edges(s)
    else:
        out["distogram/logits"], out["distogram/bin_edges"] = root.distogram_head(representations["pair"])
    out["experimentally_resolved/logits"] = root.experimentally_resolved_head(s)
    out["masked_msa/logits"] = (given["masked_msa/logits"] if "masked_msa/logits" in given
                                else root.masked_msa_head(representations["msa"]))
    out["predicted_lddt/logits"] = root.predicted_lddt_head(representations["structure_module"])
    out["plddt"] = compute_plddt(out["predicted_lddt/logits"])
    pae_head = getattr(root, "predicted_aligned_error_head", None)
    if pae_head is not None:
        if "predicted_aligned_error/logits" in given:
            logits, breaks = given["predicted_aligned_error/logits"], pae_head.breaks(s)
        else:
            logits, breaks = pae_head(representations["pair"])
        out["predicted_aligned_error/logits"] = logits
        out["predicted_aligned_error"], out["max_predicted_aligned_error"] = compute_predicted_aligned_error(
            logits, breaks
        )
        out["ptm"] = predicted_tm_score(logits, breaks, seq_mask.to(logits.dtype))
    return out
