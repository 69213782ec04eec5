"""Seconds per recycle and peak memory of the full model_1_ptm network: ours against DeepMind's JAX model.

Both contenders run in one invocation, each in a fresh subprocess, on the same random full-size
model_1_ptm parameters (DeepMind's layout) and the same synthetic processed features (8 MSA clusters +
8 extra rows, 4 templates of which 1 is present, num_recycle+1 slices). Reported per length: mean seconds
per recycle pass after the first (compilation and warm-up excluded for both), the first pass, and peak RSS
of the process; ratios ours / DeepMind.

    python benchmarks/model_speed_memory.py --lengths 100 200 --num-recycle 2

The longest L our model completes within a memory budget is found by benchmarks/model_memory_limit.py
(a real pass per candidate length takes hours at the lengths in question). The JAX side needs the
reference venv (``/work/refvenv`` or ``$AF_REFERENCE_VENV``) and uses tests/reference/refcommon.py to
configure DeepMind's model for float32.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REF_VENV = Path(os.environ.get("AF_REFERENCE_VENV", "/work/refvenv"))

OURS = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np, torch
    from alphafold.model.options import RuntimeOptions
    from alphafold.model.predictor import Predictor
    params, features, num_recycle = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(2)
    p = Predictor.from_params_file(params, preset="model_1_ptm", options=RuntimeOptions(chunk_size="auto"))
    f = dict(np.load(features))
    tensors = p._tensors(f)
    times = []
    prev = p.model.initial_prev(f["aatype"].shape[1], p.device)
    with torch.inference_mode():
        chunk = p._chunk_size({k: v[0] for k, v in tensors.items()})
        for r in range(num_recycle + 1):
            t = time.perf_counter()
            out = p.model({k: v[r] for k, v in tensors.items()}, prev, chunk)
            prev = {k: out["prev/" + k] for k in ("prev_pos", "prev_msa_first_row", "prev_pair")}
            times.append(time.perf_counter() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "rss_mb": rss}))
""")

DEEPMIND = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np, jax, haiku as hk
    sys.path.insert(0, sys.argv[4])
    import refcommon
    params, features, num_recycle = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cfg = refcommon.reference_config("model_1_ptm", num_recycle=num_recycle)
    apply = jax.jit(hk.transform(refcommon.forward_fn(cfg.model)).apply)
    hk_params = refcommon.unflatten_params(dict(np.load(params)))
    f = dict(np.load(features))
    n = f["aatype"].shape[1]
    z = np.float32
    prev = {"prev_pos": np.zeros((n, 37, 3), z), "prev_msa_first_row": np.zeros((n, 256), z),
            "prev_pair": np.zeros((n, n, 128), z)}
    times = []
    for r in range(num_recycle + 1):
        t = time.perf_counter()
        res = jax.device_get(apply(hk_params, jax.random.PRNGKey(0), {**{k: v[r] for k, v in f.items()},
                                                                       "prev": dict(prev)}))
        prev = {k: np.asarray(v, np.float32) for k, v in res["prev"].items()}
        times.append(time.perf_counter() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "rss_mb": rss}))
""")


def synthetic_features(length: int, num_recycle: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Processed features (AF2 v2.3 names) of a random sequence: 8 clusters, 8 extra rows, 4 templates."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    n_clust, n_extra, n_templ = 8, 8, 4
    aatype = rng.integers(0, 20, length)
    ca = np.cumsum(rng.normal(size=(length, 3)) * 2.2, axis=0)
    pos = np.zeros((n_templ, length, 37, 3), f32)
    mask = np.zeros((n_templ, length, 37), f32)
    pos[0] = ca[:, None, :] + rng.normal(size=(length, 37, 3))
    mask[0, :, :5] = 1
    one = {
        "aatype": aatype,
        "residue_index": np.arange(length),
        "seq_mask": np.ones(length, f32),
        "seq_length": np.asarray(length),
        "target_feat": np.eye(22, dtype=f32)[aatype],
        "msa_feat": rng.normal(size=(n_clust, length, 49)).astype(f32),
        "msa_mask": np.ones((n_clust, length), f32),
        "msa_row_mask": np.ones(n_clust, f32),
        "bert_mask": np.zeros((n_clust, length), f32),
        "true_msa": rng.integers(0, 21, (n_clust, length)),
        "extra_msa": rng.integers(0, 23, (n_extra, length)),
        "extra_msa_mask": np.ones((n_extra, length), f32),
        "extra_msa_row_mask": np.ones(n_extra, f32),
        "extra_has_deletion": np.zeros((n_extra, length), f32),
        "extra_deletion_value": np.zeros((n_extra, length), f32),
        "template_aatype": np.stack([aatype] + [np.full(length, 21)] * (n_templ - 1)),
        "template_all_atom_positions": pos,
        "template_all_atom_masks": mask,
        "template_mask": np.asarray([1, 0, 0, 0], f32),
        "template_pseudo_beta": pos[:, :, 3],
        "template_pseudo_beta_mask": mask[:, :, 3],
        "template_sum_probs": np.ones((n_templ, 1), f32),
        "atom14_atom_exists": np.ones((length, 14), f32),
        "atom37_atom_exists": np.ones((length, 37), f32),
        "residx_atom14_to_atom37": np.zeros((length, 14), np.int32),
        "residx_atom37_to_atom14": np.zeros((length, 37), np.int32),
        "is_distillation": np.asarray(0.0, f32),
        "random_crop_to_size_seed": np.zeros(2, np.int32),
    }
    return {k: np.stack([np.asarray(v)] * (num_recycle + 1)) for k, v in one.items()}


def run(script: str, python: str, args: list[str], env: dict | None = None, cwd: str | None = None) -> dict:
    proc = subprocess.run([python, "-c", script, *args], capture_output=True, text=True, env=env, cwd=cwd)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ours(params: Path, features: Path, num_recycle: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return run(OURS, sys.executable, [str(params), str(features), str(num_recycle)], env=env)


def deepmind(params: Path, features: Path, num_recycle: int) -> dict:
    # DeepMind's package is also called `alphafold`: run outside our tree, without our PYTHONPATH
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["JAX_PLATFORMS"] = "cpu"
    return run(
        DEEPMIND,
        str(REF_VENV / "bin" / "python"),
        [str(params), str(features), str(num_recycle), str(ROOT / "tests" / "reference")],
        env=env,
        cwd=tempfile.gettempdir(),
    )


def summary(result: dict) -> tuple[float, float, float]:
    times = result["times"]
    steady = float(np.mean(times[1:])) if len(times) > 1 else float(times[0])
    return times[0], steady, result["rss_mb"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--num-recycle", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from alphafold.params.random_params import random_params

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        params = work / "params_model_1_ptm.npz"
        np.savez(
            params,
            **{
                k: v
                for k, v in random_params("model_1_ptm", seed=args.seed).items()
                if not k.startswith("__meta__")
            },
        )
        print(
            "| L | ours first s | DeepMind first s | ours s/recycle | DeepMind s/recycle | time ratio "
            "| ours RSS MB | DeepMind RSS MB | RSS ratio |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for length in args.lengths:
            features = work / f"features_{length}.npz"
            np.savez(features, **synthetic_features(length, args.num_recycle, args.seed))
            a, b = ours(params, features, args.num_recycle), deepmind(params, features, args.num_recycle)
            if "error" in a or "error" in b:
                print(f"| {length} | {a} | {b} |")
                continue
            (a0, a1, am), (b0, b1, bm) = summary(a), summary(b)
            print(
                f"| {length} | {a0:.1f} | {b0:.1f} | {a1:.1f} | {b1:.1f} | {a1 / b1:.2f} | {am:.0f} "
                f"| {bm:.0f} | {am / bm:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
