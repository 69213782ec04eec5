"""HHsearch template search (HH-suite 3): run, parse `.hhr` hits into query-mapped template hits, and build
a small HH-suite template database from a `pdb_seqres`-style FASTA.

AlphaFold2 v2.3's monomer pipeline searches PDB70 with HHsearch (`-maxseq 1000000`) using the UniRef90
MSA as query, ranks hits by HHsearch's `Sum_probs` and featurizes them in that order without dropping
repeats (DeepMind's `HhsearchHitFeaturizer`); `templates.TemplateSearcher(tool="hhsearch")` does the same
with this module.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from alphafold.errors import UserError

log = logging.getLogger(__name__)

# HH-suite's context libraries (Debian hhsuite-data / the package's data directory).
HHSUITE_DATA = Path("/usr/lib/hhsuite/data")
_CSTRANSLATE = ("/usr/libexec/hhsuite/cstranslate-avx2", "/usr/libexec/hhsuite/cstranslate-sse4.1",
                "/usr/libexec/hhsuite/cstranslate-plain", "cstranslate")
_ALIGNMENT_LINE = re.compile(r"^([QT]) (\S+)\s+(\d+) ([A-Za-z-]+)\s+(\d+) \(\d+\)")
_NOT_SEQUENCE_ROWS = ("Consensus", "ss_pred", "ss_conf", "ss_dssp")


def database_files(prefix: str) -> list[Path]:
    return [Path(f"{prefix}_{part}.{ext}") for part in ("hhm", "cs219") for ext in ("ffdata", "ffindex")]


def run_hhsearch(a3m: str, database: str, cpus: int = 1, binary: str = "hhsearch") -> str:
    """hhsearch of an A3M query against an HH-suite database prefix; returns the .hhr text."""
    exe = shutil.which(binary)
    if exe is None:
        raise UserError(None, f"{binary} not found on PATH (Debian package hhsuite)")
    with tempfile.TemporaryDirectory(prefix="af_hhsearch_") as tmp:
        query, out = Path(tmp) / "query.a3m", Path(tmp) / "out.hhr"
        query.write_text(a3m)
        cmd = [exe, "-i", str(query), "-d", database, "-o", str(out), "-maxseq", "1000000",
               "-cpu", str(cpus), "-v", "1"]
        log.info("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            raise UserError(database, f"hhsearch failed (exit {proc.returncode}): "
                                      f"{proc.stderr.strip()[-500:]}")
        return out.read_text()


def parse_hhr(text: str) -> list[dict]:
    """Hits of an .hhr file in file order: name, probability, e_value, score, aligned_cols, sum_probs,
    and the aligned query/template rows with the 1-based start of each."""
    hits: list[dict] = []
    hit: dict | None = None
    for line in text.splitlines():
        if line.startswith("No "):
            hit = {"query": "", "template": "", "query_start": None, "template_start": None}
            hits.append(hit)
        elif hit is None:
            continue
        elif line.startswith(">"):
            hit["name"] = line[1:].split()[0]
            hit["description"] = line[1:].strip()
        elif line.startswith("Probab="):
            fields = dict(re.findall(r"(\S+)=(\S+)", line))
            try:
                hit.update(probability=float(fields["Probab"]), e_value=float(fields["E-value"]),
                           score=float(fields["Score"]), aligned_cols=int(fields["Aligned_cols"]),
                           sum_probs=float(fields.get("Sum_probs", 0.0)))
            except (KeyError, ValueError) as err:
                raise UserError("hhsearch output", f"unreadable hit statistics line {line!r}") from err
        else:
            match = _ALIGNMENT_LINE.match(line)
            if not match or match[2] in _NOT_SEQUENCE_ROWS:
                continue
            row = "query" if match[1] == "Q" else "template"
            if hit[f"{row}_start"] is None:
                hit[f"{row}_start"] = int(match[3])
            hit[row] += match[4]
    return [h for h in hits
            if "name" in h and h["query_start"] is not None and h["template_start"] is not None]


def hit_mapping(hit: dict) -> tuple[str, dict[int, int]]:
    """(template residues of the aligned stretch, query index -> index in that stretch), both 0-based."""
    mapping: dict[int, int] = {}
    q, t = hit["query_start"] - 1, 0
    residues = []
    for qc, tc in zip(hit["query"], hit["template"]):
        if qc != "-" and tc != "-":
            mapping[q] = t
        if tc != "-":
            residues.append(tc.upper())
            t += 1
        if qc != "-":
            q += 1
    return "".join(residues), mapping


def query_a3m(rows: Sequence[str], name: str = "query") -> str:
    """An A3M query file from aligned rows (query first)."""
    return "".join(f">{name if i == 0 else f'seq{i}'}\n{row}\n" for i, row in enumerate(rows))


def build_database(seqres_fasta: str | os.PathLike, prefix: str | os.PathLike) -> None:
    """An HH-suite database (`<prefix>_{hhm,a3m,cs219}.ff{data,index}`) with one single-sequence HMM per
    protein record of a `pdb_seqres`-style FASTA (hhmake, ffindex_build, cstranslate). For small custom
    template sets; PDB70 itself is distributed ready-made."""
    records: list[tuple[str, str]] = []
    for line in Path(seqres_fasta).read_text().splitlines():
        if line.startswith(">"):
            records.append((line[1:].strip(), ""))
        elif line.strip() and records:
            records[-1] = (records[-1][0], records[-1][1] + line.strip())
    cstranslate = next((p for p in _CSTRANSLATE if shutil.which(p)), None)
    for tool in ("hhmake", "ffindex_build"):
        if shutil.which(tool) is None:
            raise UserError(None, f"{tool} not found on PATH (Debian package hhsuite)")
    if cstranslate is None:
        raise UserError(None, "cstranslate not found (Debian package hhsuite)")
    prefix = str(prefix)
    with tempfile.TemporaryDirectory(prefix="af_hhdb_") as tmp:
        a3m_dir, hhm_dir = Path(tmp) / "a3m", Path(tmp) / "hhm"
        a3m_dir.mkdir()
        hhm_dir.mkdir()
        for header, seq in records:
            if "mol:protein" not in header and "mol:" in header:
                continue
            name = header.split()[0]
            (a3m_dir / name).write_text(f">{header}\n{seq}\n")
            subprocess.run(["hhmake", "-i", str(a3m_dir / name), "-o", str(hhm_dir / name), "-v", "0",
                            "-name", header], check=True, capture_output=True)
        for part, directory in (("a3m", a3m_dir), ("hhm", hhm_dir)):
            subprocess.run(["ffindex_build", "-s", f"{prefix}_{part}.ffdata", f"{prefix}_{part}.ffindex",
                            str(directory)], check=True, capture_output=True)
        subprocess.run([cstranslate, "-f", "-x", "0.3", "-c", "4", "-I", "a3m", "-i", f"{prefix}_a3m",
                        "-o", f"{prefix}_cs219", "-A", str(HHSUITE_DATA / "cs219.lib"),
                        "-D", str(HHSUITE_DATA / "context_data.lib"), "-b"], check=True, capture_output=True)
