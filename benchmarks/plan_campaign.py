"""How long a proteome-scale campaign takes to plan: `snakemake --dry-run` of the whole workflow.

Measures, in one run, the batched design (targets grouped into hash-keyed batches per length tier, the
shipped config) against one job per target per stage (every target its own batch), on:
  - the real bacterial proteome shipped with pyhmmer (2,100 proteins), and
  - a synthetic 20,000-protein FASTA (log-normal lengths, median 300; seed 0).

    .venv/bin/python benchmarks/plan_campaign.py [--n 20000] [--per-target-max 2100] [--out-dir /tmp/x]

Prints a table (wall seconds of the dry run, DAG jobs) and the batched/per-target ratio; the results
and the exact command go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
AMINO = "ACDEFGHIKLMNPQRSTVWY"


def real_proteome() -> Path | None:
    import pyhmmer

    path = Path(pyhmmer.__file__).parent / "tests" / "data" / "seqs" / "938293.PRJEB85.HG003687.faa"
    return path if path.is_file() else None


def synthetic_fasta(path: Path, n: int, seed: int = 0, median_length: int = 300) -> Path:
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for i in range(n):
            length = max(20, min(5500, int(rng.lognormvariate(0, 0.6) * median_length)))
            fh.write(f">syn{i:05d}\n{''.join(rng.choices(AMINO, k=length))}\n")
    return path


def default_tiers() -> list[dict]:
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    return schema["properties"]["campaign"]["properties"]["tiers"]["default"]


def dry_run(targets: Path, out_dir: Path, per_target: bool, timeout: float) -> tuple[float, int | None]:
    """Wall seconds of `snakemake -n` and the number of jobs it plans (None on time-out)."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--quiet", "rules",
           "--config", f"targets={targets}", f"output_dir={out_dir}"]
    # The shipped config is the 5-protein example (two buckets); a proteome uses the schema's default
    # tiers. Per target: one bucket per possible target, every target its own batch (the naive DAG).
    tiers = default_tiers()
    if per_target:
        tiers = [{**t, "buckets": 1_000_000} for t in tiers]
    extra = out_dir.parent / f"tiers_{'per_target' if per_target else 'batched'}.yaml"
    extra.write_text(yaml.safe_dump({"campaign": {"tiers": tiers}}))
    cmd += ["--configfiles", str(ROOT / "config" / "config.yaml"), str(extra)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, None
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"dry run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    match = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.M)
    return seconds, int(match.group(1)) if match else None


def plan_in_process(targets: Path, out_dir: Path) -> tuple[float, int, int]:
    """Seconds to read, validate, deduplicate and batch the targets (the Snakefile's planning step)."""
    sys.path.insert(0, str(ROOT))
    from alphafold.campaign.campaign import Campaign
    from alphafold.campaign.config import load_config_file

    config = load_config_file(ROOT / "config" / "config.yaml", {
        "targets": str(targets), "output_dir": str(out_dir), "campaign": {"tiers": default_tiers()}})
    start = time.perf_counter()
    campaign = Campaign.from_config(config, validated=True)
    return time.perf_counter() - start, len(campaign.targets), len(campaign.batches)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="synthetic targets")
    ap.add_argument("--per-target-max", type=int, default=2100,
                    help="run the per-target comparison only for inputs up to this many targets")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out-dir", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    work = args.out_dir or Path(tempfile.mkdtemp(prefix="plan-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    inputs = []
    proteome = real_proteome()
    if proteome:
        inputs.append(("real proteome 938293.PRJEB85.HG003687", proteome, 2100))
    synthetic = synthetic_fasta(work / f"synthetic_{args.n}.fasta", args.n)
    inputs.append((f"synthetic {args.n}", synthetic, args.n))
    for label, path, _ in inputs:
        seconds, n_targets, n_batches = plan_in_process(path, work / "out-batched")
        print(f"{label}: {n_targets} unique targets in {n_batches} batches; planning in-process "
              f"{seconds:.1f} s", flush=True)
    print(f"{'input':40s} {'design':12s} {'jobs':>7s} {'dry run (s)':>12s}")
    for label, path, n in inputs:
        batched = dry_run(path, work / "out-batched", False, args.timeout)
        print(f"{label:40s} {'batched':12s} {batched[1] or '?':>7} {batched[0]:12.1f}", flush=True)
        if n <= args.per_target_max:
            naive = dry_run(path, work / "out-per-target", True, args.timeout)
            shown = f"{naive[0]:12.1f}" if naive[1] is not None else f">{args.timeout:.0f} (timed out)"
            print(f"{label:40s} {'per-target':12s} {naive[1] or '?':>7} {shown}", flush=True)
            print(f"{'':40s} ratio per-target/batched: {naive[0] / batched[0]:.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
