#!/usr/bin/env bash
# The simulator against the daemon: the same 90 s of arrivals through `fluidfaas serve` on the embedded emulated
# node (A100-80GB, 4g + 2g + 1g; emulated executors at time scale 1) and through the simulator on the same node,
# functions and policy (`fluidfaas load --agree 3` runs both). Exit 0 when, for every workload below, the SLO hit
# rates are within 3 points and the pipelines formed within 1; each workload starts on a freshly started daemon,
# as the simulator starts on an empty node.
#   llama2-13b at 10 requests/s: one instance on the 4g, a second as a pipeline on the 2g + 1g.
#   resnet50, bert-base and llama2-13b at 24 requests/s in all: batching on the small slices.
# Usage: scripts/sim-vs-daemon.sh [--duration S]     (after a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release
duration=90
if [ "${1:-}" = "--duration" ]; then duration="$2"; fi
out="$(mktemp -d)"
trap 'kill -9 $pid 2>/dev/null || true' EXIT

# run NAME FUNCTIONS RATE
run() {
  local port=$((20000 + RANDOM % 20000))
  local url="http://127.0.0.1:$port"
  "$bin/fluidfaas" serve --listen "127.0.0.1:$port" --functions "$2" 2>"$out/$1.log" &
  pid=$!
  for _ in $(seq 1 100); do
    curl -sf "$url/v2/health/ready" >/dev/null && break
    sleep 0.1
  done
  echo "== $1: $2 at $3 requests/s for $duration s"
  local code=0
  "$bin/fluidfaas" load --url "$url" --rate "$3" --zipf 0 --duration "$duration" --connections 64 --agree 3 \
    --out "$out/$1" >"$out/$1.txt" 2>&1 || code=$?
  tr '\r' '\n' <"$out/$1.txt" | grep -v 'answered (' || true
  kill -TERM "$pid"
  wait "$pid" || true
  if [ "$code" != 0 ]; then
    echo "sim-vs-daemon: $1 disagrees (summary in $out/$1); daemon log:"
    tail -20 "$out/$1.log"
    exit 1
  fi
}

run pipeline llama2-13b 10
run mix resnet50,bert-base,llama2-13b 24
echo "sim-vs-daemon: ok (summaries in $out)"
