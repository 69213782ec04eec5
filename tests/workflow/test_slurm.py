"""The workflow on a real single-node SLURM (cluster/testcluster/), through the shipped SLURM profile.

The cluster is started by the session fixture (as root) and stopped afterwards. Jobs are submitted by
Snakemake's SLURM executor plugin with cluster/profiles/slurm unchanged, except that status checks start
after 2 s instead of 20 (the test cluster answers at once).
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import numpy as np
import pytest

from alphafold.campaign.campaign import Campaign
from alphafold.campaign.config import load_config_file
from alphafold.campaign.ledger import STAGES, Ledger
from tests.campaign.conftest import EXAMPLE_FASTA
from tests.conftest import ROOT
from tests.workflow.conftest import (
    TINY_LENGTHS,
    changed,
    check_finished_campaign,
    finished_artifacts,
    kill_group,
    kill_marked,
    marked_processes,
    no_marked_process_left,
    predict_outputs,
    process_mark,
    run_snakemake,
    squeue_all,
    start_snakemake,
    starts,
    tiny_campaign,
    wait_for,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

FAST_STATUS = ("--slurm-init-seconds-before-status-checks", "2")


def rule_jobs(env, rule):
    return [j for j in squeue_all(env) if j["comment"].startswith(f"rule_{rule}")]


def test_slurm_campaign_with_a_cancelled_job_that_is_retried(testcluster, tmp_path):
    """Two real proteins: targets table, random params, MSA search + features, each batch a SLURM job."""
    out = tmp_path / "campaign"
    fasta = tmp_path / "two.fasta"
    fasta.write_text("".join(">" + r for r in EXAMPLE_FASTA.read_text().split(">")[1:3]))
    overrides = {"targets": str(fasta), "output_dir": str(out)}
    config = load_config_file(ROOT / "config" / "config.yaml", overrides)
    campaign = Campaign.from_config(config, validated=True)
    features = [f"{out}/batches/features/{b}.json" for b in sorted(campaign.batches)]
    targets = [f"{out}/targets.tsv", f"{out}/params/params_model_1_ptm.npz", *features]
    args = (*FAST_STATUS, "--config", f"targets={fasta}", f"output_dir={out}", "--", *targets)
    before = {j["id"] for j in squeue_all(testcluster)}
    proc = start_snakemake(*args, profile="slurm", timeout=600, env=testcluster,
                           log=tmp_path / "snakemake.log")
    try:
        # Cancel the first job of the random-params rule as soon as SLURM lists it (pending or running):
        # the plugin reports it CANCELLED, Snakemake resubmits it (retries from the config).
        def new_job():
            return [j for j in rule_jobs(testcluster, "random_params") if j["id"] not in before]

        first = wait_for(new_job, timeout=120, what="the random_params job in squeue")[0]
        subprocess.run(["scancel", first["id"]], env={**os.environ, **testcluster}, check=True)
        rc = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    log = (tmp_path / "snakemake.log").read_text()
    assert rc == 0, log[-5000:]
    jobs = [j for j in rule_jobs(testcluster, "random_params") if j["id"] not in before]
    states = {j["id"]: j["state"] for j in jobs}
    assert states[first["id"]] == "CANCELLED"
    assert sorted(states.values()) == ["CANCELLED", "COMPLETED"], states
    assert [j["state"] for j in rule_jobs(testcluster, "prepare_targets") if j["id"] not in before] == [
        "COMPLETED"]
    # The outputs are whole: the params load (no pickle) and are labelled untrained; 5 targets listed.
    with np.load(targets[1], allow_pickle=False) as params:
        assert len(params.files) > 100
    assert len((out / "targets.tsv").read_text().splitlines()) == 3
    # Each batch's MSA search, template search and feature building ran as three SLURM jobs, each with
    # the memory the resource functions give its stage.
    for stage in ("msa_search", "template_search", "features"):
        stage_jobs = [j for j in rule_jobs(testcluster, stage) if j["id"] not in before]
        assert len(stage_jobs) == len(campaign.batches), stage
        expected_mem = sorted(f"{campaign.resources(stage, b)['mem_mb']}M" for b in campaign.batches)
        assert sorted(j["mem"] for j in stage_jobs) == expected_mem, stage
        assert all(j["state"] == "COMPLETED" for j in stage_jobs), stage
    feature_jobs = [j for j in rule_jobs(testcluster, "features") if j["id"] not in before]
    ledger = Ledger.of(out)
    for t in campaign.targets:
        record = ledger.read_record("features", t.key)
        assert record["slurm_job"] in {j["id"] for j in feature_jobs}  # provenance: which SLURM job
        with np.load(record["outputs"]["processed"], allow_pickle=False) as f:
            assert f["aatype"].shape[-1] == t.length
    # The documented rerun command does nothing more: no new SLURM job.
    submitted = {j["id"] for j in squeue_all(testcluster)}
    again = run_snakemake(*args, profile="slurm", timeout=200, env=testcluster)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert {j["id"] for j in squeue_all(testcluster)} == submitted


def test_slurm_whole_campaign_one_protein(testcluster, tmp_path):
    """Every stage as SLURM jobs: features on the cpu partition, prediction (a local Ray inside the job)
    on the gpu partition with one (fake) GPU asked for by the profile, outputs, summary and campaign page."""
    out = tmp_path / "campaign"
    fasta = tmp_path / "one.fasta"
    fasta.write_text(">" + EXAMPLE_FASTA.read_text().split(">")[2])
    before = {j["id"] for j in squeue_all(testcluster)}
    run_snakemake(*FAST_STATUS, "--config", f"targets={fasta}", f"output_dir={out}", profile="slurm",
                  timeout=900, env=testcluster)
    summary = json.loads((out / "summary" / "campaign.json").read_text())
    assert summary["counts"] == {stage: {"done": 1} for stage in STAGES}
    jobs = {j["comment"].split("_wildcards")[0]: j for j in squeue_all(testcluster) if j["id"] not in before}
    assert jobs["rule_predict"]["partition"] == "gpu"
    assert {jobs[f"rule_{s}"]["partition"] for s in ("msa_search", "template_search", "features")} == {"cpu"}

    def job_text(job):
        return subprocess.run(["scontrol", "show", "job", job["id"]], capture_output=True, text=True,
                              env={**os.environ, **testcluster}, check=True, timeout=30).stdout

    assert re.search(r"gres[/:]gpu[:=]1\b", job_text(jobs["rule_predict"]))
    assert not re.search(r"gres[/:]gpu", job_text(jobs["rule_features"]))
    assert all(j["state"] == "COMPLETED" for j in jobs.values()), {k: j["state"] for k, j in jobs.items()}
    (target_dir,) = (out / "targets").iterdir()
    assert (target_dir / "ranked_0.pdb").is_file() and (out / "index.html").is_file()


def test_slurm_cancelled_prediction_without_retries_then_rerun(testcluster, tmp_path, shared_params):
    """No retries: the batch's prediction job is cancelled (``scancel``) while it runs, one target predicted
    and the next in progress. Snakemake reports the failure and stops; the documented rerun command (the
    same command: Snakemake ended by itself, nothing to unlock) finishes the campaign, predicting only the
    targets that were not finished, and every output loads whole. The stages before prediction run locally
    first (each SLURM job costs at least half a minute of the plugin's status polling here)."""
    out, args = tiny_campaign(tmp_path, params_dir=shared_params, retries=0)
    mark = process_mark()  # inherited by the SLURM jobs (the profile's sbatch exports the environment)
    env = {**testcluster, **mark}
    run_snakemake(*args, "--omit-from", "predict", env=mark, timeout=600)
    assert not predict_outputs(out)
    before = {j["id"] for j in squeue_all(testcluster)}
    log = tmp_path / "snakemake.log"
    proc = start_snakemake(*FAST_STATUS, *args, profile="slurm", timeout=900, env=env, log=log)
    try:
        wait_for(lambda: predict_outputs(out) or proc.poll() is not None, timeout=600, interval=0.1,
                 what="the first predicted target")
        assert proc.poll() is None, log.read_text()[-3000:]
        (job,) = [j for j in rule_jobs(testcluster, "predict") if j["id"] not in before]
        # The job's processes carry the mark (so the check below that none outlives the job means something).
        assert any("predict-batch" in cmd for _, cmd in marked_processes(mark)), marked_processes(mark)
        subprocess.run(["scancel", job["id"]], env={**os.environ, **testcluster}, check=True, timeout=30)
        rc = proc.wait(timeout=600)
        # SLURM ended every process of the cancelled job, its local Ray included.
        no_marked_process_left(mark, timeout=60)
    finally:
        if proc.poll() is None:
            kill_group(proc)
        kill_marked(mark)
    text = log.read_text()
    assert rc != 0 and "predict" in text, text[-3000:]
    states = {j["id"]: j["state"] for j in squeue_all(testcluster)}
    assert states[job["id"]] == "CANCELLED", states
    finished = set(predict_outputs(out))
    assert 1 <= len(finished) < len(TINY_LENGTHS), finished
    assert not (out / "summary" / "campaign.json").exists()
    snapshot = finished_artifacts(out)

    submitted = {j["id"] for j in squeue_all(testcluster)}
    run_snakemake(*FAST_STATUS, *args, profile="slurm", timeout=900, env=env)
    check_finished_campaign(out)
    assert not changed(snapshot, out), "a finished target was recomputed"
    for stage in STAGES:  # no target started twice in a per-target stage (prediction: one call per batch)
        assert stage == "predict" or set(starts(out, stage).values()) == {1}, (stage, starts(out, stage))
    report = json.loads(next((out / "predict" / "outputs").glob("*/predict_batch.json")).read_text())
    assert {k for k, r in report.items() if r["status"] == "skipped"} == finished, report
    rerun = {j["comment"].split("_wildcards")[0]: j["state"] for j in squeue_all(testcluster)
             if j["id"] not in submitted}
    assert rerun == {f"rule_{rule}": "COMPLETED" for rule in ("predict", "outputs", "summary")}, rerun
    # The profile's GPU mapping: the prediction jobs on the gpu partition, one (fake) GPU each.
    predict_jobs = [j for j in rule_jobs(testcluster, "predict") if j["id"] not in before]
    assert len(predict_jobs) == 2 and {j["partition"] for j in predict_jobs} == {"gpu"}
