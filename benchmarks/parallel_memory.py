"""Per-rank memory and communication of one sharded Evoformer block at full width, P = 1, 2, 3.

For each length L and group size P this spawns P gloo ranks on loopback; each builds one full-width
Evoformer block (c_m 256, c_z 128, model_1_ptm's sizes, random weights), holds its shards of m
[N_seq, L, 256] and z [L, L, 128], and runs the block once. Each rank reports:

* peak RSS during the block (``ru_maxrss``), the RSS just before it, and the growth;
* bytes it handed to collectives, by collective (tallied by wrapping torch.distributed's functions in this
  script only), against :func:`alphafold.parallel.cost.evoformer_block_bytes_sent`;
* bytes its process wrote to sockets and files during the block (``/proc/self/io`` wchar: gloo's TCP
  traffic on loopback plus a little logging), the wire-level check of the tally;
* the memory model's estimate (:func:`alphafold.parallel.cost.rank_memory`, Evoformer terms only).

Example (the command recorded in docs/benchmarks.md):
    python benchmarks/parallel_memory.py --lengths 200 400 --ranks 1 2 3 --n-seq 512 --chunk-size 8
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import psutil
import torch
import torch.distributed as dist

from alphafold.model.config import BASE
from alphafold.model.evoformer import BlockSizes, EvoformerIteration
from alphafold.parallel import comm
from alphafold.parallel.cost import TargetShape, evoformer_block_bytes_sent, rank_memory
from alphafold.parallel.evoformer import evoformer_block
from alphafold.parallel.group import ShardGroup
from alphafold.parallel.launch import spawn

EVOFORMER_TERMS = ("triangle_attention", "triangle_multiplication", "pair_reshard", "pair_transition",
                   "msa_row_attention", "msa_column_attention", "msa_reshard", "msa_transition",
                   "outer_product_mean")


class _Tally:
    """Bytes this rank hands to each collective (what it sends, by the convention of cost.py)."""

    def __init__(self, group: ShardGroup):
        self.group = group
        self.sent: dict[str, int] = {}
        self._orig = {}

    def _add(self, key: str, nbytes: int) -> None:
        self.sent[key] = self.sent.get(key, 0) + nbytes

    def install(self) -> None:
        p, me = self.group.size, self.group.global_rank(self.group.rank)
        orig = self._orig = {name: getattr(dist, name) for name in ("all_gather", "all_to_all_single",
                                                                     "broadcast")}

        def all_gather(tensor_list, tensor, *a, **k):
            self._add("all_gather", tensor.numel() * tensor.element_size() * (p - 1))
            return orig["all_gather"](tensor_list, tensor, *a, **k)

        def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None, *a, **k):
            sizes = input_split_sizes or [input.numel() // p] * p
            self._add("all_to_all", (sum(sizes) - sizes[self.group.rank]) * input.element_size())
            return orig["all_to_all_single"](output, input, output_split_sizes, input_split_sizes, *a, **k)

        def broadcast(tensor, src=None, *a, **k):
            if src == me:
                self._add("broadcast", tensor.numel() * tensor.element_size() * (p - 1))
            return orig["broadcast"](tensor, src, *a, **k)

        dist.all_gather, dist.all_to_all_single, dist.broadcast = all_gather, all_to_all_single, broadcast

    def remove(self) -> None:
        for name, fn in self._orig.items():
            setattr(dist, name, fn)


def _wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def _rank(group: ShardGroup, n_res: int, n_seq: int, chunk_size: int | None) -> dict:
    torch.manual_seed(0)  # identical weights on every rank
    block = EvoformerIteration(BlockSizes.main(BASE.evoformer), is_extra_msa=False).eval()
    ev = BASE.evoformer
    s0, s1 = comm.local_range(n_seq, group)
    r0, r1 = comm.local_range(n_res, group)
    gen = torch.Generator().manual_seed(100 + group.rank)
    # only this rank's shards are ever allocated
    m = torch.randn(s1 - s0, n_res, ev.c_m, generator=gen)
    z = torch.randn(r1 - r0, n_res, ev.c_z, generator=gen)
    msa_mask, pair_mask = torch.ones(n_seq, n_res), torch.ones(n_res, n_res)
    tally = _Tally(group)
    if group.size > 1:
        dist.barrier(group=group.group)
    rss_before = psutil.Process().memory_info().rss
    wchar_before = _wchar()
    tally.install()
    start = time.perf_counter()
    with torch.no_grad():
        m, z = evoformer_block(block, m, z, msa_mask, pair_mask, group, chunk_size)
    seconds = time.perf_counter() - start
    tally.remove()
    wchar = _wchar() - wchar_before
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rank": group.rank, "rss_before": rss_before, "peak_rss": peak, "seconds": seconds,
            "sent": tally.sent, "wchar": wchar, "z_shard": tuple(z.shape), "m_shard": tuple(m.shape)}


def _gib(x: float) -> str:
    return f"{x / 2**30:.2f}"


def _mib(x: float) -> str:
    return f"{x / 2**20:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[200, 400])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--n-seq", type=int, default=512)
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--json", type=Path, help="also write the raw per-rank records here")
    args = parser.parse_args(argv)
    records = []
    print("| L | P | shards m+z, model (GiB) | RSS before block (GiB) | peak RSS (GiB) | growth in block "
          "(GiB) | largest transient, model (GiB) | sent, tallied (MiB) | sent, analytic (MiB) | "
          "wchar (MiB) | block time (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n_res in args.lengths:
        for p in args.ranks:
            results = spawn(_rank, p, n_res, args.n_seq, args.chunk_size, timeout_s=3600,
                            num_threads=args.threads, in_process=False)
            r0 = results[0]
            shape = TargetShape(n_res, n_seq=args.n_seq, n_extra=1)
            est = rank_memory(shape, p, chunk_size=args.chunk_size)
            evo_resident = est.resident - 4 * (-(-1 // p)) * n_res * BASE.extra_msa.c_e
            name = max(EVOFORMER_TERMS, key=est.transients.get)
            evo_transient = est.transients[name]
            analytic = sum(evoformer_block_bytes_sent(shape, p).values())
            tallied = sum(r0["sent"].values())
            print(f"| {n_res} | {p} | {_gib(evo_resident)} | {_gib(r0['rss_before'])} | "
                  f"{_gib(r0['peak_rss'])} | {_gib(max(r['peak_rss'] - r['rss_before'] for r in results))} | "
                  f"{_gib(evo_transient)} ({name}) | "
                  f"{_mib(tallied)} | {_mib(analytic)} | {_mib(r0['wchar'])} | "
                  f"{max(r['seconds'] for r in results):.1f} |", flush=True)
            records.append({"n_res": n_res, "p": p, "n_seq": args.n_seq, "chunk_size": args.chunk_size,
                            "ranks": results, "model_resident": evo_resident,
                            "model_transient": [name, evo_transient],
                            "analytic_sent_rank0": evoformer_block_bytes_sent(shape, p)})
    if args.json:
        args.json.write_text(json.dumps(records, indent=1, default=list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
