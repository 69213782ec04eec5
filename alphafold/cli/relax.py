"""`alphafold relax IN.pdb --output OUT.pdb`: Amber relax of one protein chain, as AlphaFold2 does it."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from alphafold.cli.argtypes import non_negative_float, positive_int
from alphafold.errors import UserError
from alphafold.io_utils import write_text_atomic

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "relax",
        help="restrained Amber minimisation (OpenMM, amber99sb) of a PDB/mmCIF chain",
        description="Relax one protein chain as AlphaFold2 does: hydrogens added, heavy atoms restrained "
        "(10 kcal/mol/Å²), minimised until converged, repeated with violating residues freed. "
        "Writes PDB with hydrogens; B-factors (pLDDT for predictions) are kept per residue.",
    )
    p.add_argument("input", type=Path, help="PDB or mmCIF file (may be gzipped)")
    p.add_argument("--output", required=True, type=Path, help="relaxed PDB file")
    p.add_argument("--chain", help="chain to relax (default: the first protein chain)")
    p.add_argument("--heavy-atoms-only", action="store_true", help="write no hydrogens")
    p.add_argument("--metrics", type=Path, help="write energies, violations and RMSD as JSON here")
    p.add_argument(
        "--platform",
        default="auto",
        choices=["auto", "CPU", "CUDA", "OpenCL", "Reference"],
        help="OpenMM platform (auto: CUDA when present, else CPU)",
    )
    p.add_argument("--stiffness", type=non_negative_float, default=10.0,
                   help="restraint, kcal/mol/Å² (default 10)")
    p.add_argument("--max-outer-iterations", type=positive_int, default=3,
                   help="violation-driven rounds (default 3)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alphafold.outputs.structure import read_structure, to_pdb
    from alphafold.relax.amber import AmberRelaxer, RelaxConfig

    chain = read_structure(args.input, args.chain)
    try:
        relaxer = AmberRelaxer(
            RelaxConfig(
                platform=args.platform,
                stiffness=args.stiffness,
                max_outer_iterations=args.max_outer_iterations,
            )
        )
        result = relaxer.relax(chain, remarks=[f"relaxed from {args.input.name} by alphafold relax"])
    except ValueError as err:
        raise UserError(str(args.input), str(err)) from err
    text = to_pdb(result.chain, [f"relaxed from {args.input.name}"]) if args.heavy_atoms_only else result.pdb
    write_text_atomic(args.output, text)
    if args.metrics:
        write_text_atomic(args.metrics, json.dumps(result.metrics, indent=2))
    m = result.metrics
    print(
        f"{args.output}: energy {m['initial_energy']:.1f} -> {m['final_energy']:.1f} kcal/mol, "
        f"{m['num_residue_violations']} violating residue(s) after {m['iterations']} iteration(s)"
    )
    return 0
