#!/usr/bin/env bash
# Regenerates constraints.txt: resolves pyproject.toml (runtime + test extras) from scratch in a throwaway
# venv, with torch held at the on-disk CPU wheel 2.13.0, and writes every resolved version exactly.
# Run after changing dependencies in pyproject.toml, then commit constraints.txt.
#   bash scripts/lock.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "[lock] resolving pyproject.toml [test] in a throwaway venv ($tmp)"
"$PY" -m venv "$tmp/venv"
pip=("$tmp/venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet torch==2.13.0
# A non-editable install of the project, so the freeze lists only its dependencies.
"${pip[@]}" install --quiet ".[test]" torch==2.13.0
# The freeze below writes a CUDA build as plain torch==2.13.0 too: check the build itself, so that a pip
# that reached a CUDA wheel (no CPU wheel on its find-links/index) never writes its nvidia-* pins here.
"$tmp/venv/bin/python" -c 'import sys, torch; sys.exit(1 if torch.version.cuda else 0)' || {
  echo "[lock] pip resolved a CUDA build of torch; give it the CPU wheel (find-links or the CPU index)" >&2
  exit 1
}
{
  echo "# Exact versions for every pip install of this project (pip install -c constraints.txt ...): the full"
  echo "# resolved set of the runtime and test dependencies, so a fresh machine installs what CI tested."
  echo "# torch must stay 2.13.0: the CPU wheel is on disk, anything looser pulls a CUDA build."
  echo "# Regenerate after changing pyproject.toml: bash scripts/lock.sh"
  "${pip[@]}" freeze | grep -v -i '^alphafold-hpc[=@ ]' | sed -E 's/^torch==2\.13\.0\+cpu$/torch==2.13.0/' \
    | LC_ALL=C sort -f
} > "$tmp/constraints.txt"
grep -qx 'torch==2.13.0' "$tmp/constraints.txt" || { echo "[lock] torch is not 2.13.0 in the resolve" >&2; exit 1; }
mv "$tmp/constraints.txt" constraints.txt
echo "[lock] wrote $ROOT/constraints.txt ($(grep -c '==' constraints.txt) pins)"
