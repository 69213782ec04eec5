"""MSA search tools: jackhmmer (pyhmmer, in-process), HHblits and MMseqs2 (Debian binaries).

Each searcher turns one query sequence into an alignment text with the query as its first row, and says
what it ran (tool, version, settings, seconds, hit count) so results can be cached and reported.

Settings follow DeepMind's AF2 v2.3 pipeline (``alphafold/data/tools/{jackhmmer,hhblits}.py`` and
``pipeline.py``):

* jackhmmer on UniRef90 and MGnify: ``-N 1`` (AF2 leaves its wrapper's default of one iteration),
  ``-E 0.0001 --incE 0.0001 --F1 0.0005 --F2 0.00005 --F3 0.0000005``; the Stockholm output is capped at
  10,000 rows (UniRef90) and 501 rows (MGnify), query included. ``iterations`` is configurable (e.g. 3).
* hhblits on BFD + UniRef30 in one run: ``-n 3 -e 0.001 -maxseq 1000000 -realign_max 100000
  -maxfilt 100000 -min_prefilter_hits 1000``; no cap.
* MMseqs2 (ColabFold's route; not part of AF2): ``search --num-iterations 3 -a`` then
  ``result2msa --msa-format-mode 6`` (A3M, query first).
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import io
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence

from alphafold.data import parsers
from alphafold.errors import UserError

logger = logging.getLogger(__name__)

UNIREF90_MAX_HITS = 10_000
MGNIFY_MAX_HITS = 501


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """One search's alignment and provenance."""

    database: str  # role: uniref90, mgnify, bfd_uniref30, ...
    tool: str
    tool_version: str
    format: str  # "sto" or "a3m"
    text: str
    num_hits: int  # rows besides the query
    seconds: float
    settings: dict

    def parse(self) -> parsers.Msa:
        where = f"{self.tool} output for {self.database}"
        return (
            parsers.parse_stockholm(self.text, where)
            if self.format == "sto"
            else parsers.parse_a3m(self.text, where)
        )


# ---------------------------------------------------------------------------------------------- identity


def _sampled_sha256(path: str, sample: int = 1 << 20) -> str:
    """SHA-256 of a file's size, first and last MiB: cheap for 100 GB databases, catches most changes."""
    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(sample))
        if size > sample:
            fh.seek(max(sample, size - sample))
            digest.update(fh.read(sample))
    return digest.hexdigest()


def database_files(path: str) -> list[str]:
    """The files that make up a database: a FASTA file, an HH-suite prefix (``PREFIX_*.ff{data,index}``),
    or an MMseqs2 database (``PATH``, ``PATH.index``, ``PATH_h``...)."""
    if os.path.isfile(path):
        extra = sorted(p for p in glob.glob(glob.escape(path) + "*") if p != path and os.path.isfile(p))
        return [path] + (extra if os.path.exists(path + ".dbtype") else [])
    files = sorted(p for p in glob.glob(glob.escape(path) + "_*.ff*") if os.path.isfile(p))
    if not files:
        raise UserError(path, "database not found (neither a file nor an HH-suite prefix with _*.ffdata)")
    return files


def database_identity(path: str | os.PathLike) -> dict:
    """What identifies a database for caching: its absolute path and, per file, size and sampled SHA-256."""
    path = os.path.abspath(os.fspath(path))
    files = database_files(path)
    return {
        "path": path,
        "files": {
            os.path.basename(f): {"size": os.path.getsize(f), "sha256": _sampled_sha256(f)} for f in files
        },
    }


@functools.cache
def binary_version(binary: str, flag: str = "-h") -> str:
    """The first line of ``binary FLAG`` that carries a version number (e.g. 'HMMER 3.3.2 (Nov 2020)')."""
    exe = shutil.which(binary)
    if exe is None:
        return "not installed"
    try:
        proc = subprocess.run([exe, flag], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    for line in (proc.stdout + proc.stderr).splitlines():
        if re.search(r"\d+[.-]\w+", line):
            return line.strip("# ").split(";")[0].strip()
    return "unknown"


def _run(cmd: Sequence[str], what: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    logger.debug("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd)
    except FileNotFoundError:
        raise UserError(None, f"{cmd[0]} not found: install it (scripts/system-deps.sh) for {what}") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"{what}: {cmd[0]} exited {proc.returncode}: {tail}")
    return proc


def _query_fasta(directory: str, name: str, sequence: str) -> str:
    path = os.path.join(directory, "query.fasta")
    with open(path, "w") as fh:
        fh.write(f">{name}\n{sequence}\n")
    return path


# ---------------------------------------------------------------------------------------------- jackhmmer


@dataclasses.dataclass(frozen=True)
class JackhmmerSettings:
    iterations: int = 1
    e_value: float = 1e-4
    inc_e: float = 1e-4
    filter_f1: float = 0.0005
    filter_f2: float = 0.00005
    filter_f3: float = 0.0000005
    max_rows: int | None = None  # cap on Stockholm rows, query included


class JackhmmerSearch:
    """jackhmmer of a query against a FASTA database, in-process with pyhmmer.

    The database is read into memory once per instance when smaller than ``preload_max_bytes`` (so one
    process serving many targets reads it once); larger databases are streamed from disk each search.
    """

    tool = "jackhmmer (pyhmmer)"

    def __init__(
        self,
        database: str | os.PathLike,
        role: str,
        settings: JackhmmerSettings = JackhmmerSettings(),
        cpus: int = 2,
        preload_max_bytes: int = 4 << 30,
    ):
        self.database = os.fspath(database)
        if not os.path.isfile(self.database):
            raise UserError(self.database, f"{role} database (FASTA) not found")
        self.role = role
        self.settings = settings
        self.cpus = cpus
        self.preload_max_bytes = preload_max_bytes
        self._block = None

    @property
    def version(self) -> str:
        import pyhmmer

        return f"pyhmmer {pyhmmer.__version__}"

    def cache_settings(self) -> dict:
        return {"tool": "jackhmmer", **dataclasses.asdict(self.settings)}

    def preload(self) -> None:
        """Read the database into memory now (if it is small enough to be kept), not at the first search."""
        from pyhmmer.easel import Alphabet

        targets = self._targets(Alphabet.amino())
        if targets is not self._block:
            targets.close()

    def _targets(self, alphabet):
        from pyhmmer.easel import SequenceFile

        if self._block is not None:
            return self._block
        try:
            handle = SequenceFile(self.database, digital=True, alphabet=alphabet)
        except (ValueError, OSError) as err:
            raise UserError(self.database, f"cannot read {self.role} database as FASTA ({err})") from None
        if os.path.getsize(self.database) <= self.preload_max_bytes:
            with handle:
                self._block = handle.read_block()
            return self._block
        return handle

    def search(self, name: str, sequence: str) -> SearchResult:
        import pyhmmer
        from pyhmmer.easel import Alphabet, TextSequence

        alphabet = Alphabet.amino()
        start = time.perf_counter()
        query = TextSequence(name=name.encode(), description=b"", sequence=sequence).digitize(alphabet)
        targets = self._targets(alphabet)
        s = self.settings
        try:
            (result,) = pyhmmer.hmmer.jackhmmer(
                query,
                targets,
                max_iterations=s.iterations,
                cpus=self.cpus,
                E=s.e_value,
                incE=s.inc_e,
                F1=s.filter_f1,
                F2=s.filter_f2,
                F3=s.filter_f3,
            )
        finally:
            if targets is not self._block:
                targets.close()
        buffer = io.BytesIO()
        result.msa.write(buffer, "stockholm")
        text = buffer.getvalue().decode()
        if s.max_rows is not None:
            text = parsers.truncate_stockholm(text, s.max_rows)
        rows = len(parsers.parse_stockholm(text, f"jackhmmer output for {self.role}"))
        seconds = time.perf_counter() - start
        logger.info(
            "jackhmmer %s vs %s: %d hits in %.1f s (%d iteration(s) run)",
            name,
            self.role,
            rows - 1,
            seconds,
            result.iteration,
        )
        return SearchResult(
            self.role, self.tool, self.version, "sto", text, rows - 1, seconds, self.cache_settings()
        )


class JackhmmerBinarySearch(JackhmmerSearch):
    """The same search with HMMER's ``jackhmmer`` binary (for comparison and benchmarks)."""

    tool = "jackhmmer (binary)"

    def __init__(self, *args, binary: str = "jackhmmer", **kwargs):
        super().__init__(*args, **kwargs)
        self.binary = binary

    @property
    def version(self) -> str:
        return binary_version(self.binary)

    def search(self, name: str, sequence: str) -> SearchResult:
        s = self.settings
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="jackhmmer-") as tmp:
            fasta = _query_fasta(tmp, name, sequence)
            sto = os.path.join(tmp, "out.sto")
            _run(
                [
                    self.binary,
                    "-o",
                    os.devnull,
                    "-A",
                    sto,
                    "--noali",
                    "--F1",
                    str(s.filter_f1),
                    "--F2",
                    str(s.filter_f2),
                    "--F3",
                    str(s.filter_f3),
                    "--incE",
                    str(s.inc_e),
                    "-E",
                    str(s.e_value),
                    "--cpu",
                    str(self.cpus),
                    "-N",
                    str(s.iterations),
                    fasta,
                    self.database,
                ],
                f"jackhmmer of {name} against {self.database}",
            )
            with open(sto) as fh:
                text = fh.read()
        if s.max_rows is not None:
            text = parsers.truncate_stockholm(text, s.max_rows)
        rows = len(parsers.parse_stockholm(text, f"jackhmmer output for {self.role}"))
        return SearchResult(
            self.role,
            self.tool,
            self.version,
            "sto",
            text,
            rows - 1,
            time.perf_counter() - start,
            self.cache_settings(),
        )


# ---------------------------------------------------------------------------------------------- hhblits


@dataclasses.dataclass(frozen=True)
class HHblitsSettings:
    iterations: int = 3
    e_value: float = 0.001
    maxseq: int = 1_000_000
    realign_max: int = 100_000
    maxfilt: int = 100_000
    min_prefilter_hits: int = 1000


class HHblitsSearch:
    """hhblits of a query against one or more HH-suite databases (prefixes of ``_a3m/_hhm/_cs219``)."""

    tool = "hhblits"

    def __init__(
        self,
        databases: Sequence[str | os.PathLike],
        role: str = "bfd_uniref30",
        settings: HHblitsSettings = HHblitsSettings(),
        cpus: int = 2,
        binary: str = "hhblits",
    ):
        self.databases = [os.fspath(d) for d in databases]
        for db in self.databases:
            if not glob.glob(glob.escape(db) + "_*"):
                raise UserError(db, "HH-suite database not found (expected files PREFIX_a3m.ffdata, ...)")
        self.role = role
        self.settings = settings
        self.cpus = cpus
        self.binary = binary

    @property
    def version(self) -> str:
        return binary_version(self.binary)

    def cache_settings(self) -> dict:
        return {"tool": "hhblits", **dataclasses.asdict(self.settings)}

    def search(self, name: str, sequence: str) -> SearchResult:
        s = self.settings
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="hhblits-") as tmp:
            fasta = _query_fasta(tmp, name, sequence)
            a3m = os.path.join(tmp, "out.a3m")
            cmd = [
                self.binary,
                "-i",
                fasta,
                "-cpu",
                str(self.cpus),
                "-oa3m",
                a3m,
                "-o",
                os.devnull,
                "-n",
                str(s.iterations),
                "-e",
                str(s.e_value),
                "-maxseq",
                str(s.maxseq),
                "-realign_max",
                str(s.realign_max),
                "-maxfilt",
                str(s.maxfilt),
                "-min_prefilter_hits",
                str(s.min_prefilter_hits),
                "-v",
                "0",
            ]
            for db in self.databases:
                cmd += ["-d", db]
            _run(cmd, f"hhblits of {name} against {', '.join(self.databases)}")
            with open(a3m) as fh:
                text = fh.read()
        rows = len(parsers.parse_a3m(text, "hhblits output"))
        seconds = time.perf_counter() - start
        logger.info("hhblits %s vs %s: %d hits in %.1f s", name, self.role, rows - 1, seconds)
        return SearchResult(
            self.role, self.tool, self.version, "a3m", text, rows - 1, seconds, self.cache_settings()
        )


# ---------------------------------------------------------------------------------------------- mmseqs2


@dataclasses.dataclass(frozen=True)
class MmseqsSettings:
    iterations: int = 3
    sensitivity: float = 5.7  # mmseqs' default -s
    max_rows: int | None = None


class MmseqsSearch:
    """MMseqs2 iterative profile search of a query against a FASTA (or MMseqs2) database, A3M out.

    A FASTA database is converted with ``mmseqs createdb`` once per instance, in a temporary directory.
    """

    tool = "mmseqs2"

    def __init__(
        self,
        database: str | os.PathLike,
        role: str,
        settings: MmseqsSettings = MmseqsSettings(),
        cpus: int = 2,
        binary: str = "mmseqs",
    ):
        self.database = os.fspath(database)
        if not os.path.isfile(self.database):
            raise UserError(self.database, f"{role} database not found")
        self.role = role
        self.settings = settings
        self.cpus = cpus
        self.binary = binary
        self._workdir: tempfile.TemporaryDirectory | None = None
        self._db: str | None = None

    @property
    def version(self) -> str:
        return f"MMseqs2 {binary_version(self.binary, 'version')}"

    def cache_settings(self) -> dict:
        return {"tool": "mmseqs2", **dataclasses.asdict(self.settings)}

    def _target_db(self) -> str:
        if os.path.exists(self.database + ".dbtype"):
            return self.database
        if self._db is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="mmseqs-db-")
            self._db = os.path.join(self._workdir.name, "db")
            _run(
                [self.binary, "createdb", self.database, self._db, "-v", "1"],
                f"mmseqs createdb of {self.database}",
            )
        return self._db

    def close(self) -> None:
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir, self._db = None, None

    def search(self, name: str, sequence: str) -> SearchResult:
        s = self.settings
        start = time.perf_counter()
        target = self._target_db()
        with tempfile.TemporaryDirectory(prefix="mmseqs-") as tmp:
            fasta = _query_fasta(tmp, name, sequence)
            q, res, out = (os.path.join(tmp, n) for n in ("q", "res", "out.a3m"))
            threads = ["--threads", str(self.cpus), "-v", "1"]
            _run([self.binary, "createdb", fasta, q, "-v", "1"], "mmseqs createdb of the query")
            _run(
                [
                    self.binary,
                    "search",
                    q,
                    target,
                    res,
                    os.path.join(tmp, "tmp"),
                    "--num-iterations",
                    str(s.iterations),
                    "-s",
                    str(s.sensitivity),
                    "-a",
                    *threads,
                ],
                f"mmseqs search of {name}",
            )
            _run(
                [self.binary, "result2msa", q, target, res, out, "--msa-format-mode", "6", *threads],
                f"mmseqs result2msa of {name}",
            )
            with open(out, encoding="utf-8", errors="replace") as fh:
                text = fh.read().replace("\x00", "")
        msa = parsers.parse_a3m(text, "mmseqs2 output")
        if s.max_rows is not None and len(msa) > s.max_rows:
            records = parsers.parse_fasta(text)[: s.max_rows]
            text = "".join(f">{h}\n{r}\n" for h, r in records)
            msa = msa.truncate(s.max_rows)
        seconds = time.perf_counter() - start
        logger.info("mmseqs2 %s vs %s: %d hits in %.1f s", name, self.role, len(msa) - 1, seconds)
        return SearchResult(
            self.role, self.tool, self.version, "a3m", text, len(msa) - 1, seconds, self.cache_settings()
        )
