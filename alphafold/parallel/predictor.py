"""Prediction with the pair representation sharded across a tensor-parallel group.

:class:`ShardedPredictor` has the :class:`~alphafold.model.predictor.Predictor` interface (load once,
``predict(features)`` many times) for one rank of a :class:`~alphafold.parallel.group.ShardGroup`. Every
rank holds the weights (axial sharding splits activations, not weights) and calls ``predict`` with the same
features at the same time; rank 0 returns the outputs, the others an empty dict.

Per recycle (Jumper et al. (2021) Suppl. Alg. 2 lines 1-4): the trunk runs sharded
(:func:`alphafold.parallel.trunk.sharded_trunk`), then the structure module with row-sharded invariant point
attention (:func:`alphafold.parallel.structure.sharded_structure_module`), so every rank holds the new
positions [N, 37, 3] and first MSA row [N, c_m] for the next pass and the recycled pair stays sharded; rank 0
decides early stopping from the CA movement and broadcasts it. Only after the final pass are the head logits
computed on the shards and gathered, and the whole pair representation assembled, on rank 0, which writes
the outputs with the model's own :meth:`~alphafold.model.model.AlphaFold.outputs`. At P = 1 this is the
single-device Predictor's computation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from alphafold.common import residue_constants as rc
from alphafold.errors import UserError
from alphafold.model.model import ca_movement
from alphafold.model.options import RuntimeOptions
from alphafold.model.predictor import Predictor
from alphafold.parallel import comm
from alphafold.parallel.group import ShardGroup
from alphafold.parallel.structure import sharded_large_logits, sharded_structure_module
from alphafold.parallel.trunk import assemble, sharded_trunk

log = logging.getLogger(__name__)


class ShardedPredictor:
    """One rank's share of a loaded network whose trunk runs sharded over ``group``."""

    def __init__(self, predictor: Predictor, group: ShardGroup):
        self.predictor = predictor
        self.group = group

    @classmethod
    def from_params_file(cls, path: str | Path, group: ShardGroup, preset: str | None = None,
                         options: RuntimeOptions | None = None) -> ShardedPredictor:
        options = options or RuntimeOptions(device=str(group.device))
        return cls(Predictor.from_params_file(path, preset=preset, options=options), group)

    def predict(self, features: Mapping[str, np.ndarray], num_recycle: int | None = None,
                where: str = "features") -> dict[str, np.ndarray]:
        """Alg. 2 on processed features; the outputs on rank 0, ``{}`` on the other ranks."""
        p, group = self.predictor, self.group
        model = p.model
        tensors = p._tensors(features, where)
        available = p.num_recycles_in(features)
        if num_recycle is None:
            num_recycle = p.options.num_recycle if p.options.num_recycle is not None else available
        if num_recycle > available:
            raise UserError(where, f"num_recycle {num_recycle} needs {num_recycle + 1} recycle slices but "
                                   f"the features carry {available + 1}")
        first = {k: v[0] for k, v in tensors.items()}
        chunk_size = p._chunk_size(first)
        n = first["aatype"].shape[-1]
        r0, r1 = comm.local_range(n, group)
        c = model.config.evoformer
        device = p.device
        # Alg. 2 line 2: zero recycling inputs; the pair as this rank's rows only
        prev_pos = torch.zeros(n, rc.atom_type_num, 3, device=device)
        prev_m1 = torch.zeros(n, c.c_m, device=device)
        prev_pair_rows = torch.zeros(r1 - r0, n, c.c_z, device=device)
        out: dict[str, torch.Tensor] = {}
        ran = 0
        begin = time.perf_counter()
        with torch.inference_mode():
            for r in range(num_recycle + 1):
                start = time.perf_counter()
                batch = {k: v[r] for k, v in tensors.items()}
                trunk = sharded_trunk(model.evoformer, {**batch, "prev_pos": prev_pos,
                                                        "prev_msa_first_row": prev_m1},
                                      group, chunk_size, prev_pair_rows=prev_pair_rows)
                seq_mask = batch["seq_mask"].to(trunk["single"].dtype)
                sm = sharded_structure_module(model, trunk["single"], trunk["pair_rows"], batch["aatype"],
                                              seq_mask, group)
                new_pos = sm["final_atom_positions"].float()
                # [1]: 1.0 when rank 0 decides to stop after this pass
                stop = torch.zeros(1, device=device)
                if group.rank == 0:
                    movement = None if r == 0 else ca_movement(prev_pos, new_pos, batch["seq_mask"])
                    moved = "" if movement is None else f", CA movement {movement:.3f} Å"
                    log.info("recycle %d/%d done in %.1f s on %d ranks%s", r, num_recycle,
                             time.perf_counter() - start, group.size, moved)
                    tolerance = p.options.recycle_tolerance
                    if tolerance > 0 and movement is not None and movement < tolerance:
                        stop[0] = 1.0
                comm.broadcast_from(stop, group)
                ran = r
                if r == num_recycle or stop.item() > 0:
                    if stop.item() > 0:
                        log.info("recycle %d: CA movement below tolerance, stopping", r)
                    out = self._final_outputs(batch, trunk, sm)
                    break
                # the next pass's inputs: every rank computed the same positions; the pair stays sharded
                prev_pos = new_pos.contiguous()
                prev_m1 = trunk["msa_first_row"].float()
                prev_pair_rows = trunk["pair_rows"].float()
                del trunk, sm
        if group.rank != 0:
            return {}
        result = p._outputs(out, first, ran)
        # wall time of the network (all passes), as the single-device Predictor records it
        result["meta/timings/predict"] = np.asarray(time.perf_counter() - begin, dtype=np.float64)
        return result

    def _final_outputs(self, batch: Mapping[str, torch.Tensor], trunk: Mapping,
                       sm: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """After the last pass: head logits on shards, then the whole pair, gathered to rank 0, which
        returns the model outputs ({} on other ranks). Logits first, so the pair is not held meanwhile."""
        model, group = self.predictor.model, self.group
        logits = sharded_large_logits(model, trunk["pair_rows"], trunk["msa_rows"], trunk["num_msa_rows"],
                                      trunk["num_seq"], group)
        representations = assemble(trunk, group, msa=False)
        if group.rank != 0:
            return {}
        return model.outputs(batch, representations, sm, logits)
