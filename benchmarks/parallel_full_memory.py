"""Per-rank peak memory of the whole sharded network (the ``run-features --tp P`` path), P = 1, 2, 3.

For each length L and group size P this writes random model_1_ptm parameters (DeepMind's layout, full width,
the block counts given here) and synthetic processed features (``--n-seq`` MSA rows including the 4
template torsion rows, ``--n-extra`` extra rows, ``--n-templ`` templates, all present), then runs exactly
what ``alphafold run-features --tp P`` runs: P fresh processes (gloo on loopback) that each load the network
through :class:`~alphafold.runtime.factory.PredictorFactory` (the single-device Predictor at P = 1, a
ShardedPredictor otherwise), predict, and on rank 0 write the outputs. Each rank reports:

* the parameter bytes of its loaded network and its RSS after loading;
* its peak RSS while predicting and writing (Linux VmHWM, reset after loading via /proc/self/clear_refs),
  split into stages: the peak RSS reached inside each stage (template embedding, each extra-MSA block,
  each Evoformer block, gathering to rank 0, structure module) and between them ("after X": e.g. the
  embeddings before the first stage, the heads and output assembly after the structure module);
* the memory model's estimate (:func:`alphafold.parallel.cost.rank_memory`) for the same shape.

Depth: a network with fewer blocks than model_1_ptm's 48 / 4 / 2 (Evoformer / extra MSA / template pair
stack) runs the same per-block code at the same width; its activations do not grow with depth (each block
replaces m and z), so the full network's peak is the reduced one's plus the parameter bytes of the missing
blocks. ``--full-weights`` reports that sum next to the measurement; ``--depth-check`` measures it.

    python benchmarks/parallel_full_memory.py --lengths 400 --ranks 1 2 3 --num-recycle 1
    python benchmarks/parallel_full_memory.py --lengths 128 --ranks 1 2 --n-seq 64 --n-extra 256 \\
        --depth-check
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from alphafold.common import residue_constants as rc
from alphafold.io_utils import load_npz, save_npz_atomic
from alphafold.model.options import RuntimeOptions
from alphafold.parallel.cost import TargetShape, rank_memory
from alphafold.parallel.launch import spawn
from alphafold.params.presets import EVOFORMER_STACK, EXTRA_MSA_STACK, TEMPLATE_PAIR_STACK
from alphafold.params.random_params import manifest, random_params, stacked_prefix

PRESET = "model_1_ptm"
BASE_BYTES = int(0.24 * 2**30)  # a rank's RSS before model and data, measured here (``rss_start``)
FULL_DEPTH = (48, 4, 2)  # Evoformer, extra-MSA, template pair stack blocks of model_1_ptm
TORSION_ROWS = 4  # template torsion rows appended to the MSA (model_1_ptm embeds 4 templates' torsions)


def _vm(field: str) -> int:
    """A /proc/self/status field in bytes (VmRSS, VmHWM)."""
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) * 1024


def _reset_peak() -> None:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


class Stages:
    """Peak RSS of each stage of a prediction: VmHWM read and reset at every stage boundary."""

    def __init__(self):
        self.peaks: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.rises: dict[str, int] = {}  # peak within the stage minus the RSS it started with
        self.passes = 0
        self.label = "features to tensors"
        self.start = time.perf_counter()
        _reset_peak()
        self.rss_start = _vm("VmRSS")

    def switch(self, label: str) -> None:
        peak, now = _vm("VmHWM"), time.perf_counter()
        self.peaks[self.label] = max(self.peaks.get(self.label, 0), peak)
        self.rises[self.label] = max(self.rises.get(self.label, 0), peak - self.rss_start)
        self.seconds[self.label] = self.seconds.get(self.label, 0.0) + now - self.start
        self.label, self.start = f"pass {self.passes}: {label}", now
        _reset_peak()
        self.rss_start = _vm("VmRSS")

    def new_pass(self, *_) -> None:
        """A recycling pass begins: the stages after it are labelled with its number."""
        self.passes += 1
        self.switch("embeddings")

    def wrap(self, fn, label):
        def wrapped(*args, **kwargs):
            name = label(*args) if callable(label) else label
            self.switch(name)
            try:
                return fn(*args, **kwargs)
            finally:
                self.switch(f"after {name}")
        return wrapped

    def hook(self, module: torch.nn.Module, name: str) -> None:
        module.register_forward_pre_hook(lambda *_: self.switch(name))
        module.register_forward_hook(lambda *_: self.switch(f"after {name}"))


def _instrument(predictor, stages: Stages) -> None:
    """Stage boundaries on both paths: module hooks (single device) and the sharded trunk's functions."""
    from alphafold.parallel import comm, trunk
    from alphafold.parallel import predictor as sharded_predictor

    model = getattr(predictor, "predictor", predictor).model
    evo = model.evoformer
    evo.register_forward_pre_hook(stages.new_pass)
    trunk_fn = sharded_predictor.sharded_trunk

    def sharded_trunk(*args, **kwargs):
        stages.new_pass()
        return trunk_fn(*args, **kwargs)

    sharded_predictor.sharded_trunk = sharded_trunk
    sharded_predictor.sharded_structure_module = stages.wrap(sharded_predictor.sharded_structure_module,
                                                             "structure module (row-sharded)")
    if hasattr(predictor, "_final_outputs"):
        predictor._final_outputs = stages.wrap(predictor._final_outputs,
                                               "final outputs (head logits, gather to rank 0)")
    if model.config.template.enabled:
        stages.hook(evo.template_embedding, "template embedding")
    for block in evo.extra_msa_stack:
        stages.hook(block, "extra-MSA block")
    for block in evo.evoformer_iteration:
        stages.hook(block, "Evoformer block")
    stages.hook(model.structure_module, "structure module")
    c_e = model.config.extra_msa.c_e
    trunk._template_update = stages.wrap(trunk._template_update, "template embedding")
    trunk.evoformer_block = stages.wrap(
        trunk.evoformer_block,
        lambda block, m, *a: "extra-MSA block" if m.shape[-1] == c_e else "Evoformer block")
    comm.gather_to = stages.wrap(comm.gather_to, "gather m, z to rank 0")


def _rank(group, params: str, features: str, output: str, chunk_size: int, num_recycle: int) -> dict:
    from alphafold.runtime.factory import PredictorFactory

    rss_start = _vm("VmRSS")  # the process before model and data: interpreter, torch, gloo
    options = RuntimeOptions(chunk_size=chunk_size, num_recycle=num_recycle)
    predictor = PredictorFactory(params, PRESET, options)(group)
    model = getattr(predictor, "predictor", predictor).model
    param_bytes = sum(t.numel() * t.element_size() for t in model.parameters())
    feats = load_npz(features)
    rss_loaded = _vm("VmRSS")
    stages = Stages()
    _instrument(predictor, stages)
    start = time.perf_counter()
    outputs = predictor.predict(feats, num_recycle=num_recycle, where=features)
    if group.rank == 0:
        stages.switch("write outputs")
        save_npz_atomic(output, outputs)
    stages.switch("done")
    seconds = time.perf_counter() - start
    return {"rank": group.rank, "param_bytes": param_bytes, "rss_start": rss_start, "rss_loaded": rss_loaded,
            "peak": max(stages.peaks.values()), "stage_peaks": stages.peaks, "stage_rises": stages.rises,
            "stage_seconds": stages.seconds,
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "seconds": seconds,
            "threads": torch.get_num_threads()}


def synthetic_features(n_res: int, n_clust: int, n_extra: int, n_templ: int, n_slices: int,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Random, well-formed processed features (AF2 v2.3 names) with a leading recycle axis."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    aatype = rng.integers(0, 20, n_res)
    ca = np.cumsum(rng.normal(size=(n_templ, n_res, 3)) * 2.2, axis=1)
    pos = (ca[:, :, None, :] + rng.normal(size=(n_templ, n_res, 37, 3))).astype(f32)
    t_aatype = rng.integers(0, 20, (n_templ, n_res))
    mask = (rng.random((n_templ, n_res, 37)) > 0.3).astype(f32)
    cb = np.where(t_aatype == rc.restype_order["G"], rc.atom_order["CA"], rc.atom_order["CB"])
    one = {
        "aatype": aatype, "residue_index": np.arange(n_res), "seq_mask": np.ones(n_res, f32),
        "target_feat": np.eye(22, dtype=f32)[aatype],
        "msa_feat": rng.normal(size=(n_clust, n_res, 49)).astype(f32),
        "msa_mask": np.ones((n_clust, n_res), f32),
        "extra_msa": rng.integers(0, 23, (n_extra, n_res)).astype(np.int32),
        "extra_msa_mask": np.ones((n_extra, n_res), f32),
        "extra_has_deletion": (rng.random((n_extra, n_res)) > 0.8).astype(f32),
        "extra_deletion_value": rng.random((n_extra, n_res)).astype(f32),
        "template_aatype": t_aatype, "template_all_atom_positions": pos, "template_all_atom_masks": mask,
        "template_mask": np.ones(n_templ, f32),
        "template_pseudo_beta": np.take_along_axis(pos, cb[:, :, None, None], axis=2)[:, :, 0],
        "template_pseudo_beta_mask": np.take_along_axis(mask, cb[:, :, None], axis=2)[:, :, 0],
    }
    return {k: np.stack([v] * n_slices) for k, v in one.items()}


def param_bytes(depth: tuple[int, int, int], dtype_bytes: int = 4) -> int:
    """Bytes of model_1_ptm's parameters with ``depth`` = (Evoformer, extra-MSA, template) blocks."""
    counts = dict(zip((EVOFORMER_STACK, EXTRA_MSA_STACK, TEMPLATE_PAIR_STACK), depth, strict=True))
    total = 0
    for key, shape in manifest(PRESET).items():
        prefix = stacked_prefix(key)
        n = int(np.prod(shape[1:] if prefix is not None else shape))
        total += n * (counts[prefix] if prefix is not None else 1)
    return total * dtype_bytes


def _gib(x: float) -> str:
    return f"{x / 2**30:.2f}"


def measure(work: Path, n_res: int, p: int, depth: tuple[int, int, int], args) -> dict:
    """One fresh launch of P ranks on L = ``n_res``; the per-rank records plus what was run."""
    params = work / f"params_{PRESET}_{depth[0]}_{depth[1]}_{depth[2]}.npz"
    if not params.exists():
        save_npz_atomic(params, random_params(PRESET, *depth, seed=0))  # a cache: never half-written
    n_clust = args.n_seq - TORSION_ROWS
    features = work / f"features_{n_res}_{n_clust}_{args.n_extra}_{args.n_templ}_{args.num_recycle}.npz"
    if not features.exists():
        save_npz_atomic(features, synthetic_features(n_res, n_clust, args.n_extra, args.n_templ,
                                                     args.num_recycle + 1))
    logging.info("L=%d P=%d depth %s: starting", n_res, p, depth)
    start = time.perf_counter()
    ranks = spawn(_rank, p, str(params), str(features), str(work / "outputs.npz"), args.chunk_size,
                  args.num_recycle, timeout_s=args.timeout, in_process=False)
    logging.info("L=%d P=%d depth %s: %.0f s", n_res, p, depth, time.perf_counter() - start)
    return {"n_res": n_res, "p": p, "depth": depth, "n_seq": args.n_seq, "n_extra": args.n_extra,
            "n_templ": args.n_templ, "chunk_size": args.chunk_size, "num_recycle": args.num_recycle,
            "wall_s": time.perf_counter() - start, "ranks": ranks}


def report_row(rec: dict, full_weights: int, base_bytes: int = BASE_BYTES) -> str:
    """One table row: the worst rank's peak (and where), rank 0's, the full-model figure, the model."""
    depth, ranks = tuple(rec["depth"]), rec["ranks"]
    worst = max(ranks, key=lambda r: r["peak"])
    # the first stage (in time) that reached the rank's peak; later stages keep the memory glibc retains
    stage = next(k for k, v in worst["stage_peaks"].items() if v == worst["peak"])
    missing = full_weights - ranks[0]["param_bytes"]
    shape = TargetShape(rec["n_res"], rec["n_seq"], rec["n_extra"], rec["n_templ"], rec["num_recycle"] + 1)
    est = rank_memory(shape, rec["p"], chunk_size=rec["chunk_size"], weights_bytes=full_weights,
                      base_bytes=base_bytes)
    full = worst["peak"] + missing
    name, _ = est.peak_transient
    others = [r["peak"] for r in ranks[1:]]
    return (f"| {rec['n_res']} | {rec['p']} | {'/'.join(map(str, depth))} | {_gib(ranks[0]['rss_loaded'])} | "
            f"{_gib(ranks[0]['peak'])} | {_gib(max(others)) if others else '-'} | rank {worst['rank']}: "
            f"{stage} | {_gib(missing)} | **{_gib(full)}** | {_gib(est.peak)} ({name}) | "
            f"{est.peak / full:.2f} | {rec['wall_s']:.0f} |")


def stage_lines(rec: dict) -> list[str]:
    """Per rank: the stage that first reached the peak, and the three largest rises within a stage."""
    lines = []
    for r in rec["ranks"]:
        first = next(k for k, v in r["stage_peaks"].items() if v == r["peak"])
        rises = sorted(r["stage_rises"].items(), key=lambda kv: -kv[1])[:3]
        lines.append(f"    rank {r['rank']}: peak {_gib(r['peak'])} GiB first reached in '{first}'; "
                     "largest rises " + ", ".join(f"'{k}' +{_gib(v)}" for k, v in rises))
    return lines


HEADER = ("| L | P | blocks E/X/T | rank 0 RSS loaded (GiB) | rank 0 peak (GiB) | other ranks' peak (GiB) | "
          "peak set in | + missing weights (GiB) | full model per-rank peak (GiB) | model estimate (GiB) | "
          "model / measured | wall (s) |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[400])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--blocks", type=int, nargs=3, default=[1, 1, 1], metavar=("EVO", "EXTRA", "TEMPL"),
                        help="Evoformer, extra-MSA and template pair stack blocks (model_1_ptm: 48 4 2)")
    parser.add_argument("--n-seq", type=int, default=512, help="MSA rows incl. the 4 template torsion rows")
    parser.add_argument("--n-extra", type=int, default=5120)
    parser.add_argument("--n-templ", type=int, default=4)
    parser.add_argument("--chunk-size", type=int, default=4, help="DeepMind's default subbatch size is 4")
    parser.add_argument("--num-recycle", type=int, default=1)
    parser.add_argument("--depth-check", action="store_true",
                        help="also run model_1_ptm's full depth (48/4/2) and compare the peaks")
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument("--work-dir", type=Path, help="params and features are cached here")
    parser.add_argument("--json", type=Path, help="append the raw per-rank records (JSON lines) here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    full_weights = param_bytes(FULL_DEPTH)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="parallel_full_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    depths = [tuple(args.blocks)] + ([FULL_DEPTH] if args.depth_check else [])
    print(f"model_1_ptm weights {_gib(full_weights)} GiB ({full_weights // 4:,} float32 parameters); "
          f"N_seq {args.n_seq}, N_extra {args.n_extra}, {args.n_templ} templates, chunk size "
          f"{args.chunk_size}, {args.num_recycle} recycle(s)", flush=True)
    print(HEADER, flush=True)
    records = []
    for n_res in args.lengths:
        for p in args.ranks:
            for depth in depths:
                rec = measure(work, n_res, p, depth, args)
                records.append(rec)
                print(report_row(rec, full_weights), flush=True)
                print("\n".join(stage_lines(rec)), file=sys.stderr, flush=True)
                if args.json:
                    with args.json.open("a") as fh:
                        fh.write(json.dumps(rec) + "\n")
            if args.depth_check:
                reduced, full = records[-2], records[-1]
                d_peak = max(r["peak"] for r in full["ranks"]) - max(r["peak"] for r in reduced["ranks"])
                d_param = full["ranks"][0]["param_bytes"] - reduced["ranks"][0]["param_bytes"]
                print(f"depth check L={n_res} P={p}: peak(full) - peak(reduced) = {d_peak / 2**20:.1f} MiB, "
                      f"parameter bytes of the extra blocks {d_param / 2**20:.1f} MiB, "
                      f"difference {(d_peak - d_param) / 2**20:+.1f} MiB", flush=True)
    print(f"(psutil sees {psutil.virtual_memory().available / 2**30:.1f} GiB available now)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
