"""Structure module peak memory and time: our IPA temporaries vs DeepMind's layout.

DeepMind's IPA materialises the query-key point differences as [H, L, L, P_qk] tensors per coordinate before
summing, and attends to the pair representation with an einsum; ours accumulates one point at a time (only
[H, L, L] temporaries, ``InvariantPointAttention._point_logits``) and attends to z with a matmul batched over
query rows that reads z in place (``_attend_pair``). Both contenders run the same full-size structure
module (DeepMind's sizes, random weights), each in a fresh subprocess, on the same inputs; the script
reports peak RSS above the pre-forward high-water mark, wall time, the ratios, and the largest coordinate
difference between the two.

    python benchmarks/structure_module.py --lengths 128 256 --num-layers 2
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time

log = logging.getLogger("benchmarks.structure_module")


def _deepmind_point_logits(self, q_pts, k_pts, gamma):
    """DeepMind's layout: per coordinate [H, L, L, P_qk] squared differences, summed, then weighted."""
    import torch

    q_h, k_h = q_pts.transpose(0, 1), k_pts.transpose(0, 1)
    d2 = sum(torch.square(q_h[:, :, None, :, x] - k_h[:, None, :, :, x]) for x in range(3))
    return -0.5 * torch.sum(gamma[:, None, None, None] * d2, dim=-1)


def _deepmind_attend_pair(a, z):
    """DeepMind's einsum over the pair representation."""
    import torch

    return torch.einsum("hij,ijc->ihc", a, z)


def run_one(variant: str, length: int, num_layers: int, seed: int) -> dict:
    """Run the structure module once in this process; returns peak-RSS delta (MB), time and CA coords."""
    import torch

    from alphafold.model.config import StructureModuleConfig
    from alphafold.model.ipa import InvariantPointAttention
    from alphafold.model.structure_module import StructureModule

    if variant == "deepmind_layout":
        InvariantPointAttention._point_logits = _deepmind_point_logits
        InvariantPointAttention._attend_pair = staticmethod(_deepmind_attend_pair)
    torch.manual_seed(seed)
    sm = StructureModule(StructureModuleConfig(num_layers=num_layers))
    with torch.no_grad():
        for p in sm.parameters():
            p.add_(0.02 * torch.randn_like(p))
    s = torch.randn(length, 384)
    z = torch.randn(length, length, 128)
    aatype = torch.arange(length) % 20
    mask = torch.ones(length)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with torch.no_grad():
        out = sm(s, z, aatype, mask)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_mb": (after - before) / 1024, "seconds": seconds,
            "ca": out["final_atom_positions"][:, 1].tolist()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--num-layers", type=int, default=2, help="layers share weights; memory is per layer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], int(args.child[1]), args.num_layers, args.seed)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    for length in args.lengths:
        res = {}
        for variant in ("ours", "deepmind_layout"):
            log.info("L=%d %s ...", length, variant)
            cmd = [sys.executable, __file__, "--child", variant, str(length),
                   "--num-layers", str(args.num_layers), "--seed", str(args.seed)]
            proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
            res[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
        import numpy as np

        diff = float(np.abs(np.array(res["ours"]["ca"]) - np.array(res["deepmind_layout"]["ca"])).max())
        rows.append((length, res["ours"], res["deepmind_layout"], diff))
    print("| L | ours peak MB | DeepMind-layout peak MB | peak ratio | ours s | DeepMind-layout s "
          "| time ratio | max CA diff Å |")
    print("|---|---|---|---|---|---|---|---|")
    for length, ours, dm, diff in rows:
        print(f"| {length} | {ours['peak_mb']:.0f} | {dm['peak_mb']:.0f} "
              f"| {ours['peak_mb'] / dm['peak_mb']:.2f} | {ours['seconds']:.1f} | {dm['seconds']:.1f} "
              f"| {ours['seconds'] / dm['seconds']:.2f} | {diff:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
