"""Test helper: load a DeepMind-layout params dict into a torch module by the naming rule of
docs/contracts.md ("Torch parameter naming"), checking that every key and every parameter is used.

Stand-in until ``alphafold.params.loader`` lands; kept small and strict so tests fail on any mismatch.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

ROOT = "alphafold/alphafold_iteration/"
STACKED = {
    "evoformer/evoformer_iteration": "evoformer/evoformer_iteration",
    "evoformer/extra_msa_stack": "evoformer/extra_msa_stack",
}
_TEMPLATE_STACK = "evoformer/template_embedding/single_template_embedding/template_pair_stack"
STACKED[_TEMPLATE_STACK + "/__layer_stack_no_state"] = _TEMPLATE_STACK


def torch_names(key: str) -> list[tuple[str, int | None]]:
    """DeepMind key -> [(torch name, block index or None)]; stacked keys expand later per block."""
    path, param = key[len(ROOT) :].split("//")
    for prefix, torch_prefix in STACKED.items():
        if path == prefix or path.startswith(prefix + "/"):
            rest = path[len(prefix) :].lstrip("/")
            return [(f"{torch_prefix}/{{i}}/{rest}/{param}".replace("//", "/"), -1)]
    return [(f"{path}/{param}", None)]


def load_deepmind_params(module: torch.nn.Module, params: Mapping[str, np.ndarray], strip: str = "") -> None:
    """Copy params into module; ``strip`` removes a leading haiku path (e.g. "evoformer/") for submodules."""
    own = dict(module.named_parameters())
    used: set[str] = set()
    problems = []
    for key, value in params.items():
        if not key.startswith(ROOT + strip):
            continue
        ((name, stacked),) = torch_names(key)
        name = name[len(strip) :].replace("/", ".")
        if stacked is None:
            targets = [(name, value)]
        else:
            targets = [(name.format(i=i), value[i]) for i in range(value.shape[0])]
        for tname, tvalue in targets:
            if tname not in own:
                problems.append(f"unused key {key} (no torch parameter {tname})")
                continue
            if tuple(own[tname].shape) != tuple(tvalue.shape):
                problems.append(f"shape mismatch {tname}: {tuple(own[tname].shape)} vs {tvalue.shape}")
                continue
            with torch.no_grad():
                own[tname].copy_(torch.from_numpy(np.asarray(tvalue, dtype=np.float32)))
            used.add(tname)
    problems += [f"missing parameter {n}" for n in own if n not in used]
    if problems:
        raise AssertionError("params do not match the module:\n" + "\n".join(problems))
