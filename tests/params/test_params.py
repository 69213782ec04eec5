"""Params: presets, the DeepMind-name ↔ torch-name rule, loading checks, random params, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alphafold.errors import UserError
from alphafold.params import loader
from alphafold.params.presets import (
    PRESETS,
    ROOT_PREFIX,
    config_for_params,
    get_preset,
    preset_from_filename,
    stacked_block_count,
)
from alphafold.params.random_params import manifest, random_params

SMALL = dict(evoformer_blocks=2, extra_msa_blocks=1, template_blocks=1)


class ParamTree(torch.nn.Module):
    """A module tree with exactly the given parameter names and shapes (to test the loader alone)."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]):
        super().__init__()
        for name, shape in shapes.items():
            module = self
            *path, leaf = name.split(".")
            for part in path:
                if part not in module._modules:
                    module.add_module(part, torch.nn.Module())
                module = module._modules[part]
            module.register_parameter(leaf, torch.nn.Parameter(torch.zeros(shape)))


def tree_for(params: dict[str, np.ndarray]) -> ParamTree:
    shapes = {}
    for key, array in params.items():
        for name, index in loader.torch_names(key, array.shape):
            shapes[name] = array.shape[1:] if index is not None else array.shape
    return ParamTree(shapes)


def dm_only(params):
    return {k: v for k, v in params.items() if not k.startswith(loader.META_PREFIX)}


def test_ten_presets_as_released():
    assert sorted(PRESETS) == sorted([f"model_{i}{s}" for i in range(1, 6) for s in ("", "_ptm")])
    for name, preset in PRESETS.items():
        assert preset.use_templates == preset.model.template.enabled == (name[6] in "12")
        assert preset.model.template.embed_torsion_angles == preset.use_templates
        assert preset.is_ptm == name.endswith("_ptm")
        assert preset.max_extra_msa == (5120 if name[6] in "134" else 1024)
        assert preset.model.evoformer == PRESETS["model_1"].model.evoformer  # diffs touch nothing else


@pytest.mark.parametrize("name,expected", [
    ("params_model_1_ptm.npz", "model_1_ptm"),
    ("/x/params_model_5.npz", "model_5"),
    ("random_model_3_ptm_small.npz", "model_3_ptm"),
])
def test_preset_from_filename(name, expected):
    assert preset_from_filename(name).name == expected


@pytest.mark.parametrize("name,problem", [
    ("params_model_1_multimer_v3.npz", "multimer"),
    ("weights.npz", "pass --preset"),
    ("params_model_12.npz", "pass --preset"),
])
def test_preset_from_filename_errors(name, problem):
    with pytest.raises(UserError, match=problem):
        preset_from_filename(name)


def test_manifest_is_deepminds_model_1_ptm():
    shapes = manifest("model_1_ptm")
    assert len(shapes) == 338
    assert sum(int(np.prod(s)) for s in shapes.values()) == 93_237_338


def test_name_rule_round_trips_every_key():
    for key, shape in manifest("model_1_ptm").items():
        names = loader.torch_names(key, shape)
        assert names, key
        assert "__" not in names[0][0], names[0][0]  # no mangled attribute names
        for name, index in names:
            assert loader.dm_key(name) == (key, index)
    stacked = [k for k in manifest("model_1_ptm") if "template_pair_stack/__layer_stack_no_state/" in k]
    assert stacked
    name, index = loader.torch_names(stacked[0], (2, 3))[1]
    assert ".template_pair_stack.1." in name and index == 1


def test_random_params_layout_and_values():
    params = random_params("model_1_ptm", seed=3, **SMALL)
    dm = dm_only(params)
    assert dm.keys() == manifest("model_1_ptm").keys()
    assert stacked_block_count(dm, "evoformer/evoformer_iteration") == 2
    for key, value in dm.items():
        assert value.dtype == np.float32
        assert np.all(np.isfinite(value)) and value.std() > 0, f"{key} is constant"
        full = manifest("model_1_ptm")[key]
        assert value.shape[-len(full) + 1:] == full[1:] or value.shape == full
    config = config_for_params(get_preset("model_1_ptm"), dm)
    assert (config.evoformer.num_blocks, config.extra_msa.num_blocks, config.template.num_blocks) == (2, 1, 1)
    assert loader.is_untrained({k[len(loader.META_PREFIX):]: v for k, v in params.items()
                                if k.startswith(loader.META_PREFIX)})


def test_random_params_deterministic_and_block_prefix_stable():
    a = random_params("model_1_ptm", seed=3, **SMALL)
    b = random_params("model_1_ptm", seed=3, **SMALL)
    c = random_params("model_1_ptm", seed=4, **SMALL)
    more = random_params("model_1_ptm", seed=3, evoformer_blocks=3, extra_msa_blocks=1, template_blocks=1)
    key = ROOT_PREFIX + "evoformer/evoformer_iteration/outer_product_mean/left_projection//weights"
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a[key], c[key])
    np.testing.assert_array_equal(more[key][:2], a[key])


def test_load_into_copies_every_tensor_and_block():
    params = dm_only(random_params("model_1_ptm", seed=1, **SMALL))
    model = tree_for(params)
    loader.load_into(model, params)
    exported = loader.export_params(model)
    assert exported.keys() == params.keys()
    for key in params:
        np.testing.assert_array_equal(exported[key], params[key])


def test_load_into_names_every_missing_unused_and_misshaped_key():
    params = dm_only(random_params("model_1_ptm", seed=1, **SMALL))
    model = tree_for(params)
    keys = sorted(params)
    broken = dict(params)
    dropped = [keys[0], keys[10]]
    for k in dropped:
        del broken[k]
    broken[ROOT_PREFIX + "evoformer/not_a_module//weights"] = np.ones((2, 2), np.float32)
    broken["something/else//bias"] = np.ones(3, np.float32)
    reshaped = keys[20]
    broken[reshaped] = np.ones(params[reshaped].shape + (1,), np.float32)
    with pytest.raises(loader.ParamsMismatchError) as info:
        loader.load_into(model, broken, where="bad.npz")
    message = str(info.value)
    assert message.startswith("bad.npz: ")
    assert "2 missing" in message and all(k in message for k in dropped)
    assert "2 unused" in message and "evoformer/not_a_module//weights" in message
    assert "something/else//bias" in message
    assert "1 with another shape" in message and reshaped in message


def test_config_for_params_rejects_wrong_preset():
    params = dm_only(random_params("model_1_ptm", seed=1, **SMALL))
    with pytest.raises(UserError, match="has no templates"):
        config_for_params(get_preset("model_3_ptm"), params, where="f.npz")
    with pytest.raises(UserError, match="predicted-aligned-error"):
        config_for_params(get_preset("model_1"), params, where="f.npz")


def test_read_params_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        loader.read_params(tmp_path / "none.npz")
    bad = tmp_path / "params_model_1.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="not a readable"):
        loader.read_params(bad)


def test_cli_random_then_info(cli, tmp_path):
    out = tmp_path / "random_model_1_ptm.npz"
    cli("params", "random", "--preset", "model_1_ptm", "--evoformer-blocks", "2",
        "--extra-msa-blocks", "1", "--template-blocks", "1", "--seed", "7", "--out", out)
    info = cli("params", "info", out).stdout
    assert "preset:             model_1_ptm" in info
    assert "evoformer blocks:   2" in info and "extra-MSA blocks:   1" in info
    assert "untrained (random): True" in info
    params, meta = loader.read_params(out)
    assert len(params) == 338 and int(meta["seed"]) == 7
    wrong = cli("params", "info", out, "--preset", "model_3", check=False)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
