"""`alphafold run-features`: run the network on a processed-feature .npz and write its outputs (.npz).

The parity surface of the project: the same params file and processed features as DeepMind's JAX model,
outputs under DeepMind's names (docs/contracts.md).
"""

from __future__ import annotations

import argparse
import logging
import time
import zipfile
from pathlib import Path

from alphafold.cli.argtypes import chunk_size, non_negative_float, non_negative_int, positive_int
from alphafold.errors import UserError
from alphafold.io_utils import load_npz, save_npz_atomic
from alphafold.model.options import RuntimeOptions

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run-features",
        help="run the model on processed features (.npz, AF2 v2.3 layout) with a DeepMind params file",
    )
    parser.add_argument("--params", required=True, type=Path, help="params_model_*.npz (DeepMind layout)")
    parser.add_argument(
        "--features", required=True, type=Path, help="processed features .npz with a leading recycle axis"
    )
    parser.add_argument("--output", required=True, type=Path, help="output .npz (written atomically)")
    parser.add_argument(
        "--num-recycle",
        type=non_negative_int,
        default=None,
        help="recycles after the first pass (default: the features' recycle axis - 1)",
    )
    parser.add_argument(
        "--preset", default=None, help="e.g. model_1_ptm (default: from the params file name)"
    )
    parser.add_argument(
        "--chunk-size",
        type=chunk_size,
        default="auto",
        help="rows per chunk: an integer, 'auto' (from free memory) or 'none' (default auto)",
    )
    parser.add_argument(
        "--recycle-tolerance",
        type=non_negative_float,
        default=0.0,
        help="stop early when the CA RMS movement falls below this (Å); 0 never stops early",
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    parser.add_argument(
        "--tp",
        type=positive_int,
        default=1,
        help="ranks sharing the pair representation (tensor parallel; gloo on CPU, NCCL on cuda)",
    )
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.set_defaults(func=run)


def _read_features(path: Path) -> dict:
    if not path.is_file():
        raise UserError(str(path), "features file not found")
    try:
        return load_npz(path)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise UserError(str(path), f"not a readable .npz features file ({err})") from None


def run(args: argparse.Namespace) -> int:
    options = RuntimeOptions(
        chunk_size=args.chunk_size,
        num_recycle=args.num_recycle,
        recycle_tolerance=args.recycle_tolerance,
        dtype=args.dtype,
        device=args.device,
    )
    features = _read_features(args.features)
    if "aatype" not in features or features["aatype"].ndim != 2:
        raise UserError(str(args.features), "needs 'aatype' [num_recycle+1, N_res] (processed features)")
    if min(features["aatype"].shape) < 1:
        raise UserError(str(args.features), f"aatype has shape {features['aatype'].shape}: no recycle slice "
                                            "or no residue")
    if args.tp > 1:
        from alphafold.parallel.run import run_sharded

        done = run_sharded(args.params, args.features, args.output, args.tp, options, args.preset,
                           args.num_recycle)
        log.info("wrote %s (%d recycles run, %d residues, %d ranks)", args.output, done["num_recycles_run"],
                 done["num_res"], args.tp)
        return 0
    start = time.perf_counter()
    # imported here: building the CLI's parsers must not pay for torch
    from alphafold.model.predictor import Predictor

    predictor = Predictor.from_params_file(args.params, preset=args.preset, options=options)
    log.info(
        "loaded %s (preset %s) in %.1f s", args.params, predictor.preset.name, time.perf_counter() - start
    )
    outputs = predictor.predict(features, num_recycle=args.num_recycle, where=str(args.features))
    save_npz_atomic(args.output, outputs)
    log.info(
        "wrote %s (%d recycles run, %d residues)",
        args.output,
        int(outputs["meta/num_recycles_run"]),
        outputs["aatype"].shape[0],
    )
    return 0
