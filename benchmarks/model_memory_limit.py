"""The longest L the full model_1_ptm completes within a memory budget: traced peak, validated by RSS.

A real 48-block pass at L ~ 3000 takes hours on a small CPU node, so the length limit is not found by
running the network at every candidate length. Instead:

1. ``--track``: the real code path (``Predictor`` options, chunk size "auto" under the budget, ``recycle``
   for one pass, as ``Predictor.predict`` runs it) under ``FakeTensorMode`` (shapes, no data) and
   :class:`alphafold.runtime.memory_trace.TensorPeakTracker`: the peak of live tensor bytes created during
   the pass, at any L, in seconds.
2. ``--measure``: real passes, each in a fresh subprocess: process RSS just before the pass (interpreter,
   libraries, weights, features) and the peak RSS during it (``VmHWM`` after resetting it through
   ``/proc/self/clear_refs``). Growth = peak - before, against the traced peak of the same point.
3. ``--bisect-gb``: the longest L whose predicted peak RSS (RSS before the pass, measured, plus the traced
   peak times the largest growth/traced ratio measured) stays within the budget.

Same model and features as benchmarks/model_speed_memory.py: full-size model_1_ptm, random parameters in
DeepMind's layout (block counts reducible: ``evo:extra:template`` per point), 8 MSA clusters + 8 extra
rows, 4 template slots of which 1 is present, one pass (num_recycle 0), float32, 2 torch threads.

    python benchmarks/model_memory_limit.py --measure 100:48:4:2 800:1:1:2 --track 100:48:4:2 800:1:1:2
    python benchmarks/model_memory_limit.py --bisect-gb 20 --base-mb 1000 --ratio 1.1

GB here is 10^9 bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_speed_memory import synthetic_features  # noqa: E402

PRESET = "model_1_ptm"

REAL = textwrap.dedent("""
    import gc, json, sys, time
    import numpy as np, torch
    from alphafold.model.options import RuntimeOptions
    from alphafold.model.predictor import Predictor

    def vm(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    params, features, budget = sys.argv[1], sys.argv[2], float(sys.argv[3])
    torch.set_num_threads(2)
    options = RuntimeOptions(chunk_size="auto", memory_budget_gb=budget)
    p = Predictor.from_params_file(params, preset="model_1_ptm", options=options)
    f = dict(np.load(features))
    chunk = p._chunk_size({k: v[0] for k, v in p._tensors(f).items()})
    gc.collect()
    before = vm("VmRSS")
    # reset the peak RSS (VmHWM) to the current RSS: the peak below is the pass's own
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    start = time.perf_counter()
    out = p.predict(f, num_recycle=0)
    seconds = time.perf_counter() - start
    peak = vm("VmHWM")
    print(json.dumps({"rss_before": before, "rss_peak": peak, "seconds": seconds, "chunk_size": chunk,
                      "plddt_finite": bool(np.isfinite(out["plddt"]).all())}))
""")


@dataclasses.dataclass(frozen=True)
class Point:
    length: int
    evoformer_blocks: int = 48
    extra_msa_blocks: int = 4
    template_blocks: int = 2

    @classmethod
    def parse(cls, text: str) -> Point:
        """``L`` or ``L:evo:extra:template``."""
        parts = [int(x) for x in text.split(":")]
        return cls(*parts)

    @property
    def depth(self) -> str:
        return f"{self.evoformer_blocks}/{self.extra_msa_blocks}/{self.template_blocks}"


def write_params(path: Path, point: Point, seed: int = 0) -> None:
    from alphafold.params.random_params import random_params

    params = random_params(
        PRESET, point.evoformer_blocks, point.extra_msa_blocks, point.template_blocks, seed=seed
    )
    np.savez(path, **params)


class MemoryCgroup:
    """A fresh memory cgroup (v1 or v2) under this process's own, with a hard limit: a process moved into
    it is OOM-killed when its memory (RSS and the page cache it charges, which the kernel reclaims first)
    would pass the limit. So "completes within G GB" is enforced by the kernel, not inferred."""

    def __init__(self, limit_bytes: int):
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        v1 = [x.split(":", 2)[2] for x in lines if x.split(":", 2)[1] == "memory"]
        if v1:
            self.dir, self.limit_file, self.peak_file = Path("/sys/fs/cgroup/memory" + v1[0]), \
                "memory.limit_in_bytes", "memory.max_usage_in_bytes"
        else:
            own = [x.split(":", 2)[2] for x in lines if x.startswith("0::")][0]
            self.dir, self.limit_file, self.peak_file = Path("/sys/fs/cgroup" + own), "memory.max", \
                "memory.peak"
        self.dir = self.dir / f"af_limit_{os.getpid()}"
        try:
            self.dir.mkdir()
            (self.dir / self.limit_file).write_text(str(limit_bytes))
        except OSError as exc:
            raise SystemExit(f"--limit-gb: cannot make a memory cgroup at {self.dir}: {exc}") from exc

    def enter(self) -> None:
        """In the child before exec: join the cgroup."""
        (self.dir / "cgroup.procs").write_text(str(os.getpid()))

    def peak(self) -> int:
        return int((self.dir / self.peak_file).read_text())

    def remove(self) -> None:
        self.dir.rmdir()


def measure(point: Point, budget_gb: float, work: Path, niceness: int = 10,
            limit_gb: float | None = None) -> dict:
    """One real pass in a fresh subprocess (niced): RSS before, peak RSS during, seconds; with
    ``limit_gb``, inside a memory cgroup limited to that (its peak usage reported; killed when over)."""
    params, features = work / f"params_{PRESET}.npz", work / "features.npz"
    write_params(params, point)
    np.savez(features, **synthetic_features(point.length, 0))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = ["nice", "-n", str(niceness), sys.executable, "-c", REAL]
    cmd += [str(params), str(features), str(budget_gb)]
    cgroup = MemoryCgroup(int(limit_gb * 1e9)) if limit_gb else None
    start = time.time()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              preexec_fn=cgroup.enter if cgroup else None)
        limited = {"limit_gb": limit_gb, "cgroup_peak": cgroup.peak()} if cgroup else {}
    finally:
        if cgroup:
            cgroup.remove()
    params.unlink()
    features.unlink()
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return {"error": tail[0], "returncode": proc.returncode, "wall": time.time() - start, **limited}
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), **limited}


def _meta_pass(model, tensors, chunk):
    """The pass on the meta device (shapes only, ~3x faster to trace than FakeTensorMode; seen to peak
    1 MiB above the fake trace at L = 400 and 800). ``torch.autocast`` knows no meta device: the
    structure module's and heads' ``autocast(enabled=False)`` become no-ops for this trace only."""
    import contextlib

    import torch

    from alphafold.model.model import recycle
    from alphafold.runtime.memory_trace import TensorPeakTracker

    saved = torch.autocast
    torch.autocast = lambda *args, **kwargs: contextlib.nullcontext()
    try:
        meta = {k: v.to("meta") for k, v in tensors.items()}
        with torch.inference_mode(), TensorPeakTracker(model, keep=64) as tracker:
            out, _ = recycle(model, meta, 0, chunk)
            del out
    finally:
        torch.autocast = saved
    return tracker.report


def track(point: Point, budget_gb: float, meta: bool = False) -> dict:
    """The pass of :func:`measure` under FakeTensorMode (or on the meta device) and the peak tracker."""
    import torch

    from alphafold.model.model import AlphaFold
    from alphafold.model.options import RuntimeOptions
    from alphafold.model.predictor import Predictor
    from alphafold.params.presets import get_preset
    from alphafold.runtime.memory_trace import empty_model, tensor_bytes, trace_pass

    preset = get_preset(PRESET)
    c = preset.model
    config = dataclasses.replace(
        c,
        evoformer=dataclasses.replace(c.evoformer, num_blocks=point.evoformer_blocks),
        extra_msa=dataclasses.replace(c.extra_msa, num_blocks=point.extra_msa_blocks),
        template=dataclasses.replace(c.template, num_blocks=point.template_blocks),
    )
    options = RuntimeOptions(chunk_size="auto", memory_budget_gb=budget_gb)
    start = time.perf_counter()
    if meta:
        with torch.device("meta"):
            model = AlphaFold(config).eval()
    else:
        model = empty_model(config)
    predictor = Predictor(model, preset, options, params_sha256="traced", untrained=True)
    real = predictor._tensors(synthetic_features(point.length, 0))
    chunk = predictor._chunk_size({k: v[0] for k, v in real.items()})
    report = _meta_pass(model, real, chunk) if meta else trace_pass(model, real, chunk)
    return {
        "traced_peak": report.peak_bytes,
        "param_bytes": tensor_bytes(model.state_dict()),
        "input_bytes": tensor_bytes(real),
        "chunk_size": chunk,
        "peak_op": report.peak_op,
        "peak_module": report.peak_module,
        "live_at_peak": [dataclasses.asdict(t) for t in report.live_at_peak],
        "module_peaks": report.module_peaks,
        "trace_seconds": time.perf_counter() - start,
    }


def gb(x: float) -> str:
    return f"{x / 1e9:.2f}"


def longest_within(budget_gb: float, base_bytes: float, ratio: float, lo: int, hi: int) -> tuple[int, dict]:
    """Bisection on the traced prediction: base RSS + ratio * traced peak <= budget (full depth)."""

    def predicted(length: int) -> tuple[float, dict]:
        t = track(Point(length), budget_gb, meta=True)
        value = base_bytes + ratio * t["traced_peak"]
        print(f"  L={length}: traced {gb(t['traced_peak'])} GB -> predicted RSS {gb(value)} GB "
              f"(chunk {t['chunk_size']}, peak in {t['peak_module']} at {t['peak_op']})", flush=True)
        return value, t

    limit = budget_gb * 1e9
    if predicted(lo)[0] > limit:
        raise SystemExit(f"L={lo} already exceeds {budget_gb} GB")
    while predicted(hi)[0] <= limit:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if predicted(mid)[0] <= limit else (lo, mid)
    return lo, predicted(lo)[1]


def auto_chunk(length: int, budget_gb: float, num_seq: int = 12, heads: int = 8) -> int | None:
    """The chunk size "auto" picks under the budget (alphafold.model.chunking.resolve_chunk_size)."""
    from alphafold.model.chunking import AUTO_MEMORY_FRACTION, MIN_AUTO_CHUNK

    per_row = 2 * heads * max(length * length, num_seq * num_seq) * 4
    rows = int(AUTO_MEMORY_FRACTION * budget_gb * 1e9 // per_row)
    return None if rows >= max(length, num_seq) else max(MIN_AUTO_CHUNK, rows)


def _basis(length: int, budget_gb: float) -> np.ndarray:
    """Sizes a module's peak is made of: pair tensors (L^2), attention logits/bias of one chunk of rows
    (chunk x L^2), per-chunk activations (chunk x L). (Under "auto", chunk x L^2 is nearly constant, so
    no separate constant term.)"""
    chunk = auto_chunk(length, budget_gb) or length
    return np.array([length**2, chunk * length**2, chunk * length], dtype=np.float64)


def fit_module_peaks(records: list[dict], budget_gb: float) -> dict[str, np.ndarray]:
    """Per module (block index dropped), least-squares coefficients of its traced peak on :func:`_basis`."""
    import re

    peaks: dict[str, dict[int, float]] = {}
    for r in records:
        for name, value in r["module_peaks"].items():
            key = re.sub(r"\.\d+", "", name)
            peaks.setdefault(key, {})
            peaks[key][r["length"]] = max(peaks[key].get(r["length"], 0), value)
    lengths = sorted({r["length"] for r in records})
    coeffs = {}
    for key, by_length in peaks.items():
        if set(by_length) != set(lengths):
            continue
        a = np.stack([_basis(length, budget_gb) for length in lengths])
        coeffs[key] = np.linalg.lstsq(a, np.array([by_length[x] for x in lengths]), rcond=None)[0]
    return coeffs


def extrapolated_peak(coeffs: dict[str, np.ndarray], length: int, budget_gb: float) -> tuple[float, str]:
    """The largest fitted module peak at ``length`` and its module."""
    basis = _basis(length, budget_gb)
    return max((float(c @ basis), key) for key, c in coeffs.items())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--measure", nargs="*", default=[], help="points L[:evo:extra:template] to run")
    parser.add_argument("--track", nargs="*", default=[], help="points to trace (no compute)")
    parser.add_argument("--budget-gb", type=float, default=20.0,
                        help="memory budget 'auto' chunking plans with (default 20)")
    parser.add_argument("--bisect-gb", type=float, default=None, help="find the longest L within this")
    parser.add_argument("--base-mb", type=float, default=None,
                        help="RSS before the pass at full depth (MB, measured by --measure)")
    parser.add_argument("--ratio", type=float, default=1.0,
                        help="largest measured growth / traced peak, applied to the trace")
    parser.add_argument("--fit", type=Path, nargs="*", default=[],
                        help="JSON lines of --track results (chunked lengths) to extrapolate from")
    parser.add_argument("--report-lengths", type=int, nargs="*", default=[])
    parser.add_argument("--meta", action="store_true", help="trace on the meta device (faster)")
    parser.add_argument("--start", type=int, default=1024)
    parser.add_argument("--nice", type=int, default=10, help="niceness of the measured subprocesses")
    parser.add_argument("--limit-gb", type=float, default=None,
                        help="run each measured pass in a memory cgroup with this hard limit (GB)")
    parser.add_argument("--json", type=Path, default=None, help="append every result here (JSON lines)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    def record(kind: str, point: Point, result: dict) -> None:
        if args.json:
            with args.json.open("a") as fh:
                fh.write(json.dumps({"kind": kind, **dataclasses.asdict(point), **result}) + "\n")

    for text in args.track:
        point = Point.parse(text)
        t = track(point, args.budget_gb, args.meta)
        record("track", point, t)
        top = ", ".join(f"{x['op']}@{x['module']} {list(x['shape'])} {gb(x['nbytes'])}"
                        for x in t["live_at_peak"][:6])
        print(f"track L={point.length} blocks {point.depth}: traced peak {gb(t['traced_peak'])} GB "
              f"(params {gb(t['param_bytes'])} GB, chunk {t['chunk_size']}, at {t['peak_op']} in "
              f"{t['peak_module']}; {t['trace_seconds']:.1f} s)\n  largest live: {top}", flush=True)

    if args.measure:
        with tempfile.TemporaryDirectory() as tmp:
            for text in args.measure:
                point = Point.parse(text)
                m = measure(point, args.budget_gb, Path(tmp), args.nice, args.limit_gb)
                record("measure", point, m)
                if "error" in m:
                    print(f"measure L={point.length} blocks {point.depth}: {m}", flush=True)
                    continue
                growth = m["rss_peak"] - m["rss_before"]
                print(f"measure L={point.length} blocks {point.depth}: RSS before {gb(m['rss_before'])} "
                      f"GB, peak {gb(m['rss_peak'])} GB, growth {gb(growth)} GB, chunk {m['chunk_size']}, "
                      f"{m['seconds']:.0f} s" + (f", cgroup peak {gb(m['cgroup_peak'])} GB within a "
                                                f"{m['limit_gb']:g} GB limit" if "limit_gb" in m else ""),
                      flush=True)

    if args.fit:
        records = [json.loads(line) for path in args.fit for line in path.read_text().splitlines()]
        records = [r for r in records if r.get("kind", "track") == "track" and r.get("chunk_size", 1)]
        records = sorted(records, key=lambda r: r["length"])
        largest = records[-1]
        held_out = fit_module_peaks(records[:-1], args.budget_gb)
        value, module = extrapolated_peak(held_out, largest["length"], args.budget_gb)
        print(f"fit on L={[r['length'] for r in records[:-1]]}, predicts L={largest['length']}: "
              f"{gb(value)} GB in {module}; traced {gb(largest['traced_peak'])} GB")
        coeffs = fit_module_peaks(records, args.budget_gb)
        base, limit = args.base_mb * 1e6, (args.bisect_gb or args.budget_gb) * 1e9
        lo, hi = largest["length"], 20000
        while hi - lo > 1:
            mid = (lo + hi) // 2
            fits = base + args.ratio * extrapolated_peak(coeffs, mid, args.budget_gb)[0] <= limit
            lo, hi = (mid, hi) if fits else (lo, mid)
        for length in sorted({lo, lo + 1, *args.report_lengths}):
            value, module = extrapolated_peak(coeffs, length, args.budget_gb)
            print(f"  L={length}: chunk {auto_chunk(length, args.budget_gb)}, traced peak (extrapolated) "
                  f"{gb(value)} GB in {module}, predicted RSS {gb(base + args.ratio * value)} GB")
        print(f"longest L within {limit / 1e9:g} GB (extrapolated from traces): {lo}")
        return 0

    if args.bisect_gb:
        if args.base_mb is None:
            parser.error("--bisect-gb needs --base-mb (RSS before the pass, from --measure)")
        longest, t = longest_within(args.bisect_gb, args.base_mb * 1e6, args.ratio, args.start // 2,
                                    args.start)
        record("bisect", Point(longest), {**t, "budget_gb": args.bisect_gb, "ratio": args.ratio})
        print(f"longest L within {args.bisect_gb} GB (predicted): {longest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
