"""Parsers for the sequence and alignment formats of the data pipeline: FASTA, A3M, Stockholm.

An alignment is reduced to AlphaFold2's view of it (Jumper et al. 2021, Suppl. 1.2.2-1.2.3): the columns
where the query (the first row) has a residue, one aligned row per hit (upper case letters and ``-``), and a
deletion matrix that counts, for every query column, how many residues the hit inserts just before it.

* A3M: lower-case letters are insertions relative to the query; ``.`` is padding and is dropped.
* Stockholm: columns where the query has a gap (``-`` or ``.``) are insertion columns; the hit's residues
  there are counted as deletions before the next query column. This reads ``jackhmmer -A`` output exactly
  as DeepMind's pipeline does (the query is the first row).

Malformed input raises :class:`alphafold.errors.UserError` naming the file and the record.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
from collections.abc import Iterator, Sequence

import numpy as np

from alphafold.errors import UserError

_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")


@dataclasses.dataclass(frozen=True)
class Msa:
    """An alignment in the query's columns.

    sequences: one string per row, all of the query's length (upper case letters and ``-``); row 0 is
      the query itself.
    deletion_matrix: per row, per query column, the number of residues the row inserts before it.
    descriptions: per row, the header (name and description) it came with.
    """

    sequences: tuple[str, ...]
    deletion_matrix: tuple[tuple[int, ...], ...]
    descriptions: tuple[str, ...]

    def __post_init__(self):
        if not len(self.sequences) == len(self.deletion_matrix) == len(self.descriptions):
            raise ValueError(
                f"MSA fields disagree: {len(self.sequences)} sequences, {len(self.deletion_matrix)} "
                f"deletion rows, {len(self.descriptions)} descriptions"
            )

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def query(self) -> str:
        return self.sequences[0]

    def truncate(self, max_rows: int) -> Msa:
        """The first ``max_rows`` rows (the query counts as one), as AF2 caps each database's hits."""
        return Msa(self.sequences[:max_rows], self.deletion_matrix[:max_rows], self.descriptions[:max_rows])


def read_text(path: str | os.PathLike) -> str:
    """Read a (possibly gzipped) text file, turning I/O and encoding problems into a UserError."""
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return fh.read()
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise UserError(path, "file not found") from None
    except IsADirectoryError:
        raise UserError(path, "is a directory, expected a file") from None
    except (UnicodeDecodeError, OSError, EOFError) as err:
        raise UserError(path, f"cannot be read as text ({err})") from None


def iter_fasta(text: str, where: str | None = None) -> Iterator[tuple[str, str]]:
    """Yield ``(header, sequence)`` per record; sequence lines are joined with whitespace removed.

    Lines starting with ``#`` before the first record (ColabFold's A3M size line) and NUL separators
    (ColabFold's concatenated A3M databases) are skipped.
    """
    header: str | None = None
    chunks: list[str] = []
    for number, raw in enumerate(text.replace("\x00", "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(">"):
            if header is not None:
                yield header, "".join(chunks)
            header, chunks = line[1:].strip(), []
        elif header is None:
            if line.startswith("#"):
                continue
            raise UserError(where, f"line {number}: sequence data before the first '>' header")
        else:
            chunks.append("".join(line.split()))
    if header is not None:
        yield header, "".join(chunks)


def parse_fasta(text: str, where: str | None = None) -> list[tuple[str, str]]:
    """All ``(header, sequence)`` records of a FASTA text."""
    return list(iter_fasta(text, where))


def record_name(header: str) -> str:
    """The first whitespace-separated token of a header (the record's name)."""
    parts = header.split(maxsplit=1)
    return parts[0] if parts else ""


def _a3m_row(row: str) -> tuple[str, tuple[int, ...]]:
    """Split an A3M row into its aligned (upper case / gap) letters and the deletion count before each."""
    aligned: list[str] = []
    deletions: list[int] = []
    pending = 0
    for ch in row:
        if ch in _LOWER:
            pending += 1
        elif ch == ".":
            continue
        else:
            aligned.append(ch)
            deletions.append(pending)
            pending = 0
    return "".join(aligned), tuple(deletions)


def parse_a3m(text: str, where: str | None = None) -> Msa:
    """Parse an A3M alignment whose first record is the query (HHblits, ColabFold, MMseqs2 mode 6)."""
    records = parse_fasta(text, where)
    if not records:
        raise UserError(where, "no records in A3M alignment")
    sequences: list[str] = []
    deletions: list[tuple[int, ...]] = []
    descriptions: list[str] = []
    width = None
    for header, row in records:
        aligned, dels = _a3m_row(row)
        if width is None:
            if not aligned:
                raise UserError(where, "the query (first record) is empty", record=record_name(header))
            if "-" in aligned:
                raise UserError(where, "the query (first record) must not contain gaps",
                                record=record_name(header))
            width = len(aligned)
        elif len(aligned) != width:
            raise UserError(
                where,
                f"has {len(aligned)} aligned columns but the query has {width} (not an A3M with the "
                "query first?)",
                record=record_name(header),
            )
        sequences.append(aligned.upper())
        deletions.append(dels)
        descriptions.append(header)
    return Msa(tuple(sequences), tuple(deletions), tuple(descriptions))


def stockholm_rows(text: str, where: str | None) -> dict[str, str]:
    """Sequence name -> concatenated alignment row, in order of first appearance (multi-block aware)."""
    rows: dict[str, str] = {}
    seen_header = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("# STOCKHOLM"):
            seen_header = True
            continue
        if line.startswith(("#", "//")):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise UserError(where, f"line {number}: expected 'name alignment', got {len(parts)} fields")
        name, chunk = parts
        rows[name] = rows.get(name, "") + chunk
    if not seen_header:
        raise UserError(where, "not a Stockholm file (no '# STOCKHOLM' header)")
    if not rows:
        raise UserError(where, "Stockholm alignment has no sequences")
    return rows


def _stockholm_descriptions(text: str) -> dict[str, str]:
    descriptions: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#=GS"):
            parts = line.split(maxsplit=3)
            if len(parts) >= 3 and parts[2] == "DE":
                descriptions[parts[1]] = parts[3] if len(parts) == 4 else ""
    return descriptions


def parse_stockholm(text: str, where: str | None = None, keep_descriptions: bool = False) -> Msa:
    """Parse a Stockholm alignment whose first row is the query (e.g. ``jackhmmer -A`` output).

    Descriptions are the row names (with jackhmmer's ``/start-end`` suffix), as AF2 records them; with
    ``keep_descriptions`` the ``#=GS name DE ...`` text is appended after a space.
    """
    rows = stockholm_rows(text, where)
    names = list(rows)
    query = rows[names[0]]
    for name in names:
        if len(rows[name]) != len(query):
            raise UserError(where, f"row has {len(rows[name])} columns but the query has {len(query)}",
                            record=name)
    extra = _stockholm_descriptions(text) if keep_descriptions else {}
    descriptions = tuple(f"{n} {extra[n]}".rstrip() if n in extra else n for n in names)
    try:
        # [N * W] bytes -> [N, W]; one byte per column (alignment letters are ASCII)
        grid = np.frombuffer("".join(rows.values()).encode("ascii"), dtype=np.uint8).reshape(len(names), -1)
    except UnicodeEncodeError:
        raise UserError(where, "alignment rows contain non-ASCII characters") from None
    gap = (grid == ord("-")) | (grid == ord("."))
    match_columns = np.flatnonzero(~gap[0])
    if not len(match_columns):
        raise UserError(where, "the query (first row) has no residues", record=names[0])
    # residues a row has in the query's gap (insert) columns, counted up to each query column
    inserted = np.cumsum(~gap & gap[0][None, :], axis=1)
    # [N, L] residues inserted since the previous query column
    deletions = np.diff(inserted[:, match_columns], axis=1, prepend=0)
    aligned = grid[:, match_columns].copy()
    lower = (aligned >= ord("a")) & (aligned <= ord("z"))
    aligned[lower] -= 32
    aligned[aligned == ord(".")] = ord("-")
    width = len(match_columns)
    flat = aligned.tobytes().decode("ascii")
    sequences = tuple(flat[i * width:(i + 1) * width] for i in range(len(names)))
    return Msa(sequences, tuple(map(tuple, deletions.tolist())), descriptions)


def truncate_stockholm(text: str, max_rows: int) -> str:
    """Keep the first ``max_rows`` sequences of a Stockholm text (markup of other rows dropped)."""
    keep: set[str] = set()
    for line in text.splitlines():
        if line.strip() and not line.startswith(("#", "//")):
            name = line.split(maxsplit=1)[0]
            if name not in keep:
                if len(keep) >= max_rows:
                    break
                keep.add(name)
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(("# STOCKHOLM", "//", "#=GF", "#=GC")):
            out.append(line)
        elif line.startswith(("#=GS", "#=GR")):
            if line.split(maxsplit=2)[1] in keep:
                out.append(line)
        elif line.startswith("#"):
            out.append(line)
        elif line.split(maxsplit=1)[0] in keep:
            out.append(line)
    return "\n".join(out) + "\n"


def msa_to_a3m(msa: Msa) -> str:
    """Write an Msa as A3M (insertions are not known any more, so rows are written aligned only)."""
    return "".join(f">{d}\n{s}\n" for d, s in zip(msa.descriptions, msa.sequences))


def stockholm_to_a3m(text: str, where: str | None = None) -> str:
    """Convert a Stockholm alignment (query first) to A3M, keeping insertions as lower case letters."""
    rows = stockholm_rows(text, where)
    descriptions = _stockholm_descriptions(text)
    query = next(iter(rows.values()))
    out = []
    for name, row in rows.items():
        letters = []
        for ch, q in zip(row, query):
            if q in "-.":
                if ch not in "-.":
                    letters.append(ch.lower())
            else:
                letters.append("-" if ch == "." else ch.upper())
        header = f"{name} {descriptions[name]}".rstrip() if name in descriptions else name
        out.append(f">{header}\n{''.join(letters)}\n")
    return "".join(out)


# UniProtKB headers ("sp|P69905|HBA_HUMAN", "tr|A0A146SKV9|A0A146SKV9_FUNHE", small BFD's trailing "_1")
# carry the species mnemonic after the last underscore of the entry name; AF2 reads it for MSA pairing.
_UNIPROT_ID = re.compile(
    r"^(?:tr|sp)\|[A-Za-z0-9]{6,10}(?:_\d)?\|[A-Za-z0-9]+_(?P<species>[A-Za-z0-9]{1,5})(?:_\d+)?$"
)


def species_identifier(description: str) -> str:
    """The UniProt species mnemonic of an MSA row's description, or '' when none can be derived."""
    token = record_name(description).partition("/")[0]
    match = _UNIPROT_ID.match(token.strip())
    return match.group("species") if match else ""


def sniff_format(path: str | os.PathLike, text: str) -> str:
    """'fasta', 'a3m', 'stockholm' or 'tsv', from the suffix first, else from the content."""
    name = os.fspath(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = os.path.splitext(name)[1]
    if suffix in (".a3m",):
        return "a3m"
    if suffix in (".sto", ".stockholm", ".stk"):
        return "stockholm"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix in (".fa", ".fasta", ".faa", ".fas", ".seq"):
        return "fasta"
    head = text.lstrip()[:200]
    if head.startswith("# STOCKHOLM"):
        return "stockholm"
    if head.startswith(">") or head.startswith("#"):
        records = parse_fasta(text, os.fspath(path))
        if any(any(c in _LOWER or c == "-" for c in seq) for _, seq in records[1:]):
            return "a3m"
        return "fasta"
    if "\t" in head:
        return "tsv"
    raise UserError(os.fspath(path), "unknown format: expected FASTA, A3M, Stockholm or a TSV sample sheet")


def check_same_length(msas: Sequence[Msa], where: str | None = None) -> None:
    """Every MSA must be in the same query's columns."""
    widths = {len(m.query) for m in msas}
    if len(widths) > 1:
        raise UserError(where, f"MSAs have different query lengths {sorted(widths)}")
