"""`alphafold score MODEL NATIVE`: TM-score, GDT-TS, lDDT and CA RMSD of a model against a real structure."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from alphafold.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="TM-score, GDT-TS, lDDT, CA RMSD of a model against an experimental structure",
        description="Compare a model with a native structure (PDB or mmCIF, gzipped or not). Residues are "
        "paired by aligning the two sequences, or by residue number with --by-number (as TMscore does). "
        "Scores are normalised by the native's length.",
    )
    p.add_argument("model", type=Path)
    p.add_argument("native", type=Path)
    p.add_argument("--model-chain", help="chain of the model (default: first protein chain)")
    p.add_argument("--native-chain", help="chain of the native (default: first protein chain)")
    p.add_argument("--by-number", action="store_true", help="pair residues by residue number")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alphafold.outputs.evaluation import evaluate
    from alphafold.outputs.structure import read_structure

    model = read_structure(args.model, args.model_chain)
    native = read_structure(args.native, args.native_chain)
    try:
        result = evaluate(model, native, by_number=args.by_number)
    except ValueError as err:
        raise UserError(f"{args.model} vs {args.native}", str(err)) from err
    if args.json:
        print(
            json.dumps({"model": str(args.model), "native": str(args.native), **result.as_dict()}, indent=2)
        )
        return 0
    print(f"model   {args.model} ({result.model_length} residues)")
    print(f"native  {args.native} ({result.native_length} residues), {result.num_aligned} paired")
    print(f"TM-score  {result.tm_score:.4f}   (TM-align: {result.tm_align_score:.4f})")
    gdt = " ".join(f"<{k:g}Å {v:.4f}" for k, v in result.gdt.items())
    print(f"GDT-TS    {result.gdt_ts:.4f}   ({gdt})")
    print(f"lDDT      {result.lddt:.4f}   (lDDT-Cα {result.lddt_ca:.4f})")
    print(f"CA RMSD   {result.ca_rmsd:.3f} Å")
    return 0
