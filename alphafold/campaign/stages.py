"""The stages' per-target work: which ``alphafold`` commands a batch job runs for one target.

Each stage calls the stage's own command-line interface (the contract between the parts, see
docs/contracts.md) in a subprocess, with its output appended to the target's log.
"""

from __future__ import annotations

from pathlib import Path

from alphafold.campaign.runner import BatchJob, CommandResult, alphafold_cmd, run_logged
from alphafold.io_utils import write_text_atomic

FEATURES_COMMANDS = ("features", "process-features")


def features_paths(output_dir: Path, key: str) -> dict[str, Path]:
    root = Path(output_dir) / "features"
    return {"query": root / "queries" / f"{key}.fasta",
            "raw_root": root / "raw",
            "store": root / "store",
            "raw": root / "raw" / key / "features.npz",
            "processed": root / "processed" / f"{key}.npz"}


def features_work(job: BatchJob, member: dict) -> tuple[dict, CommandResult | None]:
    """MSA search, template search and raw features (``alphafold features``), then AF2's processing
    (``alphafold process-features``) into the processed ``.npz`` the model reads."""
    c = job.config
    key = member["key"]
    paths = features_paths(job.output_dir, key)
    # The record is named by the target key, so the raw features land in raw/<key>/features.npz.
    write_text_atomic(paths["query"], f">{key} {member['name']}\n{member['sequence']}\n")
    db = c["databases"]
    # Searches are cached in one store per campaign (by sequence, database identity and settings).
    cmd = alphafold_cmd("features", paths["query"], "--output-dir", paths["raw_root"], "--cpus", job.threads,
                        "--store", paths["store"])
    if member.get("msa"):
        cmd += ["--a3m", member["msa"]]
    if db["uniref90"]:
        cmd += ["--uniref90", db["uniref90"]]
    if db["mgnify"]:
        cmd += ["--mgnify", db["mgnify"]]
    if c["features"]["msa_mode"]:
        cmd += ["--msa-mode", c["features"]["msa_mode"]]
    if db["pdb_seqres"]:
        cmd += ["--pdb-seqres", db["pdb_seqres"], "--mmcif-dir", db["mmcif_dir"],
                "--max-template-date", db["max_template_date"]]
    logfile = job.target_log(key)
    result = run_logged(cmd, logfile)
    if result.returncode != 0:
        return {}, result
    if not paths["raw"].is_file():
        return {}, CommandResult(1, result.seconds)
    m = c["model"]
    process = alphafold_cmd("process-features", paths["raw"], "--preset", m["preset"], "--num-recycle",
                            m["num_recycle"], "--seed", m["seed"], "--out", paths["processed"])
    for key_, flag in (("max_msa_clusters", "--max-msa-clusters"), ("max_extra_msa", "--max-extra-msa")):
        if c["features"].get(key_) is not None:
            process += [flag, c["features"][key_]]
    result2 = run_logged(process, logfile)
    if result2.returncode != 0:
        return {}, result2
    return {"raw": str(paths["raw"]), "processed": str(paths["processed"])}, None
