"""Search time per query: pyhmmer's in-process jackhmmer against HMMER's jackhmmer binary, side by side.

Same database, same queries, AF2's flags (``-E/--incE 1e-4 --F1 5e-4 --F2 5e-5 --F3 5e-7``), same thread
count, alternating the two tools per repeat; reports the median wall time of each and their ratio, and
checks that both return the same alignment. pyhmmer keeps the database in memory across queries (as
``alphafold features`` does in one process); its one-off load time is reported separately. The binary
reads the (page-cached) file every time, as AF2 runs it.

    python benchmarks/msa_search.py                           # 20k UniProt set, the 4 test queries
    python benchmarks/msa_search.py --iterations 3 --repeats 5 --cpus 2 --json out.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alphafold.data import msa_search, parsers  # noqa: E402

DEFAULT_DB = "/usr/share/doc/mmseqs2/example-data/DB.fasta.gz"
DEFAULT_QUERIES = ROOT / "tests" / "data" / "files" / "queries.fasta"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default=DEFAULT_DB, help="FASTA (optionally .gz) database")
    parser.add_argument("--queries", default=str(DEFAULT_QUERIES))
    parser.add_argument("--iterations", type=int, default=1, help="jackhmmer -N (AF2: 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if shutil.which("jackhmmer") is None:
        sys.exit("jackhmmer binary not found (Debian package hmmer)")

    with tempfile.TemporaryDirectory(prefix="bench-msa-") as tmp:
        db = Path(args.database)
        if db.suffix == ".gz":
            plain = Path(tmp) / db.stem
            with gzip.open(db, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            db = plain
        queries = [
            (parsers.record_name(h), s) for h, s in parsers.parse_fasta(Path(args.queries).read_text())
        ]
        settings = msa_search.JackhmmerSettings(iterations=args.iterations)
        ours = msa_search.JackhmmerSearch(db, "db", settings, cpus=args.cpus)
        theirs = msa_search.JackhmmerBinarySearch(db, "db", settings, cpus=args.cpus)
        start = time.perf_counter()
        ours.preload()
        load_seconds = time.perf_counter() - start

        rows = []
        for name, seq in queries:
            times = {"pyhmmer": [], "binary": []}
            for _ in range(args.repeats):
                for label, tool in (("pyhmmer", ours), ("binary", theirs)):
                    t0 = time.perf_counter()
                    result = tool.search(name, seq)
                    times[label].append(time.perf_counter() - t0)
                    if label == "pyhmmer":
                        a = result
                    else:
                        b = result
            same = a.parse().sequences == b.parse().sequences
            py, bi = statistics.median(times["pyhmmer"]), statistics.median(times["binary"])
            rows.append(
                {
                    "query": name,
                    "length": len(seq),
                    "hits": a.num_hits,
                    "binary_hits": b.num_hits,
                    "same_alignment": same,
                    "pyhmmer_s": py,
                    "binary_s": bi,
                    "ratio": bi / py,
                }
            )

    info = {
        "database": args.database,
        "iterations": args.iterations,
        "repeats": args.repeats,
        "cpus": args.cpus,
        "pyhmmer_db_load_s": load_seconds,
        "pyhmmer": ours.version,
        "binary": theirs.version,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "rows": rows,
    }
    print(
        f"database {args.database}; jackhmmer -N {args.iterations}; --cpu {args.cpus}; median of "
        f"{args.repeats}; {info['pyhmmer']} vs {info['binary']}; pyhmmer database load {load_seconds:.2f} s"
    )
    print()
    print("| query | length | hits (pyhmmer / binary) | same MSA | pyhmmer s | binary s | binary / pyhmmer |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['query']} | {r['length']} | {r['hits']} / {r['binary_hits']} | {r['same_alignment']} | "
            f"{r['pyhmmer_s']:.3f} | {r['binary_s']:.3f} | {r['ratio']:.2f} |"
        )
    total_py = sum(r["pyhmmer_s"] for r in rows)
    total_bi = sum(r["binary_s"] for r in rows)
    print(f"| all | | | | {total_py:.3f} | {total_bi:.3f} | {total_bi / total_py:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=1) + "\n")
    return 0 if all(r["same_alignment"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
