"""`alphafold write-outputs` (a target's files from model outputs), `alphafold report` (campaign page)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from alphafold.errors import UserError
from alphafold.io_utils import load_npz

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "write-outputs",
        help="PDB/ModelCIF, scores, PAE JSON, ranking and plots of one target from its model-output npz",
        description="Write AF2-named outputs for one target: unrelaxed_/relaxed_ MODEL .pdb/.cif, scores_, "
        "confidence_, pae_ JSON per model; ranking_debug.json, ranked_N.pdb/.cif, plots and "
        "summary.json per target.",
    )
    p.add_argument(
        "--prediction",
        nargs="+",
        required=True,
        type=Path,
        metavar="OUT.npz",
        help="model-output npz files of this target (from run-features / predict-batch)",
    )
    p.add_argument("--features", type=Path, help="raw or processed features npz (for the MSA coverage plot)")
    p.add_argument("--output-dir", required=True, type=Path)
    p.add_argument("--target", help="target name (default: the output directory's name)")
    p.add_argument("--relax", action="store_true", help="Amber-relax every model (OpenMM)")
    p.add_argument(
        "--relax-platform",
        default="auto",
        choices=["auto", "CPU", "CUDA", "OpenCL", "Reference"],
        help="OpenMM platform for --relax (auto: CUDA when present, else CPU)",
    )
    p.set_defaults(func=run_write_outputs)

    r = subparsers.add_parser("report", help="static HTML page of a campaign's targets, scores and plots")
    r.add_argument("campaign_dir", type=Path)
    r.add_argument("--output", type=Path, help="page path (default: CAMPAIGN_DIR/index.html)")
    r.add_argument("--title")
    r.set_defaults(func=run_report)


def _load_prediction(path: Path) -> dict:
    if not path.is_file():
        raise UserError(str(path), "no such file")
    try:
        return load_npz(path)
    except (OSError, ValueError) as err:
        raise UserError(str(path), f"not a readable npz file: {err}") from err


def run_write_outputs(args: argparse.Namespace) -> int:
    from alphafold.outputs import writer

    loaded = [_load_prediction(p) for p in args.prediction]
    for path, outputs in zip(args.prediction, loaded):
        for key in ("structure_module/final_atom_positions", "aatype"):
            if key not in outputs:
                raise UserError(str(path), f"not a model-output file: no {key!r}")
    presets = [writer.prediction_metadata(o)["preset"] for o in loaded]
    try:
        names = writer.model_names(presets, [str(p) for p in args.prediction])
    except ValueError as err:
        raise UserError(None, str(err)) from err
    features = None
    if args.features is not None:
        features = _load_prediction(args.features)
    relaxer = None
    if args.relax:
        from alphafold.relax.amber import AmberRelaxer, RelaxConfig

        relaxer = AmberRelaxer(RelaxConfig(platform=args.relax_platform))
    target = args.target or args.output_dir.resolve().name
    try:
        summary = writer.write_target_outputs(
            dict(zip(names, loaded)), args.output_dir, target, features, relaxer
        )
    except (ValueError, RuntimeError) as err:
        raise UserError(", ".join(map(str, args.prediction)), str(err)) from err
    print(f"{target}: {len(names)} model(s), best {summary['best_model']} -> {args.output_dir}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from alphafold.outputs.report import write_report

    output = args.output or args.campaign_dir / "index.html"
    count = write_report(args.campaign_dir, output, args.title)
    print(f"{output}: {count} target(s)")
    return 0
