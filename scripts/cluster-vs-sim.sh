#!/usr/bin/env bash
# The real cluster against the simulated one: the same arrivals through a gateway in front of three emulated nodes
# (each the embedded A100-80GB, 4g + 2g + 1g, executors at time scale 1, reporting into a nats-server on a free
# port with its own store) and through `sim::SimulateCluster` on the same nodes, functions, policy and routing
# (`fluidfaas load --url GATEWAY --agree 3` runs both: it reads the nodes from the gateway's /v1/cluster). Exit 0
# when, for every workload below, the SLO hit rates are within 3 points and the pipelines formed within 1; each
# workload starts on fresh nodes and a fresh gateway, as the simulator starts on empty ones.
#   resnet50, bert-base and llama2-13b at 36 requests/s in all (12 per node).
#   llama2-13b alone at 12 requests/s: more than one node serves it, so the router spreads it over the nodes.
# Usage: scripts/cluster-vs-sim.sh [--duration S]     (default 40; after a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release/fluidfaas
duration=40
if [ "${1:-}" = "--duration" ]; then duration="$2"; fi
source scripts/lib/cluster.sh
cluster_script cluster-vs-sim

# run NAME FUNCTIONS RATE
run() {
  local nats_port gw_port code=0
  nats_port="$(free_port)"
  start_nats "$nats_port" "$work/$1-store" "$work/$1-nats.log"
  pids+=("$nats_pid")
  for n in n1 n2 n3; do
    "$bin" serve --functions "$2" --listen "127.0.0.1:$(free_port)" --grpc-listen off \
      --nats "nats://127.0.0.1:$nats_port" --node "$n" >"$work/$1-$n.log" 2>&1 &
    pids+=($!)
  done
  gw_port="$(free_port)"
  "$bin" gateway --listen "127.0.0.1:$gw_port" --nats "nats://127.0.0.1:$nats_port" >"$work/$1-gateway.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ "$(healthy_nodes "http://127.0.0.1:$gw_port")" = 3 ] && break; sleep 0.2; done
  echo "== $1: $2 at $3 requests/s for $duration s, three nodes behind the gateway"
  "$bin" load --url "http://127.0.0.1:$gw_port" --functions "$2" --rate "$3" --zipf 0 --duration "$duration" \
    --connections 64 --agree 3 --out "$work/$1" >"$work/$1.txt" 2>&1 || code=$?
  tr '\r' '\n' <"$work/$1.txt" | grep -v 'answered (' || true
  stop_all
  if [ "$code" != 0 ]; then
    echo "cluster-vs-sim: $1 disagrees; the gateway's log:"
    tail -20 "$work/$1-gateway.log"
    exit 1
  fi
}

run mix resnet50,bert-base,llama2-13b 36
run llama llama2-13b 12
echo "cluster-vs-sim: ok"
