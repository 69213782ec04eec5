#!/usr/bin/env bash
# Ray on SLURM: start a Ray cluster inside the current allocation (head on the first node, one worker per
# other node), run COMMAND on the first node with RAY_ADDRESS / AF_RAY_ADDRESS pointing at the head, then
# stop Ray on every node, whatever COMMAND's exit status.
#
#   sbatch -N 4 --gpus-per-node=4 --cpus-per-task=32 --exclusive cluster/ray-on-slurm.sh \
#       snakemake --workflow-profile cluster/profiles/local --config targets=proteome.faa output_dir=/scratch/p
#
# The workflow's prediction jobs join the cluster (alphafold predict-batch --ray-address) instead of starting
# a local Ray; gangs of P actors are placed with STRICT_PACK on one node, so P <= GPUs per node.
# Give the job whole nodes (--exclusive, as above): two jobs' Ray heads on one node collide on the head
# port, and a distinct AF_RAY_PORT alone is untested (Ray has further default ports of its own).
#
# Settings (environment):
#   AF_RAY_PORT        head port (default 6379)
#   AF_RAY_INTERFACE   network interface whose IPv4 address Ray binds (e.g. ib0); default: the node's
#                      first address from `hostname -I`
#   AF_RAY_LOOPBACK=1  single-node, loopback only (tests): binds 127.0.0.1 and sets the loopback
#                      environment of DESIGN.md (no usage stats, dead proxy for the metadata probe)
#   AF_NCCL_IFNAME     NCCL_SOCKET_IFNAME for GPU gangs (e.g. ib0); GLOO_SOCKET_IFNAME follows it
#   AF_RAY_BIN         the `ray` executable (default: ray on PATH)
set -euo pipefail
if [ -z "${SLURM_JOB_ID:-}" ]; then
  echo "[ray-on-slurm] not inside a SLURM allocation (run it with sbatch or salloc)" >&2
  exit 2
fi
if [ $# -eq 0 ]; then
  echo "usage: cluster/ray-on-slurm.sh COMMAND [ARGS...]" >&2
  exit 2
fi
RAY="${AF_RAY_BIN:-ray}"
PORT="${AF_RAY_PORT:-6379}"
TMP="/tmp/ray_${SLURM_JOB_ID}"   # short: Ray's socket paths are length-limited
mapfile -t NODES < <(scontrol show hostnames "${SLURM_JOB_NODELIST}")
HEAD="${NODES[0]}"
CPUS="${SLURM_CPUS_ON_NODE:-$(nproc)}"
GPUS="${SLURM_GPUS_ON_NODE:-0}"

export RAY_USAGE_STATS_ENABLED=0
if [ "${AF_RAY_LOOPBACK:-0}" = 1 ]; then
  if [ "${#NODES[@]}" -ne 1 ]; then
    echo "[ray-on-slurm] AF_RAY_LOOPBACK=1 needs a single-node allocation" >&2
    exit 2
  fi
  export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_AUTH_MODE=disabled GLOO_SOCKET_IFNAME=lo
  export http_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9
  export no_proxy=127.0.0.1,localhost,::1 NO_PROXY=127.0.0.1,localhost,::1
  HEAD_IP=127.0.0.1
else
  node_ip() {  # the IPv4 address Ray binds on node $1
    if [ -n "${AF_RAY_INTERFACE:-}" ]; then
      srun --nodes=1 --ntasks=1 -w "$1" --overlap ip -4 -o addr show dev "$AF_RAY_INTERFACE" \
        | awk '{print $4}' | cut -d/ -f1
    else
      srun --nodes=1 --ntasks=1 -w "$1" --overlap hostname -I | awk '{print $1}'
    fi
  }
  HEAD_IP="$(node_ip "$HEAD")"
fi
if [ -n "${AF_NCCL_IFNAME:-}" ]; then
  export NCCL_SOCKET_IFNAME="$AF_NCCL_IFNAME" GLOO_SOCKET_IFNAME="$AF_NCCL_IFNAME"
fi
ADDRESS="$HEAD_IP:$PORT"

pids=()
cleanup() {
  echo "[ray-on-slurm] stopping Ray on ${#NODES[@]} node(s)"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Only this job's Ray: every process it started carries its temp/session dir $TMP on its command line.
  # `ray stop` is not used: it stops every Ray on the node (another job's, a user's, a test session's).
  for node in "${NODES[@]}"; do
    timeout -s KILL 60 srun --nodes=1 --ntasks=1 -w "$node" --overlap \
      pkill -KILL -f -- "${TMP}(/|[[:space:]]|\$)" >/dev/null 2>&1 || true
  done
  wait 2>/dev/null || true
  rm -rf "$TMP"
  for node in "${NODES[@]:1}"; do  # each worker node has its own $TMP
    timeout -s KILL 60 srun --nodes=1 --ntasks=1 -w "$node" --overlap rm -rf "$TMP" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

echo "[ray-on-slurm] head $HEAD ($ADDRESS), ${#NODES[@]} node(s), $CPUS CPUs and $GPUS GPUs per node"
srun --nodes=1 --ntasks=1 -w "$HEAD" --overlap "$RAY" start --head --block --node-ip-address="$HEAD_IP" \
  --port="$PORT" --num-cpus="$CPUS" --num-gpus="$GPUS" --include-dashboard=false --temp-dir="$TMP" \
  --disable-usage-stats &
pids+=($!)
for node in "${NODES[@]:1}"; do
  ip="$(node_ip "$node")"
  srun --nodes=1 --ntasks=1 -w "$node" --overlap "$RAY" start --block --address="$ADDRESS" \
    --node-ip-address="$ip" --num-cpus="$CPUS" --num-gpus="$GPUS" --temp-dir="$TMP" &
  pids+=($!)
done

# Wait until every node has joined (bounded).
PYTHON="${AF_PYTHON:-python}"
if ! timeout -s KILL 300 "$PYTHON" - "$ADDRESS" "${#NODES[@]}" <<'PY'
import sys, time
import ray
address, want = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 240
while True:
    try:
        ray.init(address=address, logging_level="ERROR")
        alive = [n for n in ray.nodes() if n["Alive"]]
        ray.shutdown()
        if len(alive) >= want:
            print(f"[ray-on-slurm] {len(alive)} node(s) joined")
            break
    except Exception as err:  # the head is still starting
        if time.time() > deadline:
            sys.exit(f"[ray-on-slurm] Ray cluster not ready: {err}")
    if time.time() > deadline:
        sys.exit("[ray-on-slurm] not every node joined in time")
    time.sleep(2)
PY
then
  exit 1
fi

export RAY_ADDRESS="$ADDRESS" AF_RAY_ADDRESS="$ADDRESS"
echo "[ray-on-slurm] running: $*"
set +e
"$@"
status=$?
set -e
echo "[ray-on-slurm] command exited $status"
exit $status
