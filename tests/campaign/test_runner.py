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


def test_manifest_lists_outputs_and_the_next_stage_reads_them(tmp_path):
    manifest = tmp_path / "m.json"
    assert run_batch(make_job(tmp_path, 2, 2), writer({"k1": 1}), manifest) == 0
    m = json.loads(manifest.read_text())
    assert set(m["outputs"]) == {"k0", "k2", "k3"}
    assert Path(m["outputs"]["k2"]["res"]).read_text() == "ok"
    nxt = BatchJob(stage="next", batch="s-1", members=MEMBERS, config={}, output_dir=tmp_path,
                   settings={}, upstream=manifest)
    assert nxt.upstream_outputs("k0") == m["outputs"]["k0"]
    assert nxt.upstream_outputs("k1") is None  # failed upstream
    Path(m["outputs"]["k3"]["res"]).unlink()
    assert nxt.upstream_outputs("k3") is None  # its file went missing: not an input to use


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


def fake_predict_batch(served: list[list[str]], kill_after: list[int]):
    """predict-batch's contract: <key>.npz per staged features file, existing outputs skipped. Each call
    appends the keys it predicted to ``served``; ``kill_after`` = [n] interrupts the next call after n."""
    import numpy as np

    from alphafold.io_utils import save_npz_atomic

    def run(cmd, log_path, timeout=None):
        staging, out = Path(cmd[cmd.index("predict-batch") + 1]), Path(cmd[cmd.index("--output-dir") + 1])
        report: dict = {}
        served.append([])
        for f in sorted(staging.glob("*.npz")):
            target = out / f.name
            if target.exists():
                report[f.stem] = {"status": "skipped"}
                continue
            if kill_after and len(served[-1]) == kill_after[0]:
                kill_after.clear()
                raise SystemExit(143)  # SIGTERM (a cancelled job) in the middle of the batch
            seconds = float(len(served))
            save_npz_atomic(target, {"meta/timings/predict": np.array(seconds)})
            report[f.stem] = {"status": "done", "seconds": seconds, "attempts": 1, "tp": 1}
            served[-1].append(f.stem)
        (out / "predict_batch.json").write_text(json.dumps(report))
        return CommandResult(0, 0.1)

    return run


PREDICT_CONFIG = {"model": {"preset": "model_1_ptm", "params_dir": None, "num_recycle": 0},
                  "predict": {"memory_budget_gb": 1, "max_attempts": 1, "device": "cpu", "ray_address": None}}


def mark_features(tmp_path, key, digest):
    features = tmp_path / f"{key}.features.npz"
    features.write_bytes(b"")
    Ledger.of(tmp_path).mark_done("features", key, digest, 0.0, outputs={"processed": str(features)})


def run_predict(tmp_path, settings, members=MEMBERS[:2]):
    from alphafold.campaign import stages
    from alphafold.campaign.runner import run_batch_at_once

    job = BatchJob(stage="predict", batch="s-1", members=members, config=PREDICT_CONFIG,
                   output_dir=tmp_path, settings=settings)
    return run_batch_at_once(job, stages.predict_work, tmp_path / "manifest.json")


def test_prediction_outputs_kept_for_a_rerun_discarded_on_new_settings(tmp_path, monkeypatch):
    """predict-batch keeps existing outputs (a rerun after an interruption predicts nothing twice); the
    prediction stage first removes the pending targets' outputs made under other settings, so a changed
    preset or recycle count is predicted again instead of reusing the old files."""
    from alphafold.campaign import stages

    served: list[list[str]] = []
    kill_after: list[int] = []
    monkeypatch.setattr(stages, "run_logged", fake_predict_batch(served, kill_after))
    ledger = Ledger.of(tmp_path)
    for m in MEMBERS[:2]:
        mark_features(tmp_path, m["key"], "f")

    def run(recycles):
        return run_predict(tmp_path, {"features": "f", "num_recycle": recycles})

    assert run(0) == 0
    kill_after.append(1)
    with pytest.raises(SystemExit):
        run(3)  # new settings: both predicted again, interrupted after k0
    assert run(3) == 0  # the rerun: k0 of these settings kept, k1 predicted
    k0 = ledger.read_record("predict", "k0")
    assert k0["outputs"]["reused"] and k0["seconds"] == 2.0  # the time it took in the interrupted call
    assert run(1) == 0  # other settings again: both predicted
    assert served == [["k0", "k1"], ["k0"], ["k1"], ["k0", "k1"]]
    assert ledger.read_record("predict", "k0")["seconds"] == 4.0


def test_prediction_never_uses_features_or_outputs_of_other_settings(tmp_path, monkeypatch):
    """After a settings change: a target whose features failed under the new settings is not predicted
    from its old features; its old prediction is removed, not taken later as one of the new settings;
    and a return to the old settings after an interrupted run predicts again what that run removed."""
    from alphafold.campaign import stages

    served: list[list[str]] = []
    kill_after: list[int] = []
    monkeypatch.setattr(stages, "run_logged", fake_predict_batch(served, kill_after))
    ledger = Ledger.of(tmp_path)
    old, new = {"features": "f-old", "num_recycle": 0}, {"features": "f-new", "num_recycle": 0}
    for m in MEMBERS[:2]:
        mark_features(tmp_path, m["key"], "f-old")
    assert run_predict(tmp_path, old) == 0
    mark_features(tmp_path, "k0", "f-new")  # new features: k0's built, k1's failed (its old record stays)
    assert run_predict(tmp_path, new) == 0
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["done"] == ["k0"] and m["failed"] == {"k1": "missing_input"}
    assert not (tmp_path / "predict" / "outputs" / "s-1" / "k1.npz").exists()  # old prediction removed
    mark_features(tmp_path, "k1", "f-new")  # k1's features built on a rerun
    assert run_predict(tmp_path, new) == 0
    assert ledger.read_record("predict", "k1")["outputs"].get("reused") is None  # predicted, not reused
    assert served == [["k0", "k1"], ["k0"], ["k1"]]
    # Back to the old settings, with their features, after an interrupted run of the new ones: the old
    # completion records no longer describe the files, so both are predicted again.
    for m in MEMBERS[:2]:
        mark_features(tmp_path, m["key"], "f-old")
    assert run_predict(tmp_path, old) == 0
    assert served[-1] == ["k0", "k1"]
    kill_after.append(1)
    for m in MEMBERS[:2]:
        mark_features(tmp_path, m["key"], "f-new")
    with pytest.raises(SystemExit):
        run_predict(tmp_path, new)
    for m in MEMBERS[:2]:
        mark_features(tmp_path, m["key"], "f-old")
    assert run_predict(tmp_path, old) == 0
    assert served[-1] == ["k0", "k1"]


def test_outputs_stage_never_writes_from_a_prediction_of_other_settings(tmp_path, monkeypatch):
    from alphafold.campaign import stages

    calls: list = []
    monkeypatch.setattr(stages, "run_logged", lambda cmd, log, timeout=None: calls.append(cmd))
    ledger = Ledger.of(tmp_path)
    ledger.mark_done("features", "k0", "f-old", 0.0, outputs={"raw": "raw.npz"})
    ledger.mark_done("predict", "k0", "p-old", 0.0, outputs={"prediction": "k0.npz"},
                     settings_detail={"features": "f-old"})
    job = BatchJob(stage="outputs", batch="s-1", members=MEMBERS[:1], config={"predict": {"relax": False}},
                   output_dir=tmp_path, settings={"predict": "p-new", "relax": False})
    outputs, failure = stages.outputs_work(job, MEMBERS[0])  # its prediction failed under p-new
    assert outputs == {} and failure.failure_type == "missing_input"
    ledger.mark_done("predict", "k0", "p-new", 0.0, outputs={"prediction": "k0.npz"},
                     settings_detail={"features": "f-new"})
    outputs, failure = stages.outputs_work(job, MEMBERS[0])  # predicted from features no longer recorded
    assert outputs == {} and failure.failure_type == "missing_input"
    assert calls == []


def test_a_stage_never_runs_a_target_its_previous_stage_did_not_finish(tmp_path):
    from alphafold.campaign import stages

    manifest = tmp_path / "msa_search.json"
    msas = tmp_path / "msas.json"
    msas.write_text("{}")
    manifest.write_text(json.dumps({"done": ["k0"], "outputs": {"k0": {"msas": str(msas)}},
                                    "failed": {"k1": "error"}}))
    job = BatchJob(stage="template_search", batch="s-1", members=MEMBERS, config={}, output_dir=tmp_path,
                   settings={}, upstream=manifest)
    for work in (stages.template_search_work, stages.features_work):
        outputs, failure = work(job, MEMBERS[1])  # failed upstream: no command is run
        assert outputs == {} and failure.failure_type == "missing_input"
    assert not (tmp_path / "logs").exists()
