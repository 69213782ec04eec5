"""The config schema: defaults filled, every key documented, violations named."""

from __future__ import annotations

import pytest

from alphafold.campaign.config import load_config_file, load_schema, validate_config
from alphafold.errors import UserError
from tests.conftest import ROOT


def test_shipped_config_validates_with_defaults():
    cfg = load_config_file(ROOT / "config" / "config.yaml")
    assert cfg["targets"] == "examples/proteins.fasta"
    assert cfg["campaign"]["tiers"][0]["name"] == "s"
    assert cfg["resources"]["predict"]["length_exponent"] == 2.0
    assert cfg["databases"]["mgnify"] is None


def test_overrides_win():
    cfg = load_config_file(ROOT / "config" / "config.yaml", {"output_dir": "/x", "targets": "y.fa"})
    assert (cfg["output_dir"], cfg["targets"]) == ("/x", "y.fa")


@pytest.mark.parametrize("patch,problem", [
    ({"campaign": {"retries": -1}}, "key campaign.retries"),
    ({"model": {"presett": "x"}}, "key model"),
    ({"databases": {"max_template_date": "2021/01/01"}}, "key databases.max_template_date"),
    ({"typo_key": 1}, "(top level)"),
    # hhblits would need HH-suite databases the config cannot name: every target would fail at run time
    ({"features": {"msa_mode": "hhblits"}}, "key features.msa_mode"),
    ({"features": {"msa_mode": "jackhmer"}}, "key features.msa_mode"),
])
def test_violations_name_the_key(patch, problem):
    cfg = {"targets": "a.fasta", "output_dir": "out", **patch}
    with pytest.raises(UserError) as err:
        validate_config(cfg)
    assert problem in str(err.value)


def test_required_keys():
    with pytest.raises(UserError, match="'targets' is a required property"):
        validate_config({"output_dir": "x"})


def _walk(schema, root, path=""):
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = root["$defs"][name]
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}{key}", sub
        yield from _walk(sub, root, f"{path}{key}.")
    if "items" in schema:
        yield from _walk(schema["items"], root, f"{path}[].")


def test_every_key_is_documented():
    schema = load_schema()
    keys = list(_walk(schema, schema))
    assert len(keys) > 30
    undocumented = [k for k, sub in keys if not sub.get("description") and "$ref" not in sub]
    assert undocumented == []
