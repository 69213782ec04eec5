"""All ten monomer presets load into the torch model from files in DeepMind's layout, every tensor used."""

from __future__ import annotations

import numpy as np
import pytest

from alphafold.io_utils import save_npz_atomic
from alphafold.model.predictor import Predictor
from alphafold.params.loader import export_params, read_params
from alphafold.params.presets import PRESETS
from alphafold.params.random_params import random_params


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_loads_and_round_trips(tmp_path, preset):
    # DeepMind's key set and shapes (the preset's manifest) with one block per stack
    path = tmp_path / f"params_{preset}.npz"
    save_npz_atomic(path, random_params(preset, 1, 1, 1, seed=5))
    predictor = Predictor.from_params_file(path)  # preset inferred from the file name
    assert predictor.preset.name == preset and predictor.untrained
    config = predictor.model.config
    assert (config.evoformer.num_blocks, config.extra_msa.num_blocks) == (1, 1)
    assert config.template.enabled == PRESETS[preset].use_templates
    params, _ = read_params(path)
    exported = export_params(predictor.model)
    assert exported.keys() == params.keys()
    for key, value in params.items():
        np.testing.assert_array_equal(exported[key], value, err_msg=key)
