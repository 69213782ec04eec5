#!/usr/bin/env bash
# One command for a fresh machine: installs everything the tests need and runs them all.
#   bash scripts/test.sh              # full suite (what CI runs)
#   bash scripts/test.sh -m 'not slow'  # extra arguments go to pytest
# Steps: Debian tools (root), project venv with test extras, DeepMind's JAX reference venv and the
# parity fixtures (regenerated from a fixed seed and cached under .cache/), ruff, pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
start=$(date +%s)
echo "[test] 1/5 Debian packages"
bash scripts/system-deps.sh
echo "[test] 2/5 project environment"
EXTRAS=test bash scripts/setup.sh
VENV="${AF_VENV:-$ROOT/.venv}"
echo "[test] 3/5 reference fixtures (DeepMind JAX model in its own venv)"
if [ -f tests/reference/make_fixtures.sh ]; then
  bash tests/reference/make_fixtures.sh
fi
echo "[test] 4/5 ruff"
"$VENV/bin/ruff" check .
echo "[test] 5/5 pytest"
# Ray and gloo stay on loopback (see DESIGN.md); these are also set by tests/conftest.py.
export RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_AUTH_MODE=disabled
export http_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
export no_proxy=127.0.0.1,localhost,::1 NO_PROXY=127.0.0.1,localhost,::1 GLOO_SOCKET_IFNAME=lo
export PATH="$VENV/bin:$PATH"
"$VENV/bin/python" -m pytest "$@"
echo "[test] finished in $(( $(date +%s) - start )) s"
