"""Campaign inputs: read targets, validate them, sanitise names and deduplicate by sequence hash.

Three input kinds are accepted (the config key ``targets``):

- a FASTA file (``.gz`` allowed): one target per record, named by the first word of its header;
- a directory of ``.a3m`` files: one target per file, the query is the first sequence, the name is the
  file's stem; the alignment is used instead of an MSA search;
- a sample sheet (``.tsv`` or ``.csv``) with a header row and the columns ``name`` and either
  ``sequence`` or ``fasta`` (a path; its single record), and optionally ``a3m`` (a path).

A target's identity is the hash of its sequence (:func:`alphafold.common.hashing.sequence_hash`): two records
with the same sequence are one target with two names. Names are sanitised before they touch a path (no ``/``,
no ``..``, no control characters); two different sequences whose names sanitise to the same string are an
error, never an overwrite.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alphafold.common.hashing import sequence_hash
from alphafold.errors import UserError

# The 20 standard amino acids, X (unknown) and the ambiguity/rare codes AF2 maps to X (B, Z, U, O, J).
VALID_RESIDUES = frozenset("ACDEFGHIKLMNPQRSTVWYXBZUOJ")
_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_LENGTH = 80


@dataclass(frozen=True)
class Target:
    """One unique sequence of the campaign, with every name it was given."""

    key: str  # sequence hash: the campaign-wide identity
    sequence: str
    names: tuple[str, ...]
    a3m: str | None = None  # a user alignment to use instead of an MSA search

    @property
    def length(self) -> int:
        return len(self.sequence)

    @property
    def name(self) -> str:
        return self.names[0]


@dataclass
class _Record:
    name: str
    sequence: str
    source: str
    a3m: str | None = None
    raw_name: str = field(default="")


def sanitise_name(raw: str) -> str:
    """A file-system-safe target name: letters, digits, ``._-`` (runs of others become one ``_``), no ``..``,
    no leading ``.`` or ``-``, at most 80 characters."""
    name = re.sub(r"\.\.+", "_", raw.strip())  # no '..' anywhere
    name = re.sub(r"_+", "_", _NAME_BAD.sub("_", name)).strip("._-")  # no leading '.' or '-'
    return name[:MAX_NAME_LENGTH] or "unnamed"


def clean_sequence(seq: str, where: str, record: str) -> str:
    """Upper-case, strip whitespace and one trailing stop ``*``; reject empty or invalid sequences."""
    s = "".join(seq.split()).upper()
    if s.endswith("*"):
        s = s[:-1]
    if not s:
        raise UserError(where, "sequence is empty", record=record)
    bad = sorted(set(s) - VALID_RESIDUES)
    if bad:
        pos = min(s.index(c) for c in bad) + 1
        raise UserError(where, f"invalid residue(s) {''.join(bad)!r} (first at position {pos}); "
                        "expected one-letter amino-acid codes", record=record)
    return s


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt")
    return open(path)


def iter_fasta(path: str | Path) -> Iterator[tuple[str, str]]:
    """(header, sequence) pairs of a FASTA file; a file without any ``>`` record is an error."""
    path = Path(path)
    header: str | None = None
    chunks: list[str] = []
    seen_any = False
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if line.startswith(">"):
                if header is not None:
                    yield header, "".join(chunks)
                header, chunks, seen_any = line[1:].strip(), [], True
            elif line.strip():
                if header is None:
                    raise UserError(str(path), f"line {lineno}: sequence data before the first '>' header")
                chunks.append(line.strip())
    if header is not None:
        yield header, "".join(chunks)
    if not seen_any:
        raise UserError(str(path), "no FASTA records (expected lines starting with '>')")


def _fasta_records(path: Path) -> list[_Record]:
    records = []
    for header, seq in iter_fasta(path):
        raw = header.split()[0] if header.split() else ""
        if not raw:
            raise UserError(str(path), f"record {len(records) + 1} has an empty header")
        seq = clean_sequence(seq, str(path), raw)
        records.append(_Record(sanitise_name(raw), seq, str(path), raw_name=raw))
    return records


def _a3m_query(path: Path) -> tuple[str, str]:
    """The first (query) sequence of an A3M file, with insertions (lower case) and gaps removed."""
    for header, seq in iter_fasta(path):
        query = re.sub(r"[a-z.]", "", seq).replace("-", "")
        return header, query
    raise UserError(str(path), "no sequences")  # unreachable: iter_fasta raises first


def _a3m_records(directory: Path) -> list[_Record]:
    files = sorted(p for p in directory.iterdir() if p.suffix == ".a3m")
    if not files:
        raise UserError(str(directory), "directory holds no .a3m files")
    records = []
    for f in files:
        header, query = _a3m_query(f)
        records.append(_Record(sanitise_name(f.stem), clean_sequence(query, str(f), header or f.stem),
                               str(f), a3m=str(f.resolve()), raw_name=f.stem))
    return records


def _sheet_records(path: Path) -> list[_Record]:
    dialect = "excel-tab" if path.suffix in (".tsv", ".tab") else "excel"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, dialect=dialect))
    if not rows:
        raise UserError(str(path), "sample sheet has no rows (expected a header and one row per target)")
    cols = set(rows[0])
    if "name" not in cols or not ({"sequence", "fasta"} & cols):
        raise UserError(str(path), "sample sheet needs columns 'name' and 'sequence' or 'fasta'; "
                        f"has {sorted(cols)}")
    records = []
    for i, row in enumerate(rows, 2):
        raw = (row.get("name") or "").strip()
        if not raw:
            raise UserError(str(path), f"line {i}: empty name")
        if (row.get("sequence") or "").strip():
            seq = row["sequence"]
        elif (row.get("fasta") or "").strip():
            fasta = (path.parent / row["fasta"].strip())
            if not fasta.is_file():
                raise UserError(str(path), f"line {i}: FASTA file {fasta} does not exist", record=raw)
            recs = list(iter_fasta(fasta))
            if len(recs) != 1:
                raise UserError(str(fasta), f"expected exactly one record for sample {raw!r}, "
                                f"found {len(recs)}")
            seq = recs[0][1]
        else:
            raise UserError(str(path), f"line {i}: neither 'sequence' nor 'fasta' given", record=raw)
        a3m = (row.get("a3m") or "").strip() or None
        if a3m:
            a3m_path = (path.parent / a3m).resolve()
            if not a3m_path.is_file():
                raise UserError(str(path), f"line {i}: A3M file {a3m_path} does not exist", record=raw)
            a3m = str(a3m_path)
        records.append(_Record(sanitise_name(raw), clean_sequence(seq, str(path), raw), str(path), a3m, raw))
    return records


def read_records(path: str | Path) -> list[_Record]:
    path = Path(path)
    if not path.exists():
        raise UserError(str(path), "targets input does not exist")
    if path.is_dir():
        return _a3m_records(path)
    if path.suffix in (".tsv", ".csv", ".tab"):
        return _sheet_records(path)
    return _fasta_records(path)


def read_targets(path: str | Path, max_length: int | None = None) -> list[Target]:
    """Unique targets of the input, in order of first appearance, deduplicated by sequence hash.

    Raises :class:`UserError` for an invalid record, a sequence longer than ``max_length``, two different
    sequences under one (sanitised) name, or one sequence given two different user alignments.
    """
    records = read_records(path)
    by_key: dict[str, dict] = {}
    owner_of_name: dict[str, str] = {}
    for rec in records:
        key = sequence_hash(rec.sequence)
        if max_length is not None and len(rec.sequence) > max_length:
            raise UserError(rec.source, f"sequence of length {len(rec.sequence)} exceeds max_length "
                            f"{max_length} set in the config", record=rec.raw_name)
        other = owner_of_name.get(rec.name)
        if other is not None and other != key:
            raise UserError(rec.source, f"name {rec.name!r} is used for two different sequences "
                            "(names must be unique after sanitising)", record=rec.raw_name)
        owner_of_name[rec.name] = key
        entry = by_key.setdefault(key, {"sequence": rec.sequence, "names": [], "a3m": rec.a3m})
        if rec.name not in entry["names"]:
            entry["names"].append(rec.name)
        if rec.a3m and entry["a3m"] and rec.a3m != entry["a3m"]:
            raise UserError(rec.source, "one sequence is given two different alignments "
                            f"({entry['a3m']} and {rec.a3m})", record=rec.raw_name)
        entry["a3m"] = entry["a3m"] or rec.a3m
    return [Target(key, e["sequence"], tuple(e["names"]), e["a3m"]) for key, e in by_key.items()]


TARGETS_COLUMNS = ("key", "name", "length", "aliases", "a3m", "sequence")


def write_targets_tsv(targets: list[Target], path: str | Path) -> None:
    """The campaign's validated, deduplicated target table (atomic write)."""
    from alphafold.io_utils import write_text_atomic

    lines = ["\t".join(TARGETS_COLUMNS)]
    for t in targets:
        aliases = ",".join(t.names[1:])
        lines.append("\t".join([t.key, t.name, str(t.length), aliases, t.a3m or "", t.sequence]))
    write_text_atomic(path, "\n".join(lines) + "\n")


def read_targets_tsv(path: str | Path) -> list[Target]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, dialect="excel-tab"))
    return [Target(r["key"], r["sequence"], tuple([r["name"]] + [a for a in r["aliases"].split(",") if a]),
                   r["a3m"] or None) for r in rows]
