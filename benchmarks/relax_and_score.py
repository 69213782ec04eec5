"""Relax and scoring costs on real structures, side by side with the reference tools where one exists.

    python benchmarks/relax_and_score.py [--platform CPU]

Relax: 1UBI, 5PTI, 5EEP (tests/outputs/files): wall seconds, energies, heavy-atom RMSD to the input,
violations left. Score: our `evaluate` (TM-score + GDT-TS search, lDDT, RMSD, TM-align) against Debian's
TMscore program on the same pairs, in one run, with the ratio of seconds and the score differences.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alphafold.outputs.evaluation import evaluate  # noqa: E402
from alphafold.outputs.structure import read_structure  # noqa: E402
from alphafold.relax.amber import AmberRelaxer, RelaxConfig  # noqa: E402
from alphafold.relax.violations import find_violations  # noqa: E402

FILES = ROOT / "tests" / "outputs" / "files"
PAIRS = [
    ("adk_open.pdb.gz", "adk_closed.pdb.gz"),
    ("/usr/share/doc/tm-align/examples/1ni7.pdb.gz", "5eep.pdb.gz"),
]


def relax_table(platform: str) -> None:
    relaxer = AmberRelaxer(RelaxConfig(platform=platform))
    print(
        "| structure | residues | seconds | E start kcal/mol | E end kcal/mol | heavy RMSD Å | violations "
        "before → after | outer iterations |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in ("1ubi.pdb", "5PTI.cif.gz", "5eep.pdb.gz"):
        chain = read_structure(FILES / name)
        before = find_violations(chain)["num_residue_violations"]
        started = time.perf_counter()
        result = relaxer.relax(chain)
        seconds = time.perf_counter() - started
        both = (chain.atom_mask > 0.5) & (result.chain.atom_mask > 0.5)
        rmsd = np.sqrt(((chain.atom_positions - result.chain.atom_positions) ** 2).sum(-1)[both].mean())
        m = result.metrics
        print(
            f"| {name} | {chain.num_res} | {seconds:.2f} | {m['initial_energy']:.0f} "
            f"| {m['final_energy']:.0f} | {rmsd:.3f} | {before} → {m['num_residue_violations']} "
            f"| {m['iterations']} |"
        )


def tmscore_program(model: Path, native: Path) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for p in (model, native):
            plain = Path(tmp) / p.name.removesuffix(".gz")
            plain.write_bytes(subprocess.run(["zcat", "-f", p], capture_output=True, check=True).stdout)
            paths.append(plain)
        started = time.perf_counter()
        text = subprocess.run(["TMscore", *paths], capture_output=True, text=True, check=True).stdout
        seconds = time.perf_counter() - started
    tm = float(text.split("TM-score    =")[1].split()[0])
    gdt = float(text.split("GDT-TS-score=")[1].split()[0])
    return seconds, tm, gdt


def score_table() -> None:
    if shutil.which("TMscore") is None:
        print("TMscore not installed: score comparison skipped")
        return
    print("| pair | ours s | TMscore s | ratio | TM ours / TMscore | GDT-TS ours / TMscore |")
    print("|---|---|---|---|---|---|")
    for model_name, native_name in PAIRS:
        model_path, native_path = FILES / model_name, FILES / native_name
        model, native = read_structure(model_path), read_structure(native_path)
        started = time.perf_counter()
        ours = evaluate(model, native, by_number=True)
        ours_s = time.perf_counter() - started
        prog_s, tm, gdt = tmscore_program(model_path, native_path)
        print(
            f"| {model_path.name} vs {native_path.name} | {ours_s:.2f} | {prog_s:.2f} "
            f"| {ours_s / prog_s:.1f} | {ours.tm_score:.4f} / {tm:.4f} | {ours.gdt_ts:.4f} / {gdt:.4f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="CPU")
    args = parser.parse_args()
    relax_table(args.platform)
    print()
    score_table()


if __name__ == "__main__":
    main()
