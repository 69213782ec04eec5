#!/usr/bin/env bash
# The bundled example campaign (README command (a) via scripts/example.sh): five real proteins searched with
# jackhmmer (pyhmmer) against a small real UniProt subset, AF2 features, prediction with a reduced
# RANDOM-WEIGHT model (UNTRAINED: set model.params_dir for DeepMind's params), outputs, ledger and summary;
# a few minutes on 2 CPU cores.
#
#   bash examples/run.sh [OUTPUT_DIR]        # default results/example
#
# Interrupted? Run the same command again: finished targets are not recomputed (after a kill -9 of
# Snakemake, the script unlocks the directory first).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${AF_VENV:-$ROOT/.venv}"
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"   # this checkout's package
OUT="${1:-results/example}"
# A local Ray stays on loopback (DESIGN.md).
export RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_AUTH_MODE=disabled GLOO_SOCKET_IFNAME=lo
export http_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9
export no_proxy=127.0.0.1,localhost,::1 NO_PROXY=127.0.0.1,localhost,::1

SMK=(snakemake --workflow-profile cluster/profiles/local --config "output_dir=$OUT")
targets=()
if ! alphafold predict-batch --help >/dev/null 2>&1 || ! python -c "import alphafold.model.predictor" 2>/dev/null
then
  # Honest partial run: the prediction stage (predict-batch and the model's Predictor) is not in this
  # checkout yet.
  echo "[example] NOTE: prediction (alphafold predict-batch with alphafold.model.predictor) is not available"
  echo "[example]       in this checkout: running the campaign up to the feature stage only (targets, MSA"
  echo "[example]       search, features)."
  mapfile -t targets < <(python - "$OUT" <<'PY'
import sys
from alphafold.campaign.campaign import Campaign
from alphafold.campaign.config import load_config_file
c = Campaign.from_config(load_config_file("config/config.yaml", {"output_dir": sys.argv[1]}), validated=True)
for b in sorted(c.batches):
    print(f"{sys.argv[1]}/batches/features/{b}.json")
PY
)
fi
echo "[example] $(alphafold campaign plan "output_dir=$OUT" | head -n1)"
"${SMK[@]}" --unlock >/dev/null 2>&1 || true
"${SMK[@]}" -- "${targets[@]}"
alphafold campaign status "$OUT"
echo "[example] results under $OUT: targets/<name>/ (models, scores), summary/ledger.tsv, index.html"
echo "[example] the model is a reduced RANDOM-WEIGHT model: structures are UNTRAINED, not predictions"
