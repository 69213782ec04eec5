"""Every kind of local interruption, then the documented rerun command (docs/campaigns.md).

- kill -9 of Snakemake and everything in its process group, in the middle of each stage in turn (the first
  stage, prediction while its local Ray runs, outputs), each followed by ``--unlock`` and the same command;
- a fold-worker Ray actor killed (SIGKILL, found by the pid the driver logs) while it predicts a target:
  the runtime retries the target on a new actor and the workflow finishes by itself.

(A cancelled SLURM job: tests/workflow/test_slurm.py.) Each test checks that no finished target was
recomputed (every file a finished target owns keeps its inode and mtime, no second ``started`` event, the
ledger's timings kept), that nothing of the interrupted run is left running, and that every output of the
campaign loads whole. The campaigns are tiny random proteins in one batch with the reduced random-weight
model and no recycles; the kill points are found by watching the ledger, the outputs and the logs.
"""

from __future__ import annotations

import json
import os
import re
import signal

import numpy as np
import pytest

from alphafold.campaign.ledger import STAGES, Ledger
from tests.workflow.conftest import (
    TINY_LENGTHS,
    changed,
    check_finished_campaign,
    finished_artifacts,
    finished_keys,
    kill_group,
    kill_marked,
    no_marked_process_left,
    predict_outputs,
    process_mark,
    run_snakemake,
    start_snakemake,
    starts,
    tiny_campaign,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

N = len(TINY_LENGTHS)
# Where Snakemake is killed, in this order, in one campaign: the first stage (by the ledger's stage list,
# so a split of the feature stage moves the point with it), prediction, outputs.
KILL_POINTS = (STAGES[0], "predict", "outputs")


def test_kill_9_of_snakemake_in_every_stage_then_rerun_recomputes_nothing(tmp_path, shared_params):
    out, args = tiny_campaign(tmp_path, params_dir=shared_params)
    mark = process_mark()
    snapshot: dict = {}
    finished_at_kill: dict[str, set[str]] = {}
    try:
        for n_run, stage in enumerate(KILL_POINTS):
            log = tmp_path / f"run{n_run}.log"
            # The documented command (the first time, or the rerun after --unlock).
            proc = start_snakemake(*args, log=log, env=mark, timeout=600)
            try:
                wait_for(lambda: finished_keys(out, stage) or proc.poll() is not None, timeout=400,  # noqa: B023
                         interval=0.1, what=f"the first finished target of {stage}")
            finally:
                kill_group(proc)  # SIGKILL to Snakemake and the stage command (and its Ray) in its group
            # Nothing of the killed run may keep running (a local Ray's daemons and actors included).
            no_marked_process_left(mark)
            done = finished_keys(out, stage)
            assert 1 <= len(done) < N, f"{stage}: {done}\n{log.read_text()[-3000:]}"
            finished_at_kill[stage] = done
            assert not changed(snapshot, out), "a target finished before an earlier kill was redone"
            snapshot.update(finished_artifacts(out))
            run_snakemake(*args, "--unlock", env=mark, timeout=120)
        run_snakemake(*args, env=mark, timeout=600)
        no_marked_process_left(mark, timeout=30)
    finally:
        kill_marked(mark)

    check_finished_campaign(out)
    assert not changed(snapshot, out), "a finished target was recomputed or rewritten"
    # Per-target stages: no second start of a target that was finished when it was killed.
    for stage in KILL_POINTS:
        if stage != "predict":
            assert all(starts(out, stage)[k] == 1 for k in finished_at_kill[stage]), starts(out, stage)
    # Prediction (one call per batch): the rerun skipped the outputs that existed, and the ledger keeps
    # the wall time each took when it was computed (read back from the output's own record).
    report = json.loads(next((out / "predict" / "outputs").glob("*/predict_batch.json")).read_text())
    ledger = Ledger.of(out)
    for key in finished_at_kill["predict"]:
        assert report[key]["status"] == "skipped", report
        with np.load(predict_outputs(out)[key], allow_pickle=False) as f:
            took = float(f["meta/timings/predict"])
        assert took > 0 and ledger.read_record("predict", key)["seconds"] == pytest.approx(took, abs=1e-3)
    assert {k for k, r in report.items() if r["status"] == "done"} == {
        k for k in ledger.done_keys("predict") if k not in finished_at_kill["predict"]}
    # The killed run's local Ray could not remove its temporary directory; the rerun's did.
    logs = "".join(p.read_text() for p in (out / "logs" / "predict").rglob("*.log"))
    temps = re.findall(r"temporary directory (\S+)", logs)
    assert len(temps) == 2 and not any(os.path.exists(t) for t in temps), temps


DISPATCH = re.compile(r"(\w+) \(\d+ residues\) -> gang of \d+ \(pids \[([\d, ]+)\]\), attempt (\d+)")


def serving_unfinished(out) -> tuple[str, list[int]] | None:
    """(target, worker pids) when a worker has started a target whose output does not exist yet, after at
    least one other target finished; from the prediction job's log, where the driver logs each dispatch."""
    done = predict_outputs(out)
    if not done:
        return None
    text = "".join(p.read_text() for p in (out / "logs" / "predict").rglob("*.log"))
    dispatched = DISPATCH.findall(text)
    if not dispatched:
        return None
    key, pids, _ = dispatched[-1]
    return None if key in done else (key, [int(p) for p in pids.split(",")])


def test_killed_fold_worker_mid_target_is_retried_and_the_campaign_finishes(tmp_path, shared_params):
    out, args = tiny_campaign(tmp_path, params_dir=shared_params)
    mark = process_mark()
    log = tmp_path / "run.log"
    proc = start_snakemake(*args, log=log, env=mark, timeout=600)
    try:
        found = wait_for(lambda: serving_unfinished(out) or proc.poll() is not None, timeout=400,
                         interval=0.1, what="a worker predicting a target after another finished")
        assert proc.poll() is None, log.read_text()[-3000:]
        key, pids = found
        before = finished_artifacts(out)
        finished = set(predict_outputs(out))
        os.kill(pids[0], signal.SIGKILL)
        rc = proc.wait(timeout=600)
        assert rc == 0, log.read_text()[-5000:]
        no_marked_process_left(mark, timeout=30)
    finally:
        if proc.poll() is None:
            kill_group(proc)
        kill_marked(mark)

    check_finished_campaign(out)
    assert not changed(before, out), "a finished target was recomputed"
    report = json.loads(next((out / "predict" / "outputs").glob("*/predict_batch.json")).read_text())
    assert report[key]["status"] == "done" and report[key]["attempts"] == 2, report
    assert pids[0] not in report[key]["pids"]  # served again by a new worker
    assert all(report[k]["attempts"] == 1 for k in finished), report
    # The ledger says so too: the killed target took two attempts in its one prediction job.
    assert Ledger.of(out).read_record("predict", key)["outputs"]["attempts"] == 2
