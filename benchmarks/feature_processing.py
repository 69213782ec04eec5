"""Feature processing: our numpy pipeline vs DeepMind's (ColabFold's numpy backend of the TF pipeline).

Both run on the same raw features, each in its own fresh subprocess (ours in this venv, DeepMind's in the
reference venv), with the preset's full DeepMind sizes; each reports wall time and peak RSS. The raw MSA is
random (values do not change the work done); sizes are set by the flags.

    python benchmarks/feature_processing.py --length 400 --rows 8000 --preset model_1 --num-recycle 3 \\
        --ref-python /work/refvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

OURS = """
import json, resource, sys, time
import numpy as np
from alphafold.io_utils import load_npz
from alphafold.data.processing import ProcessingConfig, process_features
raw = load_npz(sys.argv[1])
config = ProcessingConfig.from_preset(sys.argv[2], num_recycle=int(sys.argv[3]))
start = time.perf_counter()
out = process_features(raw, config, seed=0)
seconds = time.perf_counter() - start
np.savez(sys.argv[4], **out)
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": rss_mb,
                  "msa_feat": list(out["msa_feat"].shape)}))
"""

DEEPMIND = """
import json, resource, sys, time
import numpy as np
from alphafold.model import config as af_config, features
raw = dict(np.load(sys.argv[1]))
cfg = af_config.model_config(sys.argv[2])
cfg.data.common.num_recycle = int(sys.argv[3])
cfg.model.num_recycle = int(sys.argv[3])
start = time.perf_counter()
out = features.np_example_to_features(raw, cfg, random_seed=0)
seconds = time.perf_counter() - start
np.savez(sys.argv[4], **out)
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": rss_mb,
                  "msa_feat": list(out["msa_feat"].shape)}))
"""


def make_raw(length: int, rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    aatype = rng.integers(0, 20, length)
    msa = rng.integers(0, 22, (rows, length)).astype(np.int32)
    msa[0] = aatype  # the query row (HHblits ids; any residue id is fine here)
    num_templates = 4
    return {
        "aatype": np.eye(21, dtype=np.int32)[aatype],
        "between_segment_residues": np.zeros(length, np.int32),
        "domain_name": np.array([b"bench"]),
        "residue_index": np.arange(length, dtype=np.int32),
        "seq_length": np.full(length, length, np.int32),
        "sequence": np.array([b"A" * length]),
        "msa": msa,
        "deletion_matrix_int": (rng.random((rows, length)) < 0.05) * rng.integers(1, 9, (rows, length)),
        "num_alignments": np.full(length, rows, np.int32),
        "msa_species_identifiers": np.array([b""] * rows),
        "template_aatype": np.eye(22, dtype=np.float32)[rng.integers(0, 22, (num_templates, length))],
        "template_all_atom_masks": (rng.random((num_templates, length, 37)) < 0.5).astype(np.float32),
        "template_all_atom_positions": rng.normal(size=(num_templates, length, 37, 3)).astype(np.float32),
        "template_domain_names": np.array([b"1abc_A"] * num_templates),
        "template_sequence": np.array([b"A" * length] * num_templates),
        "template_sum_probs": np.zeros((num_templates, 1), np.float32),
    }


def run(python: str, code: str, args: list[str], env: dict, cwd: str) -> dict:
    proc = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd)
    if proc.returncode != 0:
        raise SystemExit(f"{python} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=400)
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--preset", default="model_1")
    parser.add_argument("--num-recycle", type=int, default=3)
    parser.add_argument("--ref-python", default="/work/refvenv/bin/python",
                        help="python of the reference venv (alphafold-colabfold); skipped if missing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = os.path.join(tmp, "raw.npz")
        np.savez(raw_path, **make_raw(args.length, args.rows))
        common = [raw_path, args.preset, str(args.num_recycle)]
        ours_env = dict(os.environ, PYTHONPATH=str(ROOT))
        ours_out, ref_out = os.path.join(tmp, "ours.npz"), os.path.join(tmp, "deepmind.npz")
        results = {"ours": run(sys.executable, OURS, common + [ours_out], ours_env, str(ROOT))}
        identical = None
        if Path(args.ref_python).exists():
            ref_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            ref_env["JAX_PLATFORMS"] = "cpu"
            results["deepmind"] = run(args.ref_python, DEEPMIND, common + [ref_out], ref_env, tmp)
            with np.load(ours_out) as a, np.load(ref_out) as b:
                identical = sorted(a.files) == sorted(b.files) and all(
                    np.array_equal(a[k], b[k]) for k in b.files)
    print(f"L={args.length} rows={args.rows} preset={args.preset} num_recycle={args.num_recycle}")
    print(f"{'pipeline':<10} {'seconds':>8} {'peak RSS MB':>12}  msa_feat")
    for name, r in results.items():
        print(f"{name:<10} {r['seconds']:>8.2f} {r['peak_rss_mb']:>12.0f}  {r['msa_feat']}")
    if "deepmind" in results:
        ours, ref = results["ours"], results["deepmind"]
        print(f"ratio ours/deepmind: time {ours['seconds'] / ref['seconds']:.2f}, "
              f"peak RSS {ours['peak_rss_mb'] / ref['peak_rss_mb']:.2f}")
        print(f"outputs identical (seed 0, every array): {identical}")


if __name__ == "__main__":
    main()
