"""`alphafold params`: inspect DeepMind params files, or write random ones in the same layout.

Implementation modules are imported inside the command functions: every `alphafold` invocation builds
every subcommand's parser, and none should pay for torch unless it runs the model.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from alphafold.cli.argtypes import non_negative_int, positive_int
from alphafold.params.presets import PRESETS

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("params", help="inspect or generate params files (DeepMind layout)")
    actions = parser.add_subparsers(dest="params_command", metavar="ACTION", required=True)

    rand = actions.add_parser(
        "random",
        help="write random, non-constant parameters in DeepMind's layout (outputs are labelled untrained)",
    )
    rand.add_argument("--preset", required=True, choices=sorted(PRESETS))
    rand.add_argument("--evoformer-blocks", type=positive_int, default=None, help="default: the released 48")
    rand.add_argument("--extra-msa-blocks", type=positive_int, default=None, help="default: the released 4")
    rand.add_argument("--template-blocks", type=positive_int, default=None, help="default: the released 2")
    rand.add_argument("--seed", type=non_negative_int, default=0)
    rand.add_argument("--out", required=True, type=Path, help="output .npz")
    rand.set_defaults(func=_random)

    info = actions.add_parser("info", help="preset, block counts and size of a params file")
    info.add_argument("file", type=Path)
    info.add_argument("--preset", default=None, help="default: inferred from the file name")
    info.set_defaults(func=_info)


def _random(args: argparse.Namespace) -> int:
    from alphafold.io_utils import save_npz_atomic
    from alphafold.params.random_params import random_params

    params = random_params(
        args.preset, args.evoformer_blocks, args.extra_msa_blocks, args.template_blocks, args.seed
    )
    save_npz_atomic(args.out, params)
    n = sum(v.size for k, v in params.items() if "//" in k and not k.startswith("__meta__"))
    log.info("wrote %s: random %s parameters (%d tensors, %d values, seed %d), labelled UNTRAINED",
             args.out, args.preset, len(params) - 3, n, args.seed)
    return 0


def _info(args: argparse.Namespace) -> int:
    import numpy as np

    from alphafold.params.loader import is_untrained, read_params
    from alphafold.params.presets import config_for_params, get_preset, preset_from_filename

    params, meta = read_params(args.file)
    preset = get_preset(args.preset) if args.preset else preset_from_filename(args.file)
    config = config_for_params(preset, params, where=str(args.file))
    total = sum(int(np.prod(v.shape)) for v in params.values())
    print(f"file:               {args.file}")
    print(f"preset:             {preset.name}")
    print(f"tensors:            {len(params)}")
    print(f"parameters:         {total:,}")
    print(f"evoformer blocks:   {config.evoformer.num_blocks}")
    print(f"extra-MSA blocks:   {config.extra_msa.num_blocks}")
    if config.template.enabled:
        print(f"template blocks:    {config.template.num_blocks}")
    print(f"untrained (random): {is_untrained(meta)}")
    return 0
