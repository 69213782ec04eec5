"""The ten monomer presets of DeepMind's released params, as diffs over one base config.

DeepMind released `params_model_{1..5}.npz` (Jumper et al. (2021) Suppl. Table 5, models 1.1.1–1.2.3) and
their `_ptm` fine-tunes, which add the predicted-aligned-error head. Models 1 and 2 were trained with
templates (and embed template torsion angles into extra MSA rows); models 3–5 use none. Models 1, 3 and 4
were run with 5120 extra MSA rows, models 2 and 5 with 1024.

Block counts are not part of a preset: :func:`config_for_params` reads them off the params file's stacked
leading axes, so a reduced random file with the same keys is a smaller model of the same architecture.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alphafold.errors import UserError
from alphafold.model.config import BASE, HeadsConfig, ModelConfig, TemplateConfig


@dataclass(frozen=True)
class Preset:
    """One released model: its architecture and the data settings it was run with."""

    name: str
    model: ModelConfig
    use_templates: bool
    max_extra_msa: int
    max_msa_clusters: int = 512
    max_templates: int = 4

    @property
    def is_ptm(self) -> bool:
        return self.model.heads.use_predicted_aligned_error


_WITH_TEMPLATES = dataclasses.replace(
    BASE, template=TemplateConfig(enabled=True, embed_torsion_angles=True)
)


def _ptm(config: ModelConfig) -> ModelConfig:
    return dataclasses.replace(config, heads=HeadsConfig(use_predicted_aligned_error=True))


def _build_presets() -> dict[str, Preset]:
    extra_msa = {1: 5120, 2: 1024, 3: 5120, 4: 5120, 5: 1024}
    presets = {}
    for i in range(1, 6):
        templates = i <= 2
        model = _WITH_TEMPLATES if templates else BASE
        presets[f"model_{i}"] = Preset(f"model_{i}", model, templates, extra_msa[i])
        presets[f"model_{i}_ptm"] = Preset(f"model_{i}_ptm", _ptm(model), templates, extra_msa[i])
    return presets


PRESETS: Mapping[str, Preset] = _build_presets()

# DeepMind key prefixes of the stacked blocks (leading axis = block index).
ROOT_PREFIX = "alphafold/alphafold_iteration/"
EVOFORMER_STACK = "evoformer/evoformer_iteration"
EXTRA_MSA_STACK = "evoformer/extra_msa_stack"
TEMPLATE_PAIR_STACK = (
    "evoformer/template_embedding/single_template_embedding/template_pair_stack/__layer_stack_no_state"
)
STACKED_PREFIXES: tuple[str, ...] = (EVOFORMER_STACK, EXTRA_MSA_STACK, TEMPLATE_PAIR_STACK)

_PRESET_IN_NAME = re.compile(r"model_([1-5])(_ptm)?(?![0-9a-z])")


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(None, f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_from_filename(path: str | Path) -> Preset:
    """Infer the preset from a params file name such as ``params_model_1_ptm.npz``."""
    stem = Path(path).name
    if "multimer" in stem:
        raise UserError(str(path), "multimer params are not supported (monomer presets only)")
    match = _PRESET_IN_NAME.search(stem)
    if match is None:
        raise UserError(
            str(path), "cannot infer the preset from the file name; pass --preset (e.g. model_1_ptm)"
        )
    return PRESETS[f"model_{match.group(1)}{match.group(2) or ''}"]


def stacked_block_count(params: Mapping[str, np.ndarray], prefix: str) -> int:
    """Number of blocks of a stacked module: the common leading axis of its keys (0 if absent)."""
    full = ROOT_PREFIX + prefix + "/"
    sizes = {v.shape[0] for k, v in params.items() if k.startswith(full)}
    if len(sizes) > 1:
        raise UserError(None, f"stacked keys under {prefix} disagree on the block count: {sorted(sizes)}")
    return sizes.pop() if sizes else 0


def config_for_params(preset: Preset, params: Mapping[str, np.ndarray], where: str = "params") -> ModelConfig:
    """The preset's architecture with block counts read from the params; checks the file fits the preset."""
    has_templates = any(k.startswith(ROOT_PREFIX + "evoformer/template_embedding/") for k in params)
    has_pae = any(k.startswith(ROOT_PREFIX + "predicted_aligned_error_head/") for k in params)
    if has_templates != preset.model.template.enabled:
        raise UserError(
            where,
            f"preset {preset.name} {'uses' if preset.model.template.enabled else 'has no'} templates but "
            f"the file {'has' if has_templates else 'has no'} template_embedding parameters",
        )
    if has_pae != preset.is_ptm:
        raise UserError(
            where,
            f"preset {preset.name} {'has' if preset.is_ptm else 'has no'} a predicted-aligned-error head "
            f"but the file {'has' if has_pae else 'has no'} predicted_aligned_error_head parameters",
        )
    config = preset.model
    evoformer = dataclasses.replace(
        config.evoformer, num_blocks=stacked_block_count(params, EVOFORMER_STACK)
    )
    extra_msa = dataclasses.replace(
        config.extra_msa, num_blocks=stacked_block_count(params, EXTRA_MSA_STACK)
    )
    template = config.template
    if template.enabled:
        template = dataclasses.replace(template, num_blocks=stacked_block_count(params, TEMPLATE_PAIR_STACK))
    return dataclasses.replace(config, evoformer=evoformer, extra_msa=extra_msa, template=template)
