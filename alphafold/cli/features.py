"""`alphafold features`: MSA (and template) search and raw AF2 features for every target of an input."""

from __future__ import annotations

import argparse
import logging
import os

from alphafold.cli.argtypes import non_negative_int, positive_int
from alphafold.data import inputs
from alphafold.data.msa_pipeline import MSA_MODES, STAGES, DataConfig, FeatureBuilder
from alphafold.data.store import FeatureStore
from alphafold.errors import UserError

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "features",
        help="search MSAs (jackhmmer/hhblits/mmseqs2) and templates, write raw features per target",
        description="For each unique target of INPUT (FASTA, A3M, Stockholm, sample sheet or a targets table "
        "from prepare-targets) writes OUT/<target>/features.npz (AF2's raw features), the MSAs "
        "used (OUT/<target>/msas/) and OUT/<target>/features.json (tools, versions, databases, "
        "timings, hit counts). Searches are cached in --store by sequence, database identity and "
        "settings, so reruns and repeated sequences reuse them. --stage splits the work as the "
        "workflow does: `msa` writes OUT/<target>/msas/ and msas.json; `templates` reads them and writes "
        "OUT/<target>/templates.npz and templates.json; `features` searches nothing and assembles "
        "features.npz and features.json from those files; `all` (default) runs the three in turn.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--output-dir", required=True, metavar="OUT")
    p.add_argument(
        "--stage",
        choices=STAGES,
        default="all",
        help="run only the MSA search, the template search or the assembly of features (default %(default)s)",
    )
    p.add_argument("--uniref90", metavar="FASTA", help="UniRef90-style FASTA database (jackhmmer/mmseqs2)")
    p.add_argument("--mgnify", metavar="FASTA", help="MGnify-style FASTA database (jackhmmer/mmseqs2)")
    p.add_argument("--bfd", metavar="DB", help="BFD-style HH-suite database prefix (hhblits)")
    p.add_argument("--uniref30", metavar="DB", help="UniRef30-style HH-suite database prefix (hhblits)")
    p.add_argument(
        "--msa-mode",
        choices=MSA_MODES,
        default="jackhmmer",
        help="search tool for the MSAs (default %(default)s, as AF2)",
    )
    p.add_argument(
        "--a3m",
        metavar="FILE",
        help="use this alignment (A3M/Stockholm, query first) for the "
        "target instead of searching; needs a single target",
    )
    p.add_argument("--pdb-seqres", metavar="FILE", help="PDB seqres FASTA for the template search")
    p.add_argument("--mmcif-dir", metavar="DIR", help="directory of mmCIF files for templates")
    p.add_argument("--max-template-date", metavar="YYYY-MM-DD")
    p.add_argument("--max-templates", type=non_negative_int, default=4, metavar="N")
    p.add_argument(
        "--template-tool",
        choices=("hmmsearch", "hhsearch"),
        default="hmmsearch",
        help="hmmsearch of --pdb-seqres (AF2 v2.3's default) or hhsearch of --pdb70",
    )
    p.add_argument(
        "--pdb70", metavar="DB", help="PDB70-style HH-suite database prefix (--template-tool hhsearch)"
    )
    p.add_argument(
        "--jackhmmer-iterations",
        type=positive_int,
        default=1,
        metavar="N",
        help="jackhmmer iterations (default %(default)s, AF2's setting)",
    )
    p.add_argument("--uniref-max-hits", type=positive_int, default=10_000, metavar="N")
    p.add_argument("--mgnify-max-hits", type=positive_int, default=501, metavar="N")
    p.add_argument(
        "--cpus",
        type=positive_int,
        default=min(8, os.cpu_count() or 1),
        metavar="N",
        help="threads for the search tools (default %(default)s)",
    )
    p.add_argument(
        "--store", metavar="DIR", help="feature store shared across runs and targets (default OUT/.store)"
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="NAME_OR_KEY",
        help="build only these targets (name, alias or key; repeatable)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    targets = inputs.read_targets(args.inputs)
    if args.only:
        wanted = set(args.only)
        targets = [t for t in targets if wanted & ({t.key, t.name} | set(t.aliases))]
        found = {x for t in targets for x in ({t.key, t.name} | set(t.aliases))}
        missing = sorted(wanted - found)
        if missing:
            raise UserError(None, f"--only: no target named {', '.join(missing)} in {', '.join(args.inputs)}")
    if args.a3m and len(targets) != 1:
        raise UserError(args.a3m, f"--a3m applies to a single target, the input has {len(targets)}")
    config = DataConfig(
        msa_mode=args.msa_mode,
        uniref90=args.uniref90,
        mgnify=args.mgnify,
        bfd=args.bfd,
        uniref30=args.uniref30,
        jackhmmer_iterations=args.jackhmmer_iterations,
        uniref_max_hits=args.uniref_max_hits,
        mgnify_max_hits=args.mgnify_max_hits,
        cpus=args.cpus,
        pdb_seqres=args.pdb_seqres,
        mmcif_dir=args.mmcif_dir,
        max_template_date=args.max_template_date,
        max_templates=args.max_templates,
        user_msa=args.a3m,
        template_tool=args.template_tool,
        pdb70=args.pdb70,
    )
    store = FeatureStore(args.store or os.path.join(args.output_dir, ".store"))
    builder = FeatureBuilder(config, store)
    failed = []
    for index, target in enumerate(targets, start=1):
        logger.info(
            "[%d/%d] %s (%d residues, key %s)", index, len(targets), target.name, target.length, target.key
        )
        try:
            builder.build(target, args.output_dir, args.stage)
        except RuntimeError as err:  # a search tool failed on this target: say so, go on with the others
            logger.error("%s: failed: %s", target.name, err)
            failed.append(target.name)
    what = "features" if args.stage == "all" else f"stage {args.stage} outputs"
    logger.info("%s for %d target(s) written under %s", what, len(targets) - len(failed), args.output_dir)
    if failed:
        logger.error("%d target(s) failed (exit code 1): %s", len(failed), ", ".join(failed))
        return 1
    return 0
