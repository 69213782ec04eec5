"""Random, non-constant parameters in DeepMind's exact params layout (for demos and tests).

The key set and shapes come from the manifest of the preset (``manifests/<preset>.json``, read off
DeepMind's own haiku model by the reference harness), with the stacked leading axes replaced by the
requested block counts. Every tensor is non-constant, so no block is accidentally the identity (DeepMind's
own initialiser zeroes the last layer of every residual branch). Each key draws from its own generator,
seeded by (seed, key), so a file with fewer blocks holds exactly the first blocks of a larger one.

Files written here carry ``__meta__//untrained = True``: every output made with them says so.
"""

from __future__ import annotations

import json
import zlib
from functools import cache
from importlib import resources

import numpy as np

from alphafold.errors import UserError
from alphafold.params.loader import META_PREFIX
from alphafold.params.presets import (
    EVOFORMER_STACK,
    EXTRA_MSA_STACK,
    PRESETS,
    ROOT_PREFIX,
    STACKED_PREFIXES,
    TEMPLATE_PAIR_STACK,
)


@cache
def manifest(preset: str) -> dict[str, tuple[int, ...]]:
    """DeepMind's key → full-size shape for a preset."""
    if preset not in PRESETS:
        raise UserError(None, f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    text = resources.files("alphafold.params").joinpath("manifests", f"{preset}.json").read_text()
    data = json.loads(text)
    shapes = data["shapes"] if "shapes" in data else data
    return {key: tuple(shape) for key, shape in shapes.items()}


def stacked_prefix(key: str) -> str | None:
    module = key[len(ROOT_PREFIX):].partition("//")[0]
    for prefix in STACKED_PREFIXES:
        if module == prefix or module.startswith(prefix + "/"):
            return prefix
    return None


def _draw(key: str, shape: tuple[int, ...], stacked: bool, seed: int) -> np.ndarray:
    """One tensor: LayerNorm scales 1+0.1·N, offsets/biases 0.1·N, weights N(0, 1/fan_in)."""
    name = key.rpartition("//")[2]
    blocks, inner = (shape[0], shape[1:]) if stacked else (1, shape)
    out = np.empty((blocks, *inner), dtype=np.float32)
    for b in range(blocks):
        rng = np.random.default_rng([seed, zlib.crc32(key.encode()), b])
        noise = rng.standard_normal(inner).astype(np.float32)
        if name == "scale":
            out[b] = 1.0 + 0.1 * noise
        elif name in ("offset", "bias") or name.endswith("_b"):
            out[b] = 0.1 * noise
        else:
            fan_in = int(np.prod(inner[:-1])) if name == "output_w" else (inner[0] if inner else 1)
            out[b] = noise / np.sqrt(np.float32(max(fan_in, 1)))
    return out if stacked else out[0]


def random_params(
    preset: str,
    evoformer_blocks: int | None = None,
    extra_msa_blocks: int | None = None,
    template_blocks: int | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Random parameters for ``preset``; block counts default to the released model's."""
    counts = {EVOFORMER_STACK: evoformer_blocks, EXTRA_MSA_STACK: extra_msa_blocks,
              TEMPLATE_PAIR_STACK: template_blocks}
    for prefix, count in counts.items():
        if count is not None and count < 1:
            raise UserError(None, f"block count for {prefix.rsplit('/', 1)[-1]} must be >= 1, got {count}")
    params = {}
    for key, shape in sorted(manifest(preset).items()):
        prefix = stacked_prefix(key)
        if prefix is not None and counts[prefix] is not None:
            shape = (counts[prefix], *shape[1:])
        params[key] = _draw(key, shape, prefix is not None, seed)
    params[META_PREFIX + "untrained"] = np.array(True)
    params[META_PREFIX + "preset"] = np.array(preset.encode())
    params[META_PREFIX + "seed"] = np.array(seed, dtype=np.int64)
    return params
