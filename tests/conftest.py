"""Test-wide settings: loopback-only networking for Ray and gloo, and helpers to run the CLI.

The environment below is what DESIGN.md records as leaving zero non-loopback connections; it is set here
at import so every test, every subprocess and every Ray worker inherits it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"

LOOPBACK_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "http_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "no_proxy": "127.0.0.1,localhost,::1",
    "NO_PROXY": "127.0.0.1,localhost,::1",
    "GLOO_SOCKET_IFNAME": "lo",
}
os.environ.update(LOOPBACK_ENV)
# Subprocesses import this checkout, whether or not the package is installed in the interpreter.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)


def run_cli(*args: str, check: bool = True, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m alphafold ARGS`` in a subprocess and return the completed process (text mode)."""
    proc = subprocess.run(
        [sys.executable, "-m", "alphafold", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, **kwargs,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"alphafold {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def cli():
    return run_cli


# ---- DeepMind reference fixtures (tests/reference/make_fixtures.sh; layout in docs/contracts.md) ----

REFERENCE_CASES = ("reduced_notemplate", "reduced_template", "model_1_ptm_L40")


def reference_dir() -> Path:
    """Where the reference fixtures live: $AF_REFERENCE_DIR, default <repo>/.cache/reference."""
    return Path(os.environ.get("AF_REFERENCE_DIR") or ROOT / ".cache" / "reference")


class ReferenceCase:
    """One fixture case: `meta` (dict), `params`, `features`, `outputs(r)` (lazily loaded npz files)."""

    def __init__(self, path: Path):
        import json

        self.path = path
        self.meta = json.loads((path / "meta.json").read_text())
        self.name = self.meta["case"]
        self.num_recycle = int(self.meta["num_recycle"])

    def _load(self, name: str):
        import numpy as np

        return np.load(self.path / name, allow_pickle=False)

    @property
    def params(self):
        return self._load("params.npz")

    @property
    def features(self):
        return self._load("features.npz")

    def outputs(self, r: int):
        return self._load(f"outputs_r{r}.npz")


@pytest.fixture(scope="session")
def reference_case():
    """`reference_case(name)` -> ReferenceCase; FAILS (not skips) when the fixture is missing."""
    cache: dict[str, ReferenceCase] = {}

    def get(name: str) -> ReferenceCase:
        if name not in cache:
            path = reference_dir() / name
            if not (path / "meta.json").is_file():
                pytest.fail(f"reference fixture {path} is missing: run "
                            "`bash tests/reference/make_fixtures.sh` (or set AF_REFERENCE_DIR)")
            cache[name] = ReferenceCase(path)
        return cache[name]

    return get
