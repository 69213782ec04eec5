"""A batch job: skips finished targets, records failures, retries, writes its manifest last.

The per-target work here is a small real subprocess written in the test (the orchestration is under
test, not a stage); the stages' own commands are exercised by the workflow tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from alphafold.campaign.ledger import Ledger
from alphafold.campaign.runner import (
    BatchJob,
    CommandResult,
    StageUnavailable,
    require_subcommands,
    run_batch,
    run_logged,
)

MEMBERS = [{"key": f"k{i}", "name": f"t{i}", "sequence": "MKV" * (i + 1), "a3m": None} for i in range(4)]


def make_job(tmp_path, attempt=1, max_attempts=3, settings=None):
    return BatchJob(stage="features", batch="s-1", members=MEMBERS, config={}, output_dir=tmp_path,
                    settings=settings or {"db": "x"}, attempt=attempt, max_attempts=max_attempts)


def writer(fail: dict[str, int] | None = None, calls: list | None = None):
    """Work that writes <out>/res/<key>.txt in a subprocess; exits with fail[key] for the listed keys."""
    def work(job, member):
        if calls is not None:
            calls.append(member["key"])
        out = Path(job.output_dir) / "res" / f"{member['key']}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        code = (fail or {}).get(member["key"], 0)
        script = f"import sys; open({str(out)!r}, 'w').write('ok'); sys.exit({code})"
        result = run_logged([sys.executable, "-c", script], job.target_log(member["key"]))
        return ({"res": str(out)}, None) if result.returncode == 0 else ({}, result)
    return work


def test_all_done_then_rerun_recomputes_nothing(tmp_path):
    calls: list = []
    manifest = tmp_path / "m.json"
    assert run_batch(make_job(tmp_path), writer(calls=calls), manifest) == 0
    assert calls == ["k0", "k1", "k2", "k3"]
    assert json.loads(manifest.read_text())["done"] == ["k0", "k1", "k2", "k3"]
    calls.clear()
    assert run_batch(make_job(tmp_path), writer(calls=calls), manifest) == 0
    assert calls == []
    # New settings (e.g. another database) make every target pending again.
    assert run_batch(make_job(tmp_path, settings={"db": "y"}), writer(calls=calls), manifest) == 0
    assert calls == ["k0", "k1", "k2", "k3"]


def test_retryable_failure_fails_the_job_until_last_attempt(tmp_path):
    manifest = tmp_path / "m.json"
    assert run_batch(make_job(tmp_path, 1, 2), writer({"k2": 137}), manifest) == 1
    assert not manifest.exists()
    calls: list = []
    # Second (last) attempt: k2 fails again; recorded, job succeeds, finished targets not recomputed.
    assert run_batch(make_job(tmp_path, 2, 2), writer({"k2": 1}, calls), manifest) == 0
    assert calls == ["k2"]
    m = json.loads(manifest.read_text())
    assert m["done"] == ["k0", "k1", "k3"] and m["failed"] == {"k2": "error"}
    events = list(Ledger.of(tmp_path).events())
    failures = [e["failure_type"] for e in events if e["state"] == "failed"]
    assert failures == ["out_of_memory", "error"]


def test_bad_input_is_not_retried(tmp_path):
    manifest = tmp_path / "m.json"
    assert run_batch(make_job(tmp_path, 1, 3), writer({"k1": 2}), manifest) == 0
    assert json.loads(manifest.read_text())["failed"] == {"k1": "bad_input"}


def test_missing_stage_command_is_named():
    with pytest.raises(StageUnavailable, match="no `alphafold no-such-stage` command"):
        require_subcommands(["no-such-stage"])


def test_missing_input_is_recorded_not_retried(tmp_path):
    def needs_earlier_stage(job, member):
        return {}, CommandResult(1, 0.0, failure_type="missing_input")

    manifest = tmp_path / "m.json"
    assert run_batch(make_job(tmp_path, 1, 3), needs_earlier_stage, manifest) == 0
    assert set(json.loads(manifest.read_text())["failed"].values()) == {"missing_input"}


def test_batch_at_once_records_each_target(tmp_path):
    from alphafold.campaign.runner import Outcome, run_batch_at_once

    seen: list = []

    def serve(job, pending):
        seen.append([m["key"] for m in pending])
        return {"k0": Outcome({"prediction": "p0"}, None, 2.0),
                "k1": Outcome({}, CommandResult(1, 1.0), 0.0, "refused")}  # k2, k3: no outcome at all

    manifest = tmp_path / "m.json"
    assert run_batch_at_once(make_job(tmp_path, 1, 2), serve, manifest) == 1  # k2, k3 retryable
    assert run_batch_at_once(make_job(tmp_path, 2, 2), serve, manifest) == 0
    assert seen == [["k0", "k1", "k2", "k3"], ["k1", "k2", "k3"]]  # k0 done: not served again
    m = json.loads(manifest.read_text())
    assert m["done"] == ["k0"]
    assert m["failed"] == {"k1": "refused", "k2": "missing_output", "k3": "missing_output"}
