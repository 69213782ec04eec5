"""One prediction on P local ranks (``alphafold run-features --tp P``): spawn, predict sharded, write.

Each rank loads the network, rank 0 assembles the outputs and writes them atomically; the parent only
waits (bounded) and reports. Backend and devices follow ``device``: gloo on CPU, NCCL with one GPU per rank.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import torch

from alphafold.io_utils import load_npz, save_npz_atomic
from alphafold.model.options import RuntimeOptions
from alphafold.parallel.group import ParallelConfig, ShardGroup
from alphafold.parallel.launch import spawn

log = logging.getLogger(__name__)


def _rank(group: ShardGroup, params: str, preset: str | None, options: RuntimeOptions, features_path: str,
          num_recycle: int | None, output: str) -> dict:
    from alphafold.runtime.factory import PredictorFactory

    logging.basicConfig(level=logging.INFO if group.rank == 0 else logging.WARNING,
                        format=f"%(asctime)s %(levelname)s rank{group.rank} %(name)s: %(message)s")
    start = time.perf_counter()
    predictor = PredictorFactory(params, preset, options)(group)
    loaded = time.perf_counter() - start
    outputs = predictor.predict(load_npz(features_path), num_recycle=num_recycle, where=features_path)
    if group.rank != 0:
        return {}
    save_npz_atomic(output, outputs)
    return {"loaded_s": loaded, "num_recycles_run": int(outputs["meta/num_recycles_run"]),
            "num_res": int(outputs["aatype"].shape[0])}


def run_sharded(params: Path, features: Path, output: Path, tp: int, options: RuntimeOptions,
                preset: str | None = None, num_recycle: int | None = None,
                timeout_s: float = 24 * 3600) -> dict:
    """Predict ``features`` with the pair representation sharded over ``tp`` local ranks; write ``output``."""
    config = ParallelConfig(device="cuda" if options.device.startswith("cuda") else "cpu")
    if config.device == "cpu" and options.chunk_size == "auto" and options.memory_budget_gb is None:
        # The ranks share this host's memory: each plans its "auto" chunks with its share of what is free,
        # not with all of it (P ranks would otherwise plan P times the memory there is).
        from alphafold.model.chunking import free_memory_bytes

        share = free_memory_bytes(torch.device("cpu")) / tp
        options = dataclasses.replace(options, memory_budget_gb=share / 1e9)
        log.info("'auto' chunking plans with %.1f GB per rank (1/%d of the host's free memory)", share / 1e9,
                 tp)
    log.info("predicting %s on %d ranks (%s)", features, tp, config.resolved_backend)
    results = spawn(_rank, tp, str(params), preset, options, str(features), num_recycle, str(output),
                    config=config, timeout_s=timeout_s, in_process=False)
    return results[0]
