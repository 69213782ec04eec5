#!/usr/bin/env bash
# Creates (or updates) the project-local environment .venv and installs alphafold-hpc into it.
# Idempotent: a second run with nothing changed only verifies. torch is pinned to 2.13.0 through
# constraints.txt on every pip call, so no install path can resolve a CUDA build.
#   EXTRAS=test bash scripts/setup.sh    # also install the test tools
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${AF_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
spec="."
[ -n "${EXTRAS:-}" ] && spec=".[${EXTRAS}]"
stamp="$VENV/.alphafold-hpc-installed"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16) ${EXTRAS:-}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] $VENV is up to date (pyproject.toml and constraints.txt unchanged)"
  # Refresh the editable install cheaply in case the package layout changed.
else
  echo "[setup] installing alphafold-hpc${EXTRAS:+ with extras [$EXTRAS]} into $VENV (torch==2.13.0 pinned)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt torch==2.13.0
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e "$spec"
  echo "$want" > "$stamp"
fi
"$VENV/bin/python" - <<'PY'
import torch, alphafold
assert torch.__version__.startswith("2.13.0"), f"unexpected torch {torch.__version__}"
assert not torch.version.cuda, "a CUDA build of torch was installed; expected the CPU wheel"
print(f"[setup] ok: alphafold-hpc {alphafold.__version__}, torch {torch.__version__}")
PY
