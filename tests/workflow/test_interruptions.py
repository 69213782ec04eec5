"""Every kind of local interruption, then the documented rerun command (docs/campaigns.md).

One small campaign (three random proteins in one batch, the reduced random-weight model, 3 recycles) is
interrupted at every stage, each interruption found by watching the ledger, the outputs and the logs:

1. kill -9 of Snakemake and everything in its process group mid-way through the first stage;
2. kill -9 of Snakemake mid-way through prediction, its local Ray running (one target predicted);
3. in the rerun, the fold-worker Ray actor is killed (SIGKILL to the pid the driver logs) while it predicts
   a target: the runtime retries the target on a new worker and the run carries on by itself, until
4. kill -9 of Snakemake mid-way through outputs;

after each kill of Snakemake: ``--unlock``, then the same command; the last one finishes the campaign.
(A cancelled SLURM job: tests/workflow/test_slurm.py.) Checked: no finished target recomputed (every file
a finished target owns keeps its inode and mtime; no second ``started`` event; prediction outputs kept and
their timings in the ledger), nothing of a killed run left running, every output of the campaign whole.
One campaign for all of them keeps CI short (each run is the rerun of the previous interruption).
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

# Each target must take long enough to be caught mid-way: a 0.1 s poll sees the first output of a stage
# and kills before the next one is done. The tiny campaign's targets (19-31 residues, no recycles) took
# 0.07 s each on an idle machine, so all three were predicted before the kill; these take ~1 s there.
LENGTHS, NUM_RECYCLE = (61, 70, 79), 3
N = len(LENGTHS)
# The interruptions of each run of the documented command, in order; the first stage is taken from the
# ledger's stage list, so a split or rename of the feature stages moves the kill point with it.
RUNS = ([("snakemake", STAGES[0])],
        [("snakemake", "predict")],
        [("actor", "predict"), ("snakemake", "outputs")])

DISPATCH = re.compile(r"(\w+) \(\d+ residues\) -> gang of \d+ \(pids \[([\d, ]+)\]\), attempt (\d+)")


def predict_calls(out) -> list[str]:
    """The prediction job's log (appended to by every run), split into its predict-batch calls."""
    text = "".join(p.read_text() for p in sorted((out / "logs" / "predict").rglob("*.log")))
    return text.split("temporary directory")[1:]


def serving_unfinished(out, calls_before: int) -> tuple[str, int] | None:
    """(target, worker pid) when the worker of a predict-batch call newer than ``calls_before`` predicts a
    target whose output does not exist yet while another target's does; from the driver's dispatch lines."""
    done = predict_outputs(out)
    calls = predict_calls(out)
    if len(calls) <= calls_before or not done:
        return None
    dispatched = DISPATCH.findall(calls[-1])
    if not dispatched:
        return None
    key, pids, _ = dispatched[-1]
    return None if key in done else (key, int(pids.split(",")[0]))


def test_every_local_interruption_then_rerun_recomputes_nothing(tmp_path, shared_params):
    out, args = tiny_campaign(tmp_path, params_dir=shared_params, lengths=LENGTHS, num_recycle=NUM_RECYCLE)
    mark = process_mark()
    snapshot: dict = {}
    finished_at_kill: dict[str, set[str]] = {}
    actor_killed: tuple[str, int] | None = None
    try:
        for n_run, interruptions in enumerate(RUNS):
            log = tmp_path / f"run{n_run}.log"
            # The documented command (the first time, or the rerun after --unlock).
            calls_before = len(predict_calls(out))
            proc = start_snakemake(*args, log=log, env=mark, timeout=600)
            try:
                for kind, stage in interruptions:
                    if kind == "actor":
                        actor_killed = wait_for(
                            lambda: serving_unfinished(out, calls_before) or proc.poll() is not None,  # noqa: B023
                            timeout=400, interval=0.1, what="a worker mid-target")
                        assert proc.poll() is None, log.read_text()[-3000:]
                        os.kill(actor_killed[1], signal.SIGKILL)
                        continue
                    wait_for(lambda: finished_keys(out, stage) or proc.poll() is not None,  # noqa: B023
                             timeout=400, interval=0.1, what=f"the first finished target of {stage}")
                    kill_group(proc)  # SIGKILL to Snakemake and the stage command (and its Ray) in its group
                    # Nothing of the killed run may keep running (a local Ray's daemons and actors included).
                    no_marked_process_left(mark)
                    done = finished_keys(out, stage)
                    assert 1 <= len(done) < N, f"{stage}: {done}\n{log.read_text()[-3000:]}"
                    finished_at_kill[stage] = done
            finally:
                kill_group(proc)
            assert not changed(snapshot, out), "a target finished before an earlier kill was redone"
            snapshot.update(finished_artifacts(out))
            run_snakemake(*args, "--unlock", env=mark, timeout=120)
        run_snakemake(*args, env=mark, timeout=600)
        no_marked_process_left(mark, timeout=30)
    finally:
        kill_marked(mark)

    check_finished_campaign(out, LENGTHS)
    assert not changed(snapshot, out), "a finished target was recomputed or rewritten"
    # Per-target stages: no second start of a target that was finished when it was killed.
    for stage, done in finished_at_kill.items():
        if stage != "predict":
            assert all(starts(out, stage)[k] == 1 for k in done), starts(out, stage)
    # Prediction (one predict-batch call per batch). The call after the kill of Snakemake skipped the
    # outputs that existed, the ledger keeping the wall time each took (the output's own record); in it
    # the killed worker's target was predicted again by a new worker, and only that one.
    report = json.loads(next((out / "predict" / "outputs").glob("*/predict_batch.json")).read_text())
    ledger = Ledger.of(out)
    for key in finished_at_kill["predict"]:
        assert report[key]["status"] == "skipped", report
        with np.load(predict_outputs(out)[key], allow_pickle=False) as f:
            took = float(f["meta/timings/predict"])
        assert took > 0 and ledger.read_record("predict", key)["seconds"] == pytest.approx(took, abs=1e-3)
    key, pid = actor_killed
    assert key not in finished_at_kill["predict"]
    assert report[key]["status"] == "done" and report[key]["attempts"] == 2, report
    assert pid not in report[key]["pids"]  # served again by a new worker
    assert ledger.read_record("predict", key)["outputs"]["attempts"] == 2
    assert all(r["attempts"] == 1 for k, r in report.items() if r["status"] == "done" and k != key), report
    # The killed runs' local Ray could not remove its temporary directory; the rerun's did.
    logs = "".join(p.read_text() for p in (out / "logs" / "predict").rglob("*.log"))
    temps = re.findall(r"temporary directory (\S+)", logs)
    assert len(temps) == 2 and not any(os.path.exists(t) for t in temps), temps
