"""Load DeepMind's `params_model_*.npz` into the torch model, unchanged.

The torch modules hold their parameters under DeepMind's haiku names and in DeepMind's shapes
(docs/contracts.md), so loading is a renaming:

    alphafold/alphafold_iteration/a/b/c//p   ->   a.b.c.p
    .../evoformer/evoformer_iteration/x//p   ->   evoformer.evoformer_iteration.{i}.x.p   (block i = array[i])

with one exception for the template pair stack, whose haiku layer stack scope `__layer_stack_no_state` is
the torch ModuleList itself. A load that leaves any torch parameter unset, any file key unused, or any
shape different fails with one error naming every such key. No pickle is ever read.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from alphafold.errors import UserError
from alphafold.params.presets import ROOT_PREFIX, STACKED_PREFIXES, TEMPLATE_PAIR_STACK

log = logging.getLogger(__name__)

# Keys of our own (not DeepMind's) that label a file, e.g. random parameters as untrained.
META_PREFIX = "__meta__//"
_LAYER_STACK_SCOPE = "/__layer_stack_no_state"


class ParamsMismatchError(UserError):
    """The params file and the model disagree; the message lists every offending key."""


def read_params(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read a params .npz: (DeepMind parameters, our metadata keys without the prefix)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(str(path), "params file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise UserError(str(path), f"not a readable .npz params file ({err})") from None
    params = {k: v for k, v in arrays.items() if not k.startswith(META_PREFIX)}
    meta = {k[len(META_PREFIX):]: v for k, v in arrays.items() if k.startswith(META_PREFIX)}
    if not params:
        raise UserError(str(path), "contains no parameters")
    bad = sorted(k for k, v in params.items() if not np.issubdtype(v.dtype, np.floating))
    if bad:
        raise UserError(str(path), f"non-float parameters: {', '.join(bad)}")
    return params, meta


def is_untrained(meta: Mapping[str, np.ndarray]) -> bool:
    """True for files written by `alphafold params random` (outputs must be labelled untrained)."""
    return bool(meta.get("untrained", np.array(False)))


def _torch_prefix(prefix: str) -> str:
    """Torch path of a stacked DeepMind prefix (the template layer-stack scope is the ModuleList)."""
    return prefix.removesuffix(_LAYER_STACK_SCOPE) if prefix == TEMPLATE_PAIR_STACK else prefix


def torch_names(key: str, shape: tuple[int, ...]) -> list[tuple[str, int | None]]:
    """The torch parameter name(s) a DeepMind key fills, with the block index for stacked keys.

    Returns an empty list for a key outside ``alphafold/alphafold_iteration/`` (it is then unused).
    """
    if not key.startswith(ROOT_PREFIX) or "//" not in key:
        return []
    module, _, param = key[len(ROOT_PREFIX):].partition("//")
    for prefix in STACKED_PREFIXES:
        if module == prefix or module.startswith(prefix + "/"):
            rest = module[len(prefix):]
            dotted = _torch_prefix(prefix).replace("/", ".")
            tail = (rest.replace("/", ".") + "." + param).lstrip(".")
            return [(f"{dotted}.{i}.{tail}", i) for i in range(shape[0])]
    return [(f"{module.replace('/', '.')}.{param}", None)]


def dm_key(torch_name: str) -> tuple[str, int | None]:
    """Inverse of :func:`torch_names`: the DeepMind key and block index of a torch parameter name."""
    module, _, param = torch_name.rpartition(".")
    parts = module.split(".")
    for prefix in STACKED_PREFIXES:
        head = _torch_prefix(prefix).split("/")
        if parts[: len(head)] == head and len(parts) > len(head) and parts[len(head)].isdigit():
            rest = parts[len(head) + 1:]
            return ROOT_PREFIX + "/".join([prefix, *rest]) + "//" + param, int(parts[len(head)])
    return ROOT_PREFIX + "/".join(parts) + "//" + param, None


def load_into(model: torch.nn.Module, params: Mapping[str, np.ndarray], where: str = "params") -> None:
    """Copy DeepMind params into ``model``; fail naming every missing, unused or mis-shaped key."""
    targets = dict(model.named_parameters())
    filled: set[str] = set()
    unused: list[str] = []
    mismatched: dict[str, str] = {}
    for key, array in params.items():
        names = torch_names(key, array.shape)
        if not names or any(name not in targets for name, _ in names):
            unused.append(key)
            continue
        for name, index in names:
            value = array[index] if index is not None else array
            param = targets[name]
            if tuple(param.shape) != value.shape:
                mismatched[key] = f"{key}: file {value.shape} vs model {tuple(param.shape)}"
                continue
            with torch.no_grad():
                param.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(param.dtype))
            filled.add(name)
    missing = sorted({dm_key(n)[0] for n in targets if n not in filled} - mismatched.keys())
    if missing or unused or mismatched:
        lines = [f"params do not fit the model ({len(params)} keys in the file):"]
        if missing:
            lines.append(f"  {len(missing)} missing: " + ", ".join(missing))
        if unused:
            lines.append(f"  {len(unused)} unused: " + ", ".join(sorted(unused)))
        if mismatched:
            lines.append(f"  {len(mismatched)} with another shape: " + "; ".join(sorted(mismatched.values())))
        raise ParamsMismatchError(where, "\n".join(lines))
    log.info("loaded %d parameter arrays (%d tensors) from %s", len(params), len(filled), where)


def export_params(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The model's parameters in DeepMind's layout (stacked blocks re-stacked on a leading axis)."""
    blocks: dict[str, dict[int, np.ndarray]] = {}
    flat: dict[str, np.ndarray] = {}
    for name, param in model.named_parameters():
        key, index = dm_key(name)
        value = param.detach().cpu().numpy().astype(np.float32)
        if index is None:
            flat[key] = value
        else:
            blocks.setdefault(key, {})[index] = value
    for key, by_index in blocks.items():
        flat[key] = np.stack([by_index[i] for i in range(len(by_index))])
    return flat
