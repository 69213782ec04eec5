"""The campaign config: validated against ``workflow/schemas/config.schema.yaml``, defaults filled in.

The schema is the single documentation of every key. Validation here (rather than only in the Snakefile)
lets the package and its tests load a config exactly as the workflow does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import jsonschema
import yaml

from alphafold.errors import UserError

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def _fill_defaults(instance: dict, schema: Mapping, root: Mapping) -> None:
    """Insert schema defaults (recursively, objects first) for keys the config leaves out."""
    if "$ref" in schema:
        ref = schema["$ref"].removeprefix("#/").split("/")
        target = root
        for part in ref:
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(key), dict):
            _fill_defaults(instance[key], sub, root)


def validate_config(config: Mapping, schema: Mapping | None = None, where: str = "config") -> dict:
    """A validated copy of ``config`` with defaults; a violation is a one-line :class:`UserError`."""
    schema = schema if schema is not None else load_schema()
    result = copy.deepcopy(dict(config))
    _fill_defaults(result, schema, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(result), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise UserError(where, f"key {key}: {err.message}")
    return result


def load_config_file(path: str | Path, overrides: Mapping | None = None) -> dict:
    with open(path) as fh:
        config = yaml.safe_load(fh) or {}
    config.update(overrides or {})
    return validate_config(config, where=str(path))
