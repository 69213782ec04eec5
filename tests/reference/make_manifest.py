"""Write DeepMind's true parameter layout of the ten monomer presets as JSON. Runs INSIDE the reference venv.

    cd /tmp && env -u PYTHONPATH $REFVENV/bin/python tests/reference/make_manifest.py OUTDIR

One file per preset, OUTDIR/<preset>.json: {"preset", "num_tensors", "num_params", "blocks",
"shapes": {"<haiku path>//<param>": [shape...]}} for the full-size model (48 Evoformer, 4 extra-MSA,
2 template pair blocks), from a shape-only trace of haiku's init (no parameter is materialised).
Triangle multiplications unfused, as in DeepMind's real monomer files.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_fixture  # noqa: E402
import refcommon  # noqa: E402

log = logging.getLogger("make_manifest")


def manifest(preset: str) -> dict:
    cfg = refcommon.reference_config(preset, num_recycle=0, zero_init=False)
    # Any processed features will do: parameter shapes do not depend on them. A small real window.
    case = dict(make_fixture.CASES["reduced_template"])
    uses_templates = bool(cfg.model.embeddings_and_evoformer.template.enabled)
    if not uses_templates:
        case["template"] = None
    raw, _ = make_fixture.raw_features(case)
    feats = make_fixture.processed_features(raw, cfg, seed=0)
    batch0 = {k: v[0] for k, v in feats.items()}
    specs = refcommon.param_specs(cfg.model, batch0)
    evo = cfg.model.embeddings_and_evoformer
    return {
        "preset": preset,
        "num_tensors": len(specs),
        "num_params": int(sum(_size(shape) for shape, _, _ in specs.values())),
        "blocks": {
            "evoformer": int(evo.evoformer_num_block),
            "extra_msa": int(evo.extra_msa_stack_num_block),
            "template_pair_stack": int(evo.template.template_pair_stack.num_block) if uses_templates else 0,
        },
        "shapes": {key: list(specs[key][0]) for key in sorted(specs)},
    }


def _size(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def dump(m: dict) -> str:
    """JSON with one parameter per line, so diffs between presets read well."""
    head = {k: v for k, v in m.items() if k != "shapes"}
    lines = [json.dumps(head, sort_keys=True)[:-1] + ', "shapes": {']
    items = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in m["shapes"].items()]
    lines.append(",\n".join(items))
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--presets", nargs="*", default=list(refcommon.MONOMER_PRESETS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[manifest] %(message)s", stream=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    for preset in args.presets:
        m = manifest(preset)
        path = args.out / f"{preset}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(dump(m))
        tmp.replace(path)
        log.info("%s: %d tensors, %d parameters -> %s", preset, m["num_tensors"], m["num_params"], path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
