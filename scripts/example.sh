#!/usr/bin/env bash
# One command for a fresh machine: set up, then run the main job on the bundled real example.
# Grows with the project: it runs the Snakemake workflow on examples/ once that lands.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/system-deps.sh
bash scripts/setup.sh
VENV="${AF_VENV:-$ROOT/.venv}"
if [ -f examples/run.sh ]; then
  exec bash examples/run.sh "$@"
fi
echo "[example] no bundled example yet; the installed command:"
"$VENV/bin/alphafold" --help
