#!/usr/bin/env bash
# Installs the Debian packages the tests and the bundled example need (search tools, structure tools, a
# single-node SLURM, a headless browser, and the real data sets some Debian packages ship).
# Idempotent: packages already present are skipped without touching apt. Needs root (CI and these
# machines run as root); elsewhere, prints what to install and exits non-zero.
set -euo pipefail

PACKAGES=(
  hmmer hmmer-examples          # jackhmmer/hmmsearch/hmmbuild binaries; globins45 example
  hhsuite                       # hhblits, hhsearch, ffindex tools
  mmseqs2 mmseqs2-examples      # mmseqs; 20,000 real UniProt sequences (DB.fasta.gz)
  kalign tm-align
  t-coffee-examples             # 22 real trypsin-like serine protease structures
  emboss-test                   # real test structures (2HHB haemoglobin) for the template tests
  slurmctld slurmd slurm-client munge   # single-node SLURM for the workflow tests
  chromium                      # headless browser for the campaign report test
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[system-deps] all ${#PACKAGES[@]} Debian packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "[system-deps] missing Debian packages (install as root): ${missing[*]}" >&2
  exit 1
fi
echo "[system-deps] installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's slurm packages start nothing without systemd; the test cluster script starts the daemons.
echo "[system-deps] done"
