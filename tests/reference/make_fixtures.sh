#!/usr/bin/env bash
# Regenerates DeepMind reference fixtures, only when missing or when the harness changed.
#   bash tests/reference/make_fixtures.sh                 # all cases
#   bash tests/reference/make_fixtures.sh reduced_template  # some cases
# Output: ${AF_REFERENCE_DIR:-<repo>/.cache/reference}/<case>/ (layout in docs/contracts.md).
# Cache key of a case = sha256 of the harness scripts, its input files, the seed and the venv pins; it
# is stored beside the case as <case>.cachekey. Seed: ${AF_REFERENCE_SEED:-0}.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
REFVENV="${AF_REFERENCE_VENV:-$ROOT/.cache/reference-venv}"
OUT="${AF_REFERENCE_DIR:-$ROOT/.cache/reference}"
SEED="${AF_REFERENCE_SEED:-0}"
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(reduced_notemplate reduced_template model_1_ptm_L40)

start=$(date +%s)
AF_REFERENCE_VENV="$REFVENV" bash "$HERE/setup_venv.sh"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

# The harness runs in a neutral directory without PYTHONPATH: DeepMind's package is also named alphafold.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# JAX_PLATFORMS=cpu: no probing for TPU/GPU backends (CPU results are the reference).
refpy() { (cd "$tmp" && env -u PYTHONPATH JAX_PLATFORMS=cpu "$REFVENV/bin/python" "$@"); }

for case in "${CASES[@]}"; do
  inputs="$(refpy "$HERE/make_fixture.py" --list-inputs "$case")"
  key="$( { cat "$HERE/make_fixture.py" "$HERE/refcommon.py" "$REFVENV/.reference-venv-pins";
            for f in $inputs; do cat "$HERE/inputs/$f"; done; echo "case=$case seed=$SEED"; } | sha256sum | cut -c1-32)"
  if [ -f "$OUT/$case/meta.json" ] && [ -f "$OUT/$case.cachekey" ] && [ "$(cat "$OUT/$case.cachekey")" = "$key" ]; then
    echo "[reference] $case: up to date in $OUT/$case (key $key)"
    continue
  fi
  echo "[reference] $case: generating into $OUT/$case (key $key)"
  t0=$(date +%s)
  rm -f "$OUT/$case.cachekey"
  refpy "$HERE/make_fixture.py" "$case" --out "$OUT" --seed "$SEED"
  echo "$key" > "$OUT/$case.cachekey"
  echo "[reference] $case: done in $(( $(date +%s) - t0 )) s"
done
echo "[reference] fixtures ready in $OUT ($(( $(date +%s) - start )) s)"
