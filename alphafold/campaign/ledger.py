"""The campaign ledger: what is done, what failed and why, with timings and provenance.

Two kinds of files under ``<output_dir>/ledger/``:

- ``done/<stage>/<key>.json``: a target's **completion record** for a stage, written atomically (temporary
  name, then rename) after the stage's outputs are in place. A target is done for a stage when, and only
  when, this record exists and its ``settings`` digest equals the current one; a partial output file never
  counts. Records carry timings and provenance (preset, params-file hash, database identities, tool
  versions).
- ``events.jsonl``: an append-only log of state changes (``started``, ``done``, ``failed`` with a failure
  type, ``skipped``), one JSON object per line, each written with a single ``O_APPEND`` write so concurrent
  batch jobs on one file system interleave whole lines. A line cut short by a kill is ignored on reading.

:func:`ledger_table` folds both into one row per (target, stage): the table ``ledger.tsv`` the campaign
summary writes and the progress display reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from alphafold.io_utils import write_text_atomic

# The per-target stages of a campaign, in workflow order (each is one rule, one batch job per batch).
STAGES = ("msa_search", "template_search", "features", "predict", "outputs")

# Failure types recorded in the ledger (and the summary): what a user or operator should do differs.
FAILURE_TYPES = {
    "bad_input": "the stage rejected the target's input (exit code 2): fix the input, rerun",
    "timeout": "the stage exceeded its time limit: retried with more time",
    "out_of_memory": "killed for memory (SIGKILL / exit 137): retried with more memory",
    "killed": "killed by a signal (cancelled job, node failure)",
    "error": "the stage failed (non-zero exit): see the target's log",
    "missing_output": "the stage exited 0 but its output file is missing",
    "missing_input": "an earlier stage failed for this target, so this one could not run",
    "refused": "the runtime refused the target (too large for the devices the batch may use)",
}


def settings_digest(settings: Mapping) -> str:
    """A short stable digest of a stage's settings (search options, database identities, preset...)."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_identity(path: str | os.PathLike | None) -> dict | None:
    """A cheap identity of a (possibly huge) database file: resolved path, size and modification time.

    Hashing a 70 GB database on every run is not an option; a replaced or regenerated database changes size
    or mtime. Directories (e.g. the mmCIF mirror) are identified by path and mtime.
    """
    if path is None:
        return None
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size if p.is_file() else None, "mtime": int(st.st_mtime)}


def classify_exit(returncode: int, timed_out: bool = False) -> str:
    """The failure type of a stage command's exit status (subprocess convention: -N is signal N)."""
    if timed_out:
        return "timeout"
    if returncode == 2:
        return "bad_input"
    if returncode in (-9, 137):
        return "out_of_memory"
    if returncode < 0 or returncode > 128:
        return "killed"
    return "error"


@dataclass(frozen=True)
class Ledger:
    """The ledger of one campaign (``root`` is ``<output_dir>/ledger``)."""

    root: Path

    @classmethod
    def of(cls, output_dir: str | os.PathLike) -> Ledger:
        return cls(Path(output_dir) / "ledger")

    def record_path(self, stage: str, key: str) -> Path:
        return self.root / "done" / stage / f"{key}.json"

    def read_record(self, stage: str, key: str) -> dict | None:
        path = self.record_path(stage, key)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            # Records are renamed into place whole; an unreadable one is not a completion.
            return None

    def is_done(self, stage: str, key: str, settings: str) -> bool:
        record = self.read_record(stage, key)
        return record is not None and record.get("settings") == settings

    def event(self, key: str, stage: str, state: str, **fields) -> None:
        entry = {"time": round(time.time(), 3), "key": key, "stage": stage, "state": state,
                 "host": socket.gethostname(), "slurm_job": os.environ.get("SLURM_JOB_ID"), **fields}
        # A leading newline too: a line torn by a kill never swallows the next event.
        line = ("\n" + json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def mark_done(self, stage: str, key: str, settings: str, seconds: float, **fields) -> dict:
        """Write the completion record (atomically) and log a ``done`` event."""
        record = {"key": key, "stage": stage, "settings": settings, "seconds": round(seconds, 3),
                  "finished": round(time.time(), 3), "host": socket.gethostname(),
                  "slurm_job": os.environ.get("SLURM_JOB_ID"), **fields}
        text = json.dumps(record, indent=1, sort_keys=True, default=str)
        write_text_atomic(self.record_path(stage, key), text)
        self.event(key, stage, "done", seconds=round(seconds, 3))
        return record

    def events(self) -> Iterable[dict]:
        path = self.root / "events.jsonl"
        if not path.exists():
            return
        with open(path) as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill

    def done_keys(self, stage: str) -> set[str]:
        """Keys with a completion record of ``stage``; the temporary a kill left mid-write
        (``.KEY.json.XXXX.tmp.json``, see ``atomic_path``) is not one."""
        d = self.root / "done" / stage
        return {p.stem for p in d.glob("*.json") if not p.name.startswith(".")} if d.is_dir() else set()


LEDGER_COLUMNS = ("key", "name", "length", "batch", "stage", "state", "attempts", "failure_type",
                  "seconds", "finished", "settings", "slurm_job", "host")


def ledger_table(ledger: Ledger, targets: Iterable, batch_of: Mapping[str, str],
                 stages: Iterable[str] = STAGES) -> list[dict]:
    """One row per (target, stage): ``done`` from its completion record, else the last event's state
    (``failed`` with its type, ``running`` if started and not finished), else ``pending``."""
    last: dict[tuple[str, str], dict] = {}
    attempts: dict[tuple[str, str], int] = {}
    for ev in ledger.events():
        k = (ev.get("key"), ev.get("stage"))
        last[k] = ev
        if ev.get("state") == "started":
            attempts[k] = attempts.get(k, 0) + 1
    rows = []
    for t in targets:
        for stage in stages:
            rec = ledger.read_record(stage, t.key)
            ev = last.get((t.key, stage), {})
            row = {"key": t.key, "name": t.name, "length": t.length, "batch": batch_of.get(t.key, ""),
                   "stage": stage, "attempts": attempts.get((t.key, stage), 0), "failure_type": "",
                   "seconds": "", "finished": "", "settings": "", "slurm_job": "", "host": ""}
            if rec is not None:
                row.update(state="done", seconds=rec.get("seconds", ""), finished=rec.get("finished", ""),
                           settings=rec.get("settings", ""), slurm_job=rec.get("slurm_job") or "",
                           host=rec.get("host", ""))
            elif ev.get("state") == "failed":
                row.update(state="failed", failure_type=ev.get("failure_type", "error"),
                           slurm_job=ev.get("slurm_job") or "", host=ev.get("host", ""))
            elif ev.get("state") == "started":
                row.update(state="running", slurm_job=ev.get("slurm_job") or "", host=ev.get("host", ""))
            else:
                row["state"] = "pending"
            rows.append(row)
    return rows


def write_ledger_tsv(rows: list[dict], path: str | os.PathLike) -> None:
    lines = ["\t".join(LEDGER_COLUMNS)]
    for r in rows:
        lines.append("\t".join("" if r.get(c) is None else str(r[c]) for c in LEDGER_COLUMNS))
    write_text_atomic(path, "\n".join(lines) + "\n")
