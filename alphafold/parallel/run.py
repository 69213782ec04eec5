"""One prediction on P local ranks (``alphafold run-features --tp P``): spawn, predict sharded, write.

Each rank loads the network, rank 0 assembles the outputs and writes them atomically; the parent only
waits (bounded) and reports. Backend and devices follow ``device``: gloo on CPU, NCCL with one GPU per rank.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

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
    log.info("predicting %s on %d ranks (%s)", features, tp, config.resolved_backend)
    results = spawn(_rank, tp, str(params), preset, options, str(features), num_recycle, str(output),
                    config=config, timeout_s=timeout_s, in_process=False)
    return results[0]
