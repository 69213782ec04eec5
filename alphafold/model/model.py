"""The root network and its recycling loop (Jumper et al. (2021) Suppl. Alg. 2 "Inference").

:class:`AlphaFold` is haiku's ``alphafold/alphafold_iteration``: one pass of embeddings + Evoformer +
structure module + heads for one recycle. :func:`recycle` runs the passes, feeding each one the previous
structure, first MSA row and pair (Alg. 2 lines 2-6), each recycle reading its own slice of the features.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from alphafold.common import residue_constants as rc
from alphafold.model.config import ModelConfig
from alphafold.model.embeddings import EmbeddingsAndEvoformer
from alphafold.model.heads import apply_heads, make_heads
from alphafold.model.structure_module import StructureModule

log = logging.getLogger(__name__)

PREV_KEYS = ("prev_pos", "prev_msa_first_row", "prev_pair")


class AlphaFold(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 2 "Inference" lines 5-22 (one recycling iteration).

    Attribute names are DeepMind's: ``evoformer``, ``structure_module`` and the ``*_head`` modules.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.evoformer = EmbeddingsAndEvoformer(config)
        self.structure_module = StructureModule(config.structure_module)
        heads = make_heads(
            config.heads, c_s=config.evoformer.c_s, c_z=config.evoformer.c_z, c_m=config.evoformer.c_m
        )
        for name, head in heads.items():
            self.add_module(name, head)

    def initial_prev(self, num_res: int, device: torch.device) -> dict[str, torch.Tensor]:
        """Alg. 2 line 2: zero recycling inputs for the first pass (float32, as DeepMind keeps them)."""
        c = self.config.evoformer
        return {
            "prev_pos": torch.zeros(num_res, rc.atom_type_num, 3, device=device),
            "prev_msa_first_row": torch.zeros(num_res, c.c_m, device=device),
            "prev_pair": torch.zeros(num_res, num_res, c.c_z, device=device),
        }

    def forward(
        self,
        batch: Mapping[str, torch.Tensor],
        prev: Mapping[str, torch.Tensor],
        chunk_size: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """One pass on one recycle's features (no recycle axis) and the recycled ``prev`` tensors.

        Returns the model outputs under DeepMind's names, with ``representations/*`` and the next ``prev``
        under ``prev/*`` (float32).
        """
        return self.finish(batch, self.evoformer({**batch, **prev}, chunk_size))

    def finish(
        self, batch: Mapping[str, torch.Tensor], representations: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Alg. 2 lines 19-22 from the trunk's ``representations`` (``msa``, ``msa_first_row``, ``pair``,
        ``single``): structure module, heads, and the next ``prev/*``."""
        seq_mask = batch["seq_mask"].to(representations["single"].dtype)
        sm = self.structure_module(
            representations["single"], representations["pair"], batch["aatype"], seq_mask
        )
        return self.outputs(batch, representations, sm)

    def outputs(
        self, batch: Mapping[str, torch.Tensor], representations: dict[str, torch.Tensor],
        sm: Mapping[str, torch.Tensor], logits: Mapping[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Alg. 2 lines 20-22 after the structure module's outputs ``sm``: heads, model outputs, ``prev/*``.

        Split from :meth:`finish` so that a structure module and heads run elsewhere (sharded,
        :mod:`alphafold.parallel`) finish with the same code: ``logits`` are head logits computed there
        (see :func:`alphafold.model.heads.apply_heads`).
        """
        seq_mask = batch["seq_mask"].to(representations["single"].dtype)
        representations["structure_module"] = sm["act"]
        out = {
            "structure_module/final_atom_positions": sm["final_atom_positions"],
            "structure_module/final_atom_mask": sm["final_atom_mask"],
        }
        out.update(apply_heads(self, representations, seq_mask, logits))
        for name in ("msa_first_row", "pair", "single", "structure_module"):
            out[f"representations/{name}"] = representations[name]
        out["prev/prev_pos"] = sm["final_atom_positions"].float()
        out["prev/prev_msa_first_row"] = representations["msa_first_row"].float()
        out["prev/prev_pair"] = representations["pair"].float()
        return out


def ca_movement(prev_pos: torch.Tensor, pos: torch.Tensor, seq_mask: torch.Tensor) -> float:
    """How much the structure changed between recycles: RMS change of the CA-CA distance matrix (Å).

    Distances make it independent of the global frame, which the structure module rebuilds every pass.
    """
    ca = rc.atom_order["CA"]
    mask = seq_mask.float()
    pair_mask = mask[:, None] * mask[None, :]

    def dist(x: torch.Tensor) -> torch.Tensor:
        x = x[:, ca].float()
        return torch.sqrt(((x[:, None] - x[None, :]) ** 2).sum(-1) + 1e-12)

    sq = ((dist(prev_pos) - dist(pos)) ** 2 * pair_mask).sum() / pair_mask.sum().clamp(min=1.0)
    return float(torch.sqrt(sq))


@dataclass(frozen=True)
class RecycleReport:
    """Progress of one recycle, passed to the callback of :func:`recycle`."""

    index: int
    num_recycle: int
    seconds: float
    ca_movement: float | None


def recycle(
    model: AlphaFold,
    features: Mapping[str, torch.Tensor],
    num_recycle: int,
    chunk_size: int | None,
    tolerance: float = 0.0,
    on_recycle: Callable[[RecycleReport], None] | None = None,
) -> tuple[dict[str, torch.Tensor], int]:
    """Jumper et al. (2021) Suppl. Alg. 2 "Inference" lines 1-4: passes 0..num_recycle, recycle r reading
    slice r of every feature; stops early once the CA movement falls below ``tolerance`` (> 0).

    Returns the last pass's outputs and the number of recycles run after the first pass.
    """
    first = next(iter(features.values()))
    num_res = features["aatype"].shape[-1]
    prev = model.initial_prev(num_res, first.device)
    out: dict[str, torch.Tensor] = {}
    ran = 0
    for r in range(num_recycle + 1):
        start = time.perf_counter()
        batch = {k: v[r] for k, v in features.items()}
        out = model(batch, prev, chunk_size)
        new_prev = {k: out[f"prev/{k}"] for k in PREV_KEYS}
        movement = None if r == 0 else ca_movement(prev["prev_pos"], new_prev["prev_pos"], batch["seq_mask"])
        ran = r
        report = RecycleReport(r, num_recycle, time.perf_counter() - start, movement)
        if on_recycle is not None:
            on_recycle(report)
        prev = new_prev
        if tolerance > 0 and movement is not None and movement < tolerance:
            log.info(
                "recycle %d: CA movement %.3g Å below tolerance %.3g Å, stopping", r, movement, tolerance
            )
            break
    return out, ran
