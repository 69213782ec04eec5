"""`alphafold prepare-targets`: validate and deduplicate inputs into the campaign's targets table."""

from __future__ import annotations

import argparse
import collections
import logging

from alphafold.cli.argtypes import positive_int
from alphafold.data import inputs
from alphafold.errors import UserError
from alphafold.io_utils import write_text_atomic

logger = logging.getLogger(__name__)


def add_tier_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--single-device-max-length", type=positive_int, default=inputs.TierPolicy.single_device_max_length,
        metavar="L", help="longest sequence one device fits (default %(default)s); P devices fit L*sqrt(P)")
    parser.add_argument("--device-counts", default=",".join(map(str, inputs.TierPolicy.device_counts)),
                        metavar="P,P,...", help="device counts of the tiers (default %(default)s)")


def tier_policy(args: argparse.Namespace) -> inputs.TierPolicy:
    try:
        counts = tuple(int(x) for x in args.device_counts.split(","))
    except ValueError:
        raise UserError(None, f"--device-counts {args.device_counts!r}: expected integers like 1,2,4") \
            from None
    if args.single_device_max_length <= 0 or not counts or min(counts) <= 0 or 1 not in counts:
        raise UserError(None, "--single-device-max-length must be > 0 and --device-counts must include 1")
    return inputs.TierPolicy(args.single_device_max_length, counts)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare-targets",
        help="validate and deduplicate FASTA/A3M/Stockholm/sample-sheet inputs into a targets table",
        description="Reads the inputs, checks every sequence, merges identical sequences (every name kept as "
                    "an alias), sanitises names, assigns each target its device tier, and writes a TSV with "
                    "columns: " + " ".join(inputs.TARGETS_COLUMNS),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="FASTA, A3M, Stockholm or TSV sample sheet")
    p.add_argument("--output", required=True, metavar="TARGETS.tsv")
    p.add_argument("--allow-too-long", action="store_true",
                   help="list targets longer than the largest tier (tier 'too_long') instead of failing")
    add_tier_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    policy = tier_policy(args)
    targets = inputs.read_targets(args.inputs)
    too_long = [t for t in targets if inputs.tier_for_length(t.length, policy) == inputs.TOO_LONG]
    if too_long and not args.allow_too_long:
        t = too_long[0]
        raise UserError(t.source.rsplit(":", 1)[0], f"sequence of {t.length} residues is longer than the "
                        f"largest tier allows ({policy.limits()[-1][1]}); use --allow-too-long to list it "
                        "anyway",
                        record=t.name)
    write_text_atomic(args.output, inputs.write_targets_table(targets, policy))
    tiers = collections.Counter(inputs.tier_for_length(t.length, policy) for t in targets)
    aliases = sum(len(t.aliases) - 1 for t in targets)
    logger.info("%d unique targets (%d duplicate names merged as aliases); tiers: %s; wrote %s",
                len(targets), aliases, ", ".join(f"{k}={v}" for k, v in sorted(tiers.items())), args.output)
    return 0
