"""The stages' per-target work: which ``alphafold`` commands a batch job runs for one target.

Each stage calls the stage's own command-line interface (the contract between the parts, see
docs/contracts.md) in a subprocess, with its output appended to the target's log.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from alphafold.campaign.ledger import Ledger
from alphafold.campaign.runner import BatchJob, CommandResult, Outcome, alphafold_cmd, run_logged
from alphafold.io_utils import write_text_atomic

MSA_SEARCH_COMMANDS = ("features",)
TEMPLATE_SEARCH_COMMANDS = ("features",)
FEATURES_COMMANDS = ("features", "process-features")


def features_paths(output_dir: Path, key: str) -> dict[str, Path]:
    root = Path(output_dir) / "features"
    return {"query": root / "queries" / f"{key}.fasta",
            "raw_root": root / "raw",
            "store": root / "store",
            "msas": root / "raw" / key / "msas.json",
            "templates": root / "raw" / key / "templates.npz",
            "raw": root / "raw" / key / "features.npz",
            "processed": root / "processed" / f"{key}.npz"}


def _features_stage(job: BatchJob, member: dict, stage: str, *flags) -> tuple[dict, CommandResult]:
    """``alphafold features QUERY --stage STAGE`` for one target; its files land in raw/<key>/."""
    paths = features_paths(job.output_dir, member["key"])
    # The record is named by the target key, so every stage's files land in raw/<key>/.
    write_text_atomic(paths["query"], f">{member['key']} {member['name']}\n{member['sequence']}\n")
    # Searches are cached in one store per campaign (by sequence, database identity and settings).
    cmd = alphafold_cmd("features", paths["query"], "--stage", stage, "--output-dir", paths["raw_root"],
                        "--cpus", job.threads, "--store", paths["store"], *flags)
    return paths, run_logged(cmd, job.target_log(member["key"]))


def _output_check(result: CommandResult, *files: Path) -> CommandResult | None:
    if result.returncode != 0:
        return result
    if not all(f.is_file() for f in files):
        return CommandResult(1, result.seconds, failure_type="missing_output")
    return None


def msa_search_work(job: BatchJob, member: dict) -> tuple[dict, CommandResult | None]:
    """The target's MSA search (``alphafold features --stage msa``), or its own alignment."""
    db = job.config["databases"]
    flags: list = []
    if member.get("msa"):
        flags += ["--a3m", member["msa"]]
    if db["uniref90"]:
        flags += ["--uniref90", db["uniref90"]]
    if db["mgnify"]:
        flags += ["--mgnify", db["mgnify"]]
    if job.config["features"]["msa_mode"]:
        flags += ["--msa-mode", job.config["features"]["msa_mode"]]
    paths, result = _features_stage(job, member, "msa", *flags)
    failure = _output_check(result, paths["msas"])
    return ({}, failure) if failure else ({"msas": str(paths["msas"])}, None)


def template_search_work(job: BatchJob, member: dict) -> tuple[dict, CommandResult | None]:
    """The target's template search from its MSA (``alphafold features --stage templates``)."""
    if job.upstream_outputs(member["key"]) is None:  # its MSA search failed
        return {}, CommandResult(1, 0.0, failure_type="missing_input")
    db = job.config["databases"]
    flags: list = []
    if db["pdb_seqres"]:
        flags += ["--pdb-seqres", db["pdb_seqres"], "--mmcif-dir", db["mmcif_dir"],
                  "--max-template-date", db["max_template_date"]]
    paths, result = _features_stage(job, member, "templates", *flags)
    failure = _output_check(result, paths["templates"])
    return ({}, failure) if failure else ({"templates": str(paths["templates"])}, None)


def features_work(job: BatchJob, member: dict) -> tuple[dict, CommandResult | None]:
    """Raw features assembled from the target's MSAs and templates (``alphafold features --stage
    features``, no search), then AF2's processing (``alphafold process-features``) into the processed
    ``.npz`` the model reads."""
    c = job.config
    key = member["key"]
    if job.upstream_outputs(key) is None:  # its template search (or MSA search) failed
        return {}, CommandResult(1, 0.0, failure_type="missing_input")
    paths, result = _features_stage(job, member, "features")
    failure = _output_check(result, paths["raw"])
    if failure:
        return {}, failure
    m = c["model"]
    process = alphafold_cmd("process-features", paths["raw"], "--preset", m["preset"], "--num-recycle",
                            m["num_recycle"], "--seed", m["seed"], "--out", paths["processed"])
    for key_, flag in (("max_msa_clusters", "--max-msa-clusters"), ("max_extra_msa", "--max-extra-msa")):
        if c["features"].get(key_) is not None:
            process += [flag, c["features"][key_]]
    result2 = run_logged(process, job.target_log(key))
    if result2.returncode != 0:
        return {}, result2
    return {"raw": str(paths["raw"]), "processed": str(paths["processed"])}, None


PREDICT_COMMANDS = ("predict-batch",)
OUTPUTS_COMMANDS = ("write-outputs",)


def predict_paths(output_dir: Path, batch: str) -> dict[str, Path]:
    root = Path(output_dir) / "predict"
    return {"staging": root / "staging" / batch, "out": root / "outputs" / batch}


def params_dir(job: BatchJob) -> Path:
    m = job.config["model"]
    return Path(m["params_dir"]) if m["params_dir"] else job.output_dir / "params"


def predict_work(job: BatchJob, pending: list[dict]) -> dict[str, Outcome]:
    """All pending targets of the batch through Ray fold workers (``alphafold predict-batch``).

    The batch's processed features are linked into a staging directory as ``<key>.npz``; predict-batch
    writes ``<key>.npz`` model outputs (atomically, skipping existing ones) and ``predict_batch.json``
    with each target's status. Devices: the batch's device count bounds the gang size the runtime may
    choose for a target (``--max-tp``); GPUs are used when ``predict.device`` is ``cuda``.
    """
    c, p = job.config, job.config["predict"]
    paths = predict_paths(job.output_dir, job.batch)
    staging = paths["staging"]
    staging.mkdir(parents=True, exist_ok=True)
    for old in staging.glob("*.npz"):
        old.unlink()
    # Before anything is skipped as already predicted: every pending target's output of other settings goes.
    discard_other_settings(paths["out"], job.digest, [m["key"] for m in pending], job.ledger)
    runnable = []
    outcomes: dict[str, Outcome] = {}
    for member in pending:
        record = current_record(job, "features", member["key"], job.settings.get("features"))
        if record is None:  # its features failed (under these settings): nothing to predict
            outcomes[member["key"]] = Outcome({}, CommandResult(1, 0.0), 0.0, "missing_input")
            continue
        (staging / f"{member['key']}.npz").symlink_to(Path(record["outputs"]["processed"]).resolve())
        runnable.append(member)
    if not runnable:
        return outcomes
    cmd = alphafold_cmd("predict-batch", staging, "--output-dir", paths["out"],
                        "--params-dir", params_dir(job), "--preset", c["model"]["preset"],
                        "--max-tp", job.devices,
                        "--memory-budget-gb", p["memory_budget_gb"], "--num-cpus", max(job.threads, 1),
                        "--num-recycle", c["model"]["num_recycle"], "--max-attempts", p["max_attempts"])
    if p["device"] == "cuda":
        cmd += ["--gpus-per-rank", "1"]
    # An existing Ray cluster: the config's address, else the one cluster/ray-on-slurm.sh exported.
    address = p["ray_address"] or os.environ.get("AF_RAY_ADDRESS")
    if address:
        cmd += ["--ray-address", address]
    log_path = job.output_dir / "logs" / "predict" / "batches" / f"{job.batch}.log"
    result = run_logged(cmd, log_path)
    try:
        report = json.loads((paths["out"] / "predict_batch.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        report = {}
    for member in runnable:
        key = member["key"]
        entry = report.get(key, {})
        out = paths["out"] / f"{key}.npz"
        if entry.get("status") == "done" and out.is_file():
            outcomes[key] = Outcome({"prediction": str(out), "tp": entry.get("tp"),
                                     "attempts": entry.get("attempts"), "pids": entry.get("pids")}, None,
                                    float(entry.get("seconds") or 0.0))
        elif entry.get("status") == "skipped" and out.is_file():
            # Predicted by an earlier, interrupted run of this job (its ledger record was never written):
            # kept as it is, with the wall time it took then.
            outcomes[key] = Outcome({"prediction": str(out), "tp": entry.get("tp"), "reused": True}, None,
                                    recorded_predict_seconds(out))
        else:
            status = entry.get("status")
            outcomes[key] = Outcome({}, CommandResult(result.returncode or 1, result.seconds), 0.0,
                                    "refused" if status == "refused" else None)
    return outcomes


def current_record(job: BatchJob, stage: str, key: str, digest: str | None) -> dict | None:
    """``key``'s completion record of an earlier ``stage`` if it was made under ``digest`` (the digest of that
    stage's settings that this job's settings name), else None. A record of other settings is what is left
    of an earlier campaign run when the stage failed under the current ones: its files are not an input."""
    record = job.ledger.read_record(stage, key)
    return record if record is not None and digest is not None and record.get("settings") == digest else None


def discard_other_settings(out_dir: Path, digest: str, keys: list[str], ledger: Ledger) -> list[Path]:
    """Remove the prediction outputs of ``keys`` made under other settings than ``digest``.

    predict-batch keeps every output that exists, so that a rerun after an interruption predicts nothing
    twice. That is right only for outputs of the same settings: after a change of preset, params or
    recycles the old files must go. The batch's output directory records the digest it was filled under
    (``settings.txt``, written before predict-batch runs); the keys passed are all the pending ones (no
    completion record for ``digest``), runnable or not, so that no old file is left to be taken later for
    one of ``digest``. A directory without the stamp holds files of unknown settings: they go too. The
    prediction record of another digest of a removed file goes with it, so that a return to those settings
    does not take the record for a file that is no longer theirs.
    """
    stamp = out_dir / "settings.txt"
    removed = []
    if not stamp.is_file() or stamp.read_text().strip() != digest:
        for key in keys:
            path = out_dir / f"{key}.npz"
            if path.is_file():
                path.unlink()
                removed.append(path)
            record = ledger.read_record("predict", key)
            if record is not None and record.get("settings") != digest:
                ledger.record_path("predict", key).unlink()
    write_text_atomic(stamp, digest + "\n")
    return removed


def recorded_predict_seconds(prediction: Path) -> float:
    """The network's wall time a prediction output records (``meta/timings/predict``), 0.0 if none."""
    try:
        with np.load(prediction, allow_pickle=False) as f:
            return float(f["meta/timings/predict"]) if "meta/timings/predict" in f.files else 0.0
    except (OSError, ValueError, zipfile.BadZipFile):  # unreadable: no time on record, not a crash
        return 0.0


def outputs_work(job: BatchJob, member: dict) -> tuple[dict, CommandResult | None]:
    """PDB/ModelCIF, scores, PAE, ranking and plots of one target (``alphafold write-outputs``), with Amber
    relaxation when ``predict.relax`` is set. The target's directory is named by its (sanitised) name."""
    key = member["key"]
    prediction = current_record(job, "predict", key, job.settings.get("predict"))
    features = prediction and current_record(job, "features", key,
                                             prediction.get("settings_detail", {}).get("features"))
    if prediction is None or features is None:  # an earlier stage failed for this target (these settings)
        return {}, CommandResult(1, 0.0, failure_type="missing_input")
    target_dir = job.output_dir / "targets" / member["name"]
    cmd = alphafold_cmd("write-outputs", "--prediction", prediction["outputs"]["prediction"],
                        "--features", features["outputs"]["raw"], "--output-dir", target_dir,
                        "--target", member["name"])
    if job.config["predict"]["relax"]:
        cmd += ["--relax"]
    result = run_logged(cmd, job.target_log(key))
    if result.returncode != 0:
        return {}, result
    if not (target_dir / "summary.json").is_file():
        return {}, CommandResult(1, result.seconds, failure_type="missing_output")
    return {"target_dir": str(target_dir)}, None


# The `alphafold` subcommands each stage's batch job runs (checked before it starts; the conda envs of the
# rules are tested to cover what these import, tests/workflow/test_envs.py).
STAGE_COMMANDS = {"msa_search": MSA_SEARCH_COMMANDS, "template_search": TEMPLATE_SEARCH_COMMANDS,
                  "features": FEATURES_COMMANDS, "predict": PREDICT_COMMANDS, "outputs": OUTPUTS_COMMANDS}
