"""What one batch job does: run a stage's command for each pending target and record the outcome.

A batch job (one Snakemake job) walks its targets; a target whose completion record for the stage exists
with the current settings digest is skipped, so a rerun after any interruption (a killed Snakemake, a
cancelled SLURM job, a node failure) recomputes nothing that finished. Each target's command writes its
outputs under temporary names and renames them (the stage CLIs do), and the completion record is written
last, so a target is either done with all outputs in place or not done.

Failures: each failed target gets a ``failed`` event with its failure type (``ledger.FAILURE_TYPES``).
If a retryable failure remains and this is not the last attempt, the job exits non-zero so Snakemake
retries it with escalated resources (:mod:`alphafold.campaign.resources`); on the last attempt the failures
are recorded in the batch manifest and the campaign carries on (the summary lists them). A bad input
(exit code 2), a target whose earlier stage failed, or one the runtime refuses is never retried.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from alphafold.campaign.ledger import Ledger, classify_exit, settings_digest
from alphafold.io_utils import write_text_atomic

log = logging.getLogger("alphafold.campaign")

TOOL_PACKAGES = ("alphafold-hpc", "torch", "numpy", "pyhmmer", "ray", "snakemake")
# Failures more resources cannot fix: recorded at once, never a reason to retry the batch job.
NOT_RETRYABLE = frozenset({"bad_input", "missing_input", "refused"})


class StageUnavailable(RuntimeError):
    """The ``alphafold`` subcommand a stage needs is not part of this installation."""


def tool_versions() -> dict[str, str | None]:
    versions = {}
    for pkg in TOOL_PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return versions


def available_subcommands() -> set[str]:
    import argparse

    from alphafold.cli import build_parser

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def require_subcommands(names: Sequence[str]) -> None:
    have = available_subcommands()
    missing = [n for n in names if n not in have]
    if missing:
        raise StageUnavailable(
            f"this installation has no `alphafold {' / '.join(missing)}` command; the stage cannot run")


def alphafold_cmd(*args: str | os.PathLike) -> list[str]:
    """``python -m alphafold ARGS`` with the interpreter running this job (its env, its package)."""
    return [sys.executable, "-m", "alphafold", *map(str, args)]


@dataclass
class CommandResult:
    returncode: int
    seconds: float
    timed_out: bool = False
    failure_type: str | None = None  # set when the exit status alone would misclassify the failure


def run_logged(cmd: Sequence[str], log_path: Path, timeout: float | None = None) -> CommandResult:
    """Run ``cmd`` with stdout and stderr appended to ``log_path``; never raises on failure."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log_path, "a") as fh:
        fh.write(f"$ {' '.join(map(str, cmd))}\n")
        fh.flush()
        try:
            proc = subprocess.run(list(map(str, cmd)), stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
            return CommandResult(proc.returncode, time.monotonic() - start)
        except subprocess.TimeoutExpired:
            return CommandResult(-9, time.monotonic() - start, timed_out=True)


@dataclass
class BatchJob:
    """One stage over one batch: the context a stage's per-target work needs."""

    stage: str
    batch: str
    members: list[dict]
    config: Mapping
    output_dir: Path
    settings: dict
    attempt: int = 1
    max_attempts: int = 1
    threads: int = 1
    devices: int = 1
    upstream: Path | None = None  # the previous stage's batch manifest (this job's input), if any
    ledger: Ledger = field(init=False)

    def __post_init__(self):
        self.output_dir = Path(self.output_dir)
        self.ledger = Ledger.of(self.output_dir)
        self.digest = settings_digest(self.settings)
        self._upstream_manifest: dict | None = None

    def upstream_outputs(self, key: str) -> dict | None:
        """The outputs the previous stage's manifest lists for ``key`` when that stage finished it and every
        listed file is present; None otherwise (it failed there, or its files went missing)."""
        if self.upstream is None:
            return None
        if self._upstream_manifest is None:
            try:
                self._upstream_manifest = json.loads(Path(self.upstream).read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                self._upstream_manifest = {}
        outputs = self._upstream_manifest.get("outputs", {}).get(key)
        if outputs is None or key not in self._upstream_manifest.get("done", []):
            return None
        files = [v for v in outputs.values() if isinstance(v, str)]
        return outputs if all(Path(f).exists() for f in files) else None

    def target_log(self, key: str) -> Path:
        return self.output_dir / "logs" / self.stage / "targets" / f"{key}.log"

    def pending(self) -> list[dict]:
        return [m for m in self.members if not self.ledger.is_done(self.stage, m["key"], self.digest)]

    def provenance(self) -> dict:
        return {"settings_detail": self.settings, "tools": tool_versions(), "batch": self.batch,
                "attempt": self.attempt}


# A stage's per-target work: returns (outputs, failure) where failure is None or a CommandResult.
TargetWork = Callable[[BatchJob, dict], tuple[dict, CommandResult | None]]


@dataclass
class Outcome:
    """What a batch-level command did for one target."""

    outputs: dict
    failure: CommandResult | None
    seconds: float
    failure_type: str | None = None  # overrides the exit-status classification (e.g. "refused")


# A stage whose command serves the whole batch at once (prediction): pending members -> outcome per key.
BatchWork = Callable[[BatchJob, list[dict]], dict[str, Outcome]]


def _raise_on_term(signum, frame):
    raise SystemExit(128 + signum)


def run_batch(job: BatchJob, work: TargetWork, manifest_path: Path) -> int:
    """Run ``work`` for each pending target of ``job``; write the manifest; return the exit code."""
    signal.signal(signal.SIGTERM, _raise_on_term)  # SLURM's scancel: record the kill, then exit
    pending = job.pending()
    log.info("%s batch %s (attempt %d/%d): %d targets, %d already done, %d to run",
             job.stage, job.batch, job.attempt, job.max_attempts, len(job.members),
             len(job.members) - len(pending), len(pending))
    failures: dict[str, str] = {}
    for i, member in enumerate(pending, 1):
        key = member["key"]
        job.ledger.event(key, job.stage, "started", batch=job.batch, attempt=job.attempt)
        log.info("[%d/%d] %s %s (%s, %d residues)", i, len(pending), job.stage, member["name"], key,
                 len(member["sequence"]))
        start = time.monotonic()
        try:
            outputs, failure = work(job, member)
        except SystemExit:
            job.ledger.event(key, job.stage, "failed", batch=job.batch, attempt=job.attempt,
                             failure_type="killed")
            raise
        if failure is None:
            job.ledger.mark_done(job.stage, key, job.digest, time.monotonic() - start, name=member["name"],
                                 outputs=outputs, **job.provenance())
            log.info("    done in %.1f s", time.monotonic() - start)
        else:
            ftype = failure.failure_type or classify_exit(failure.returncode, failure.timed_out)
            failures[key] = ftype
            job.ledger.event(key, job.stage, "failed", batch=job.batch, attempt=job.attempt,
                             failure_type=ftype, returncode=failure.returncode,
                             seconds=round(failure.seconds, 3), log=str(job.target_log(key)))
            log.error("    FAILED (%s, exit %d); log: %s", ftype, failure.returncode, job.target_log(key))
    return finish_batch(job, failures, manifest_path)


def run_batch_at_once(job: BatchJob, work: BatchWork, manifest_path: Path) -> int:
    """Like :func:`run_batch` for a stage whose command takes all pending targets in one call."""
    signal.signal(signal.SIGTERM, _raise_on_term)
    pending = job.pending()
    log.info("%s batch %s (attempt %d/%d): %d targets, %d already done, %d to run in one call",
             job.stage, job.batch, job.attempt, job.max_attempts, len(job.members),
             len(job.members) - len(pending), len(pending))
    for member in pending:
        job.ledger.event(member["key"], job.stage, "started", batch=job.batch, attempt=job.attempt)
    try:
        outcomes = work(job, pending) if pending else {}
    except SystemExit:
        for member in pending:
            job.ledger.event(member["key"], job.stage, "failed", batch=job.batch, attempt=job.attempt,
                             failure_type="killed")
        raise
    failures: dict[str, str] = {}
    for member in pending:
        key = member["key"]
        outcome = outcomes.get(key) or Outcome({}, CommandResult(1, 0.0), 0.0, "missing_output")
        if outcome.failure is None:
            job.ledger.mark_done(job.stage, key, job.digest, outcome.seconds, name=member["name"],
                                 outputs=outcome.outputs, **job.provenance())
        else:
            failure = outcome.failure
            ftype = outcome.failure_type or classify_exit(failure.returncode, failure.timed_out)
            failures[key] = ftype
            job.ledger.event(key, job.stage, "failed", batch=job.batch, attempt=job.attempt,
                             failure_type=ftype, returncode=failure.returncode, log=str(job.target_log(key)))
            log.error("%s %s FAILED (%s)", job.stage, member["name"], ftype)
    return finish_batch(job, failures, manifest_path)


def finish_batch(job: BatchJob, failures: dict[str, str], manifest_path: Path) -> int:
    """Exit non-zero for a retry while retryable failures remain, else write the batch manifest."""
    retryable = {k: v for k, v in failures.items() if v not in NOT_RETRYABLE}
    if retryable and job.attempt < job.max_attempts:
        log.error("%d target(s) failed; exiting non-zero so the batch is retried with more resources "
                  "(attempt %d of %d)", len(retryable), job.attempt + 1, job.max_attempts)
        return 1
    done, outputs = [], {}
    for m in job.members:
        record = job.ledger.read_record(job.stage, m["key"])
        if record is not None and record.get("settings") == job.digest:
            done.append(m["key"])
            outputs[m["key"]] = record.get("outputs", {})
    # The manifest is the next stage's input: it names each finished target's files.
    manifest = {"stage": job.stage, "batch": job.batch, "settings": job.digest, "done": done,
                "outputs": outputs, "failed": failures, "attempt": job.attempt}
    write_text_atomic(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
    log.info("%s batch %s finished: %d done, %d failed; manifest %s", job.stage, job.batch, len(done),
             len(failures), manifest_path)
    return 0
