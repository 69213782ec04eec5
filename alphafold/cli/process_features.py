"""`alphafold process-features`: raw features.npz -> AF2 v2.3 processed features with a recycle axis."""

from __future__ import annotations

import argparse
import logging
import time
import zipfile

import numpy as np

from alphafold.cli.argtypes import non_negative_int, positive_int
from alphafold.data.processing import ProcessingConfig, process_features
from alphafold.errors import UserError
from alphafold.io_utils import load_npz, save_npz_atomic

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "process-features",
        help="turn raw features (alphafold features) into the processed features a model preset reads",
        description="AlphaFold2 v2.3 feature processing for monomers: MSA cluster sampling, BERT masking, "
                    "cluster profiles, extra MSA, template and atom maps, padding; one random sample per "
                    "recycle (leading axis num_recycle+1). Sizes default to the preset's DeepMind config.",
    )
    p.add_argument("raw", metavar="RAW.npz", help="raw features (docs/contracts.md)")
    p.add_argument("--preset", required=True, metavar="NAME",
                   help="model_1 .. model_5 or model_1_ptm .. model_5_ptm (decides templates and sizes)")
    p.add_argument("--num-recycle", type=non_negative_int, default=3, metavar="N",
                   help="recycles after the first pass; N+1 samples are made (default %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                   help="seed of the random draws (default 0)")
    p.add_argument("--out", required=True, metavar="PROCESSED.npz")
    p.add_argument("--max-msa-clusters", type=positive_int, default=None, metavar="N",
                   help="MSA rows before the template reduction (default 512; templated presets keep "
                        "N - max_templates cluster centres)")
    p.add_argument("--max-extra-msa", type=non_negative_int, default=None, metavar="N",
                   help="extra MSA rows (default per preset: 5120 for models 1, 3, 4; 1024 for 2, 5)")
    p.add_argument("--max-templates", type=non_negative_int, default=None, metavar="N",
                   help="templates (default 4)")
    p.add_argument("--rng", choices=("deepmind", "numpy"), default="deepmind",
                   help="random draws: 'deepmind' reproduces DeepMind's pipeline for the seed (TF's Philox "
                        "stream), 'numpy' uses numpy's generator (default %(default)s)")
    p.add_argument("--compress", action="store_true", help="write a compressed .npz (slower, smaller)")
    p.set_defaults(func=run)


def _load_raw(path: str) -> dict[str, np.ndarray]:
    try:
        return load_npz(path)
    except FileNotFoundError:
        raise UserError(path, "raw features file not found") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise UserError(path, f"not a readable .npz of raw features ({err})") from None


def run(args: argparse.Namespace) -> int:
    config = ProcessingConfig.from_preset(
        args.preset, num_recycle=args.num_recycle, max_msa_clusters=args.max_msa_clusters,
        max_extra_msa=args.max_extra_msa, max_templates=args.max_templates)
    raw = _load_raw(args.raw)
    start = time.perf_counter()
    processed = process_features(raw, config, seed=args.seed, rng=args.rng, where=args.raw)
    save_npz_atomic(args.out, processed, compress=args.compress)
    logger.info("processed %s for %s (%d recycle samples, msa_feat %s) in %.1f s; wrote %s", args.raw,
                args.preset, config.num_recycle + 1, tuple(processed["msa_feat"].shape),
                time.perf_counter() - start, args.out)
    return 0
