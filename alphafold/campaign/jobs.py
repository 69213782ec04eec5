"""Entry points of the workflow's scripts (workflow/scripts/*.py): read the Snakemake job, call the package.

Each function takes Snakemake's ``snakemake`` object (input, output, params, log, resources, config) and
does nothing a plain function in this package could not be tested for.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from alphafold.campaign.campaign import Campaign
from alphafold.campaign.ledger import Ledger, ledger_table, write_ledger_tsv
from alphafold.campaign.runner import (
    BatchJob,
    StageUnavailable,
    alphafold_cmd,
    available_subcommands,
    require_subcommands,
    run_batch,
    run_batch_at_once,
    run_logged,
)
from alphafold.io_utils import write_text_atomic

log = logging.getLogger("alphafold.campaign")

# The `alphafold` subcommands the summary job runs (the campaign page), beside the stages' (stages.py).
SUMMARY_COMMANDS = ("report",)


def setup_logging(log_path: str) -> None:
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(log_path), logging.StreamHandler(sys.stderr)]
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def stage_work(stage: str):
    """The per-target work function of a stage, after checking its commands exist here."""
    from alphafold.campaign import stages

    table = {"msa_search": (stages.msa_search_work, False),
             "template_search": (stages.template_search_work, False),
             "features": (stages.features_work, False),
             "predict": (stages.predict_work, True),
             "outputs": (stages.outputs_work, False)}
    work, at_once = table[stage]
    require_subcommands(stages.STAGE_COMMANDS[stage])
    return work, at_once


def run_batch_job(smk) -> int:
    stage = smk.params.stage
    job = BatchJob(
        stage=stage, batch=smk.wildcards.batch, members=list(smk.params.members), config=smk.config,
        output_dir=Path(smk.config["output_dir"]), settings=dict(smk.params.settings),
        attempt=int(smk.resources.attempt), max_attempts=int(smk.config["campaign"]["retries"]) + 1,
        threads=int(smk.threads), devices=int(getattr(smk.wildcards, "devices", 1) or 1),
        upstream=Path(smk.input.upstream) if hasattr(smk.input, "upstream") else None,
    )
    try:
        work, at_once = stage_work(stage)
    except StageUnavailable as err:
        log.error("%s", err)
        return 3
    return (run_batch_at_once if at_once else run_batch)(job, work, Path(smk.output[0]))


def summary(smk) -> int:
    campaign = Campaign.from_config(smk.config, validated=True)
    ledger = Ledger.of(campaign.output_dir)
    rows = ledger_table(ledger, campaign.targets, campaign.batch_of())
    write_ledger_tsv(rows, smk.output.ledger)
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        counts.setdefault(r["stage"], {}).setdefault(r["state"], 0)
        counts[r["stage"]][r["state"]] += 1
    failed = [{"key": r["key"], "name": r["name"], "stage": r["stage"], "failure_type": r["failure_type"]}
              for r in rows if r["state"] == "failed"]
    write_text_atomic(smk.output.counts, json.dumps(
        {"targets": len(campaign.targets), "batches": len(campaign.batches), "counts": counts,
         "failed": failed}, indent=1, sort_keys=True))
    log.info("campaign summary: %s; ledger table %s", counts, smk.output.ledger)
    targets_dir = campaign.output_dir / "targets"
    if targets_dir.is_dir() and set(SUMMARY_COMMANDS) <= available_subcommands():
        page = campaign.output_dir / "index.html"
        result = run_logged(alphafold_cmd(*SUMMARY_COMMANDS, targets_dir, "--output", page), Path(smk.log[0]))
        if result.returncode != 0:
            log.error("the campaign page could not be written (see %s)", smk.log[0])
            return 1
        log.info("campaign page: %s", page)
    return 0


def main_from_snakemake(smk) -> None:
    setup_logging(str(smk.log[0]))
    rule = smk.rule
    entry = {"summary": summary}.get(rule, run_batch_job)
    sys.exit(entry(smk))
