# Shared setup: config validation, the campaign plan, and the input/resource functions of the rules.
import os
import sys

# The package of this checkout wins over any installed copy, here and in every job's script.
_REPO = workflow.basedir
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
os.environ["PYTHONPATH"] = os.pathsep.join([_REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
# `python` in the rules' shell commands is the interpreter running Snakemake (its venv), unless a rule's
# conda env is active (--sdm conda puts the env's bin first at job time).
_BIN = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ["PATH"] = os.pathsep.join([_BIN, os.environ.get("PATH", "")])

from alphafold.campaign.campaign import Campaign
from alphafold.campaign.config import validate_config

_validated = validate_config(config)
config.clear()
config.update(_validated)
CAMPAIGN = Campaign.from_config(config, validated=True)
OUT = str(CAMPAIGN.output_dir)
BATCHES = sorted(CAMPAIGN.batches)


wildcard_constraints:
    batch=r"[A-Za-z][A-Za-z0-9_]*-[0-9]+",
    devices=r"[0-9]+",


def batch_members(wildcards):
    """The batch's targets (key, names, sequence, alignment): the job's work list and a rerun trigger."""
    return CAMPAIGN.member_records(wildcards.batch)


def stage_resource(stage, name):
    """A resource function for Snakemake: estimate for the job's batch at its attempt (escalates)."""

    def resource(wildcards, attempt):
        return CAMPAIGN.resources(stage, wildcards.batch, attempt)[name]

    return resource


def job_attempt(wildcards, attempt):
    return attempt


def devices_of(batch_id):
    return CAMPAIGN.batches[batch_id].devices


def predict_manifest(batch_id):
    return f"{OUT}/batches/predict/d{devices_of(batch_id)}/{batch_id}.json"


def params_file():
    """DeepMind's params when model.params_dir is set, else the reduced random (UNTRAINED) model."""
    m = config["model"]
    if m["params_dir"]:
        return os.path.join(m["params_dir"], f"params_{m['preset']}.npz")
    return f"{OUT}/params/params_{m['preset']}.npz"
