#!/usr/bin/env bash
# The simulator against the daemon: the same 90 s of arrivals through `fluidfaas serve` on the embedded emulated
# node (A100-80GB, 4g + 2g + 1g; emulated executors at time scale 1) and through the simulator on the same node,
# functions and policy (`fluidfaas load --agree 3` runs both). Exit 0 when, for every workload below, the SLO hit
# rates are within 3 points and the pipelines formed within 1; each workload starts on a freshly started daemon,
# as the simulator starts on an empty node.
#   llama2-13b at 10 requests/s: one instance on the 4g, a second as a pipeline on the 2g + 1g.
#   resnet50, bert-base and llama2-13b at 24 requests/s in all: batching on the small slices.
#   the same three at 8 requests/s from newcomers (no timeout_ms): the first requests of each function wait for
#   its cold start (the daemon's --cold-start-wait, policy/cold_start.h), in both.
#   tinyllama-1.1b generating (serve --generate) at 8 requests/s, streamed (fluidfaas gen-load --agree 3): the
#   daemon's and the simulator's GenerationNode on the same arrivals; three instances, one per slice.
# Every other workload names each function's SLO as its requests' deadline, as a benchmark client does.
# Usage: scripts/sim-vs-daemon.sh [--duration S]     (after a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release
duration=90
if [ "${1:-}" = "--duration" ]; then duration="$2"; fi
source scripts/lib/daemon.sh
out="$(mktemp -d)"
daemon_pid=""
trap '[ -z "$daemon_pid" ] || kill -9 $daemon_pid 2>/dev/null || true' EXIT

# run NAME FUNCTIONS RATE [LOAD OPTIONS...]
run() {
  start_daemon "$out/$1.log" --functions "$2"
  echo "== $1: $2 at $3 requests/s for $duration s"
  local code=0
  "$bin/fluidfaas" load --url "$url" --rate "$3" --zipf 0 --duration "$duration" --connections 64 --agree 3 \
    --out "$out/$1" "${@:4}" >"$out/$1.txt" 2>&1 || code=$?
  tr '\r' '\n' <"$out/$1.txt" | grep -v 'answered (' || true
  kill -TERM "$daemon_pid"
  wait "$daemon_pid" || true
  if [ "$code" != 0 ]; then
    echo "sim-vs-daemon: $1 disagrees (summary in $out/$1); daemon log:"
    tail -20 "$out/$1.log"
    exit 1
  fi
}

run pipeline llama2-13b 10
run mix resnet50,bert-base,llama2-13b 24
run newcomers resnet50,bert-base,llama2-13b 8 --newcomer

start_daemon "$out/generate.log" --functions bert-base --generate tinyllama-1.1b
gen_duration=$((duration / 3))
echo "== generate: tinyllama-1.1b at 8 requests/s for $gen_duration s, streamed"
code=0
"$bin/fluidfaas" gen-load --url "$url" --model tinyllama-1.1b --rate 8 --duration "$gen_duration" --agree 3 \
  >"$out/generate.txt" 2>&1 || code=$?
cat "$out/generate.txt"
kill -TERM "$daemon_pid"
wait "$daemon_pid" || true
if [ "$code" != 0 ]; then
  echo "sim-vs-daemon: generate disagrees; daemon log:"
  tail -20 "$out/generate.log"
  exit 1
fi
echo "sim-vs-daemon: ok (summaries in $out)"
