#!/usr/bin/env bash
# Asynchronous calls through the cluster on loopback, with a gateway and a node killed in the middle: a nats-server
# with JetStream (its own store, a free port), two emulated nodes and a gateway. COUNT calls are submitted to
# POST /v1/async/bert-base on 8 connections; once half are accepted, the gateway and node n2 are SIGKILLed, a new
# gateway is started on the same port (the client sends again what was not accepted) and n2 is started again. Then
# every call must end, completed or failed with a reason: none unended, none unknown. Prints the ends by state and
# code, and how many runs the calls took. Stops everything it started.
# Usage: scripts/async-demo.sh [COUNT]     (default 10000; CI runs 2000; after a release build: scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-10000}"
bin=build/release/fluidfaas
source scripts/lib/cluster.sh
cluster_script async-demo

nats_port="$(free_port)"
start_nats "$nats_port" "$work/store" "$work/nats.log" || exit 1
pids+=("$nats_pid")
nats="nats://127.0.0.1:$nats_port"
declare -A node_pid node_port
start_node() {  # NAME
  node_port[$1]="${node_port[$1]:-$(free_port)}"
  "$bin" serve --functions bert-base --time-scale 0.05 --listen "127.0.0.1:${node_port[$1]}" --grpc-listen off \
    --nats "$nats" --node "$1" >>"$work/$1.log" 2>&1 &
  node_pid[$1]=$!
  pids+=($!)
}
gw_port="$(free_port)"
gw="http://127.0.0.1:$gw_port"
start_gateway() {
  "$bin" gateway --listen "127.0.0.1:$gw_port" --nats "$nats" --silence 1 --async-ack-wait 3 \
    >>"$work/gateway.log" 2>&1 &
  gw_pid=$!
  pids+=($!)
}
start_node n1
start_node n2
start_gateway
for _ in $(seq 150); do [ "$(healthy_nodes "$gw")" = 2 ] && break; sleep 0.2; done
[ "$(healthy_nodes "$gw")" = 2 ] || fail "two healthy nodes expected"
# A first call warms bert-base up on a node.
curl -sf -X POST "$gw/v2/models/bert-base/infer" --data-binary @bench/http/bert_infer.json -o /dev/null ||
  fail "a first call through the gateway"

echo "== $count asynchronous calls; the gateway and n2 SIGKILLed once half are accepted"
start=$(date +%s.%N)
python3 bench/cluster/async_client.py submit "$gw" bert-base bench/http/bert_infer.json "$count" "$work/ids" \
  --half-signal "$work/half" &
client=$!
for _ in $(seq 1200); do [ -f "$work/half" ] && break; sleep 0.05; done
[ -f "$work/half" ] || fail "half the calls were not accepted within 60 s"
kill -KILL "$gw_pid" "${node_pid[n2]}"
echo "killed the gateway and n2 after $((count / 2)) acceptances; a new gateway and n2 started"
start_gateway
start_node n2
wait "$client" || fail "the client failed"
submitted=$(date +%s.%N)
echo "all $count accepted in $(python3 -c "print(f'{$submitted - $start:.1f}')") s"
python3 bench/cluster/async_client.py await "$gw" "$work/ids" 300 | tee "$work/ends.json"
python3 - "$work/ends.json" "$count" <<'PY' || fail "calls lost or unended"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["calls"] == int(sys.argv[2]), r
assert r["unended"] == 0 and r["unknown"] == 0, r
bad = {k: n for k, n in r["ends"].items() if k.startswith("failed") and k not in ("failed:gateway_lost",)}
assert not bad, f"ends other than completed and gateway_lost: {bad}"
PY
echo "ended in $(python3 -c "import time; print(f'{time.time() - $submitted:.1f}')") s after the last acceptance"
curl -sf "$gw/metrics" | grep '^fluidfaas_gateway_async' || true
echo "async-demo: ok"
