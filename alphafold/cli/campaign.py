"""`alphafold campaign`: plan a campaign (batches, resources) and watch its progress.

    alphafold campaign plan [--configfile config/config.yaml] [KEY=VALUE ...]
    alphafold campaign status OUTPUT_DIR [--watch SECONDS]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

import yaml

from alphafold.cli.argtypes import positive_float
from alphafold.errors import UserError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("campaign", help="plan a campaign or watch its progress",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    plan = actions.add_parser("plan", help="targets, batches and resources of a campaign config")
    plan.add_argument("--configfile", default="config/config.yaml")
    plan.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                      help="top-level config overrides, as snakemake --config (e.g. targets=x.fasta)")
    plan.set_defaults(func=run_plan)
    status = actions.add_parser("status", help="live progress display of a running or finished campaign")
    status.add_argument("output_dir", type=Path)
    status.add_argument("--watch", type=positive_float, metavar="SECONDS",
                        help="refresh every SECONDS until the campaign is finished")
    status.set_defaults(func=run_status)


def _overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(None, f"override {item!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def run_plan(args: argparse.Namespace) -> int:
    from alphafold.campaign.campaign import Campaign
    from alphafold.campaign.config import load_config_file
    from alphafold.campaign.ledger import STAGES

    config = load_config_file(args.configfile, _overrides(args.overrides))
    campaign = Campaign.from_config(config, validated=True)
    batches = campaign.batches.values()
    print(f"{len(campaign.targets)} unique targets in {len(campaign.batches)} batches "
          f"({len(STAGES) * len(campaign.batches)} batch jobs over {', '.join(STAGES)})")
    by_tier = Counter(b.tier.name for b in batches)
    for tier in campaign.tiers:
        members = [b for b in batches if b.tier.name == tier.name]
        if not members:
            continue
        sizes = [b.size for b in members]
        devices = sorted({b.devices for b in members})
        worst = max(members, key=lambda b: b.max_length)
        res = campaign.resources("predict", worst.id)
        print(f"  {tier.name:5s} <= {tier.max_length:5d} residues: {by_tier[tier.name]:4d} batches, "
              f"{sum(sizes):6d} targets ({min(sizes)}-{max(sizes)} per batch), devices {devices}, "
              f"largest predict job {res['mem_mb']} MB / {res['runtime']} min")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from alphafold.campaign.progress import watch
    from alphafold.data.inputs import read_targets_table

    table = args.output_dir / "targets.tsv"
    if not table.is_file():
        raise UserError(str(table), "no targets table yet (the campaign's first rule writes it)")
    keys = [t.key for t in read_targets_table(table)]
    try:
        return watch(args.output_dir, keys, args.watch or 0, sys.stdout, once=args.watch is None)
    except KeyboardInterrupt:
        return 0
