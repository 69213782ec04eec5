#!/usr/bin/env bash
# Creates (or verifies) the reference venv: DeepMind's AF2 v2.3 JAX model as packaged by ColabFold, in its
# own environment because its import name `alphafold` is the same as ours. Pinned set: REFERENCE.md.
# Idempotent: a second run with the same pins only checks the imports.
#   bash tests/reference/setup_venv.sh          # venv at ${AF_REFERENCE_VENV:-<repo>/.cache/reference-venv}
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REFVENV="${AF_REFERENCE_VENV:-$ROOT/.cache/reference-venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3

# The pinned set. colabfold-kernels is imported by alphafold.model.modules but not declared by
# alphafold-colabfold: it goes in with --no-deps. biopython is used by the harness's template parser.
PINS=(
  "alphafold-colabfold==2.3.27"
  "jax==0.10.2"
  "jaxlib==0.10.2"
  "dm-haiku==0.0.17"
  "ml-collections==1.1.0"
  "dm-tree==0.1.10"
  "numpy>=2,<3"
  "scipy==1.17.1"
  "biopython==1.88"
)
NODEPS=("colabfold-kernels==0.9.0")

stamp="$REFVENV/.reference-venv-pins"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOCK="$HERE/constraints.txt"   # every transitive version, exact
want="$( { printf '%s\n' "${PINS[@]}" "${NODEPS[@]}"; cat "$LOCK"; } | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[reference-venv] $REFVENV is up to date"
else
  if [ ! -x "$REFVENV/bin/python" ]; then
    echo "[reference-venv] creating $REFVENV"
    "$PY" -m venv "$REFVENV"
  fi
  echo "[reference-venv] installing the pinned reference set into $REFVENV"
  "$REFVENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$LOCK" "${PINS[@]}"
  "$REFVENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -c "$LOCK" "${NODEPS[@]}"
  echo "$want" > "$stamp"
fi
# Import check from a neutral directory, without PYTHONPATH: our own `alphafold` must not shadow theirs.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && env -u PYTHONPATH "$REFVENV/bin/python" - <<'PY'
import alphafold.model.modules  # needs colabfold-kernels
import haiku, jax
assert jax.__version__ == "0.10.2", jax.__version__
assert "site-packages" in alphafold.__file__, f"wrong alphafold imported: {alphafold.__file__}"
print(f"[reference-venv] ok: jax {jax.__version__}, haiku {haiku.__version__}, {alphafold.__file__}")
PY
)
