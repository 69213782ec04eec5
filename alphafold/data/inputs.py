"""Prediction targets from user files: read, validate, deduplicate, name safely, and size.

Accepted inputs (format from the suffix, else sniffed from the content; ``.gz`` is read transparently):

* FASTA with one or many records;
* A3M with the query first (HHblits, ColabFold, MMseqs2 ``result2msa --msa-format-mode 6``): the query
  is the target, the alignment is kept as a user-supplied MSA (the MSA search is then skipped);
* Stockholm with the query first (e.g. ``jackhmmer -A``): likewise;
* a sample sheet (TSV): ``name<TAB>sequence-or-path`` per line, optional header line ``name<TAB>...``;
  a path (relative to the sheet) names a FASTA (one record), A3M or Stockholm file.

Residue letters follow AF2 (``residue_constants.sequence_to_onehot(map_unknown_to_x=True)``): the 20
standard letters and X are accepted; B, Z, U, O and J are accepted too and become X in ``aatype`` (a warning
is logged), as AF2 does. Anything else (digits, ``*`` inside the sequence, gaps) is an error, and so is a
sequence made only of nucleotide letters (A, C, G, T, U, N) of length >= 10. One trailing ``*`` (a stop
codon from a translation) is removed.

Identical sequences become one target, keyed by :func:`alphafold.common.hashing.sequence_hash`; every name
is kept as an alias. Names are sanitised (anything outside ``[A-Za-z0-9._-]`` becomes ``_``, no leading
dots, no '..', at most 100 characters) before they touch a path; two different names that sanitise to the
same name are an error.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import os
import re
from collections.abc import Iterable, Sequence

from alphafold.common.hashing import sequence_hash
from alphafold.data import parsers
from alphafold.errors import UserError

logger = logging.getLogger(__name__)

STANDARD = frozenset("ACDEFGHIKLMNPQRSTVWY")
AMBIGUOUS = frozenset("BZUOJ")  # accepted, mapped to X in aatype as AF2 does
ALLOWED = STANDARD | AMBIGUOUS | {"X"}
NUCLEOTIDES = frozenset("ACGTUN")
MAX_NAME_LENGTH = 100
TARGETS_COLUMNS = ("key", "name", "aliases", "length", "tier", "source", "msa", "sequence")


@dataclasses.dataclass(frozen=True)
class TierPolicy:
    """Device tiers by sequence length.

    Memory model (kept simple on purpose): the pair representation and its triangle updates dominate,
    O(L^2) per device; sharding the pair rows over P devices divides that by P, so P devices fit
    L_max(P) = single_device_max_length * sqrt(P). ``single_device_max_length`` is what one device of the
    cluster fits (default 1,500 residues, a conservative figure for a 40 GB GPU with chunking); the runtime's
    own memory model may refine the choice later.
    """

    single_device_max_length: int = 1500
    device_counts: tuple[int, ...] = (1, 2, 4, 8)

    def limits(self) -> list[tuple[str, int]]:
        return [(tier_name(p), int(self.single_device_max_length * math.sqrt(p)))
                for p in sorted(self.device_counts)]


def tier_name(devices: int) -> str:
    return "single" if devices == 1 else f"tp{devices}"


TOO_LONG = "too_long"


def tier_for_length(length: int, policy: TierPolicy = TierPolicy()) -> str:
    """'single', 'tp2', 'tp4', ...: the smallest tier whose limit holds ``length``; else 'too_long'."""
    if length <= 0:
        raise ValueError("length must be positive")
    for name, limit in policy.limits():
        if length <= limit:
            return name
    return TOO_LONG


@dataclasses.dataclass(frozen=True)
class Target:
    """One unique sequence to predict."""

    key: str
    name: str
    aliases: tuple[str, ...]
    sequence: str
    source: str
    msa: str | None = None  # path of a user-supplied A3M/Stockholm alignment, if any

    @property
    def length(self) -> int:
        return len(self.sequence)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def sanitize_name(name: str, where: str | None = None) -> str:
    """A name safe as a single path component: no '/', no '..', no control or shell characters."""
    safe = re.sub(r"\.{2,}", "_", _UNSAFE.sub("_", name.strip())).lstrip(".")
    safe = re.sub(r"_+", "_", safe)[:MAX_NAME_LENGTH].rstrip(".")
    if not safe or set(safe) <= {"_", "-", "."}:
        raise UserError(where, "name has no usable characters (letters, digits, '.', '_' or '-')",
                        record=name)
    return safe


def clean_sequence(sequence: str, where: str | None, record: str) -> str:
    """Validate one query sequence and return it in upper case (see the module docstring for the rules)."""
    seq = "".join(sequence.split()).upper()
    if seq.endswith("*"):
        seq = seq[:-1]
    if not seq:
        raise UserError(where, "sequence is empty", record=record)
    letters = set(seq)
    bad = sorted(letters - ALLOWED)
    if bad:
        pos = next(i for i, c in enumerate(seq) if c not in ALLOWED) + 1
        shown = ", ".join(repr(c) for c in bad[:5])
        raise UserError(where, f"sequence has characters that are not amino-acid letters ({shown}; first "
                               f"at position {pos})", record=record)
    if len(seq) >= 10 and letters <= NUCLEOTIDES:
        raise UserError(where, "sequence looks like DNA/RNA (only A, C, G, T, U, N): expected a protein",
                        record=record)
    odd = sorted(letters & AMBIGUOUS)
    if odd:
        logger.warning("%s: record %r: letters %s are treated as unknown (X), as AlphaFold2 does",
                       where, record, ",".join(odd))
    return seq


@dataclasses.dataclass(frozen=True)
class RawRecord:
    name: str
    sequence: str
    source: str
    msa: str | None = None


def _msa_query(path: str, fmt: str, text: str) -> tuple[str, str]:
    """(name, sequence) of an alignment's query (first row, gaps and insertions removed)."""
    if fmt == "a3m":
        header, row = parsers.parse_fasta(text, path)[0] if text.strip() else ("", "")
        if not header:
            raise UserError(path, "no records in A3M alignment")
        parsers.parse_a3m(text, path)  # validates that every row fits the query's columns
        return parsers.record_name(header), row.replace("-", "").replace(".", "")
    rows = parsers.stockholm_rows(text, path)
    name, row = next(iter(rows.items()))
    parsers.parse_stockholm(text, path)
    return name, "".join(c for c in row if c not in "-.")


def read_records(path: str | os.PathLike, _depth: int = 0) -> list[RawRecord]:
    """The records of one input file, before validation and deduplication."""
    path = os.fspath(path)
    text = parsers.read_text(path)
    fmt = parsers.sniff_format(path, text)
    if fmt == "fasta":
        records = parsers.parse_fasta(text, path)
        if not records:
            raise UserError(path, "no FASTA records (expected lines starting with '>')")
        return [RawRecord(parsers.record_name(h), s, f"{path}:{i + 1}") for i, (h, s) in enumerate(records)]
    if fmt in ("a3m", "stockholm"):
        name, seq = _msa_query(path, fmt, text)
        return [RawRecord(name, seq, f"{path}:1", msa=os.path.abspath(path))]
    if _depth > 0:
        raise UserError(path, "a sample sheet cannot list another sample sheet")
    return _read_sheet(path, text)


def _read_sheet(path: str, text: str) -> list[RawRecord]:
    base = os.path.dirname(os.path.abspath(path))
    out: list[RawRecord] = []
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and cells[0].lower() in ("name", "id", "target") and len(cells) >= 2:
            continue  # header line
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise UserError(path, f"line {number}: expected 'name<TAB>sequence-or-path'")
        name, value = cells[0], cells[1]
        candidate = value if os.path.isabs(value) else os.path.join(base, value)
        looks_like_path = "/" in value or "." in value or os.path.exists(candidate)
        if looks_like_path:
            if not os.path.exists(candidate):
                raise UserError(path, f"line {number}: file {value!r} not found", record=name)
            sub = read_records(candidate, _depth=1)
            if len(sub) != 1:
                raise UserError(candidate, f"has {len(sub)} records; a sample sheet entry needs exactly one",
                                record=name)
            out.append(dataclasses.replace(sub[0], name=name, source=f"{path}:{number}"))
        else:
            out.append(RawRecord(name, value, f"{path}:{number}"))
    if not out:
        raise UserError(path, "sample sheet lists no targets")
    return out


def build_targets(records: Iterable[RawRecord]) -> list[Target]:
    """Validate, sanitise names and deduplicate records into targets (first occurrence gives the name)."""
    by_key: dict[str, dict] = {}
    original_of: dict[str, tuple[str, str]] = {}  # sanitised name -> (original name, source)
    for rec in records:
        where = rec.source.rsplit(":", 1)[0]
        if not rec.name:
            raise UserError(where, f"record at {rec.source} has no name")
        seq = clean_sequence(rec.sequence, where, rec.name)
        safe = sanitize_name(rec.name, where)
        if safe in original_of:
            first, first_src = original_of[safe]
            if first == rec.name:
                raise UserError(where, f"duplicate name (first at {first_src})", record=rec.name)
            raise UserError(where, f"name collides with {first!r} (at {first_src}) after sanitising both to "
                                   f"{safe!r}", record=rec.name)
        original_of[safe] = (rec.name, rec.source)
        key = sequence_hash(seq)
        entry = by_key.get(key)
        if entry is None:
            by_key[key] = {"name": safe, "aliases": [safe], "sequence": seq, "source": rec.source,
                           "msa": rec.msa}
        else:
            if entry["sequence"] != seq:  # a 64-bit prefix collision: never merge different sequences
                raise UserError(where, f"sequence hash {key} collides with {entry['name']!r}",
                                record=rec.name)
            entry["aliases"].append(safe)
            if rec.msa and entry["msa"] and rec.msa != entry["msa"]:
                logger.warning("%s: %r has the same sequence as %r; using the MSA of %r (%s)", where,
                               rec.name, entry["name"], entry["name"], entry["msa"])
            entry["msa"] = entry["msa"] or rec.msa
            logger.info("%s: %r is identical to %r: kept as an alias", where, rec.name, entry["name"])
    return [Target(key=k, name=v["name"], aliases=tuple(v["aliases"]), sequence=v["sequence"],
                   source=v["source"], msa=v["msa"]) for k, v in by_key.items()]


def read_targets(paths: Sequence[str | os.PathLike]) -> list[Target]:
    """All targets of one or more input files (FASTA, A3M, Stockholm, sample sheet or targets table)."""
    records: list[RawRecord] = []
    for path in paths:
        if is_targets_table(path):
            records.extend(RawRecord(t.name, t.sequence, t.source, t.msa) for t in read_targets_table(path))
        else:
            records.extend(read_records(path))
    return build_targets(records)


def is_targets_table(path: str | os.PathLike) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return first.rstrip("\n").split("\t")[:2] == list(TARGETS_COLUMNS[:2])


def write_targets_table(targets: Sequence[Target], policy: TierPolicy = TierPolicy()) -> str:
    """The targets table (TSV) that ``alphafold prepare-targets`` writes."""
    lines = ["\t".join(TARGETS_COLUMNS)]
    for t in targets:
        lines.append("\t".join([t.key, t.name, ",".join(t.aliases), str(t.length),
                                tier_for_length(t.length, policy), t.source, t.msa or "", t.sequence]))
    return "\n".join(lines) + "\n"


def read_targets_table(path: str | os.PathLike) -> list[Target]:
    """Targets back from a table written by :func:`write_targets_table`."""
    path = os.fspath(path)
    rows = list(csv.reader(io.StringIO(parsers.read_text(path)), delimiter="\t"))
    if not rows or tuple(rows[0]) != TARGETS_COLUMNS:
        raise UserError(path, f"not a targets table (header must be {' '.join(TARGETS_COLUMNS)})")
    out = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(TARGETS_COLUMNS):
            raise UserError(path, f"line {number}: {len(row)} columns, expected {len(TARGETS_COLUMNS)}")
        cells = dict(zip(TARGETS_COLUMNS, row))
        out.append(Target(key=cells["key"], name=cells["name"], aliases=tuple(cells["aliases"].split(",")),
                          sequence=cells["sequence"], source=cells["source"], msa=cells["msa"] or None))
    return out
