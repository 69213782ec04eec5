"""One-off: the real MSA of the serine-protease query (1PPG chain E, human leukocyte elastase).

Searches the 20,000 real UniProt sequences of Debian's mmseqs2-examples with one jackhmmer iteration
(pyhmmer, in the project venv, not the reference venv; one iteration keeps the profile's match columns
equal to the query's residues) and writes the best hits as A3M (query first, insertions lower case).
Run once; its output `1ppg_E_jackhmmer.a3m` is committed so the harness never searches:
    /work/main/.venv/bin/python tests/reference/inputs/search_msa.py
"""

import gzip
import io
import sys
from pathlib import Path

import pyhmmer

HERE = Path(__file__).resolve().parent
DB = Path("/usr/share/doc/mmseqs2/example-data/DB.fasta.gz")
MAX_HITS = 48


def main() -> int:
    alphabet = pyhmmer.easel.Alphabet.amino()
    lines = (HERE / "1ppg_E.fasta").read_text().splitlines()
    name, seq = lines[0][1:].split()[0], "".join(lines[1:])
    query = pyhmmer.easel.TextSequence(name=name.encode(), sequence=seq).digitize(alphabet)
    with gzip.open(DB, "rb") as fh:
        with pyhmmer.easel.SequenceFile(io.BytesIO(fh.read()), digital=True, alphabet=alphabet) as sf:
            targets = sf.read_block()
    result = next(pyhmmer.hmmer.jackhmmer([query], targets, max_iterations=1, cpus=1))
    if result.hmm.M != len(seq):
        raise SystemExit(f"profile has {result.hmm.M} match states, query has {len(seq)} residues")
    out = [f">{name}", seq]
    kept = 0
    for hit in result.hits:
        if not hit.included or kept >= MAX_HITS:
            continue
        for dom in hit.domains.included:
            ali = dom.alignment
            # hmm_sequence: consensus letters ('.' at insert states); target_sequence: aligned residues.
            row = []
            for h, t in zip(ali.hmm_sequence, ali.target_sequence, strict=True):
                if h == ".":
                    row.append(t.lower())
                else:
                    row.append("-" if t in "-." else t.upper())
            # Pad to the full query length: the domain covers query positions hmm_from..hmm_to (1-based).
            a3m = "-" * (ali.hmm_from - 1) + "".join(row) + "-" * (len(seq) - ali.hmm_to)
            out += [f">{hit.name}/{ali.target_from}-{ali.target_to}", a3m]
            kept += 1
            break
    (HERE / "1ppg_E_jackhmmer.a3m").write_text("\n".join(out) + "\n")
    print(f"{len(result.hits)} hits, {kept} kept", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
