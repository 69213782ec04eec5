#!/usr/bin/env bash
# Stops the test cluster started by start.sh: cancels its jobs, stops slurmd, slurmctld and munged by their
# pid files (never by name: other SLURMs or agents on the machine are left alone), then removes the state
# directory unless AF_TESTCLUSTER_KEEP=1.
set -uo pipefail
DIR="${AF_TESTCLUSTER_DIR:-/tmp/af-testcluster}"
export SLURM_CONF="$DIR/etc/slurm.conf"

alive() {  # a pid that exists and is not a zombie
  local st
  st="$(ps -o stat= -p "$1" 2>/dev/null | tr -d ' ')" || return 1
  [ -n "$st" ] && [ "${st:0:1}" != "Z" ]
}

stop_pid_file() {
  local file="$1" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$file"
}

if [ -f "$SLURM_CONF" ] && [ -f "$DIR/slurmctld.pid" ]; then
  timeout -s KILL 10 scancel --full --signal=KILL --partition=cpu,gpu 2>/dev/null || true
  timeout -s KILL 10 scancel --partition=cpu,gpu 2>/dev/null || true
fi
stop_pid_file "$DIR/slurmd.pid"
# Job step daemons of this cluster run with our config path on their command line or environment;
# find them by the spool directory they were started from.
for pid in $(pgrep -f "slurmstepd" 2>/dev/null); do
  if grep -qs "$DIR" "/proc/$pid/environ" "/proc/$pid/cmdline" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
done
stop_pid_file "$DIR/slurmctld.pid"
stop_pid_file "$DIR/munge/munged.pid"
# The default-path link start.sh made (only if it points at this cluster).
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$SLURM_CONF" ]; then
  rm -f /etc/slurm/slurm.conf
fi
if [ "${AF_TESTCLUSTER_KEEP:-0}" != 1 ]; then
  rm -rf "$DIR"
fi
echo "[testcluster] stopped ($DIR)"
