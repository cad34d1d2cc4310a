#!/usr/bin/env bash
# The cluster on loopback, as an operator meets it: a nats-server with JetStream (its own store, a free port), three
# emulated nodes (fluidfaas serve --nats ... --node nN) and a gateway. Load through the gateway with wrk; node n2
# is SIGKILLed in the middle of it; after the gateway's silence it shows n2 unhealthy; n2 is started again under
# the same name and comes back healthy; then the NATS server is stopped (calls through the gateway must still be
# answered) and started again (every node must be healthy again). The gateway's table between phases; every call of
# the load must get an HTTP answer (2xx, or 502 node_lost for a call that died with n2). Stops everything it started.
# Usage: scripts/cluster-demo.sh [LOAD_SECONDS]     (default 6; after a release build: scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-6}"
bin=build/release/fluidfaas
source scripts/lib/cluster.sh
cluster_script cluster-demo

nats_port="$(free_port)"
# Every NATS connection authenticates with a token from a file (the server's --auth).
python3 -c 'import secrets; print(secrets.token_hex(16))' >"$work/nats.token"
nats_start() {
  start_nats "$nats_port" "$work/store" "$work/nats.log" --auth "$(cat "$work/nats.token")" || exit 1
  pids+=("$nats_pid")
}
nats_start
nats="nats://127.0.0.1:$nats_port"

declare -A node_pid node_port
start_node() {  # NAME
  local port
  port="${node_port[$1]:-$(free_port)}"
  node_port[$1]="$port"
  "$bin" serve --functions bert-base,resnet50 --time-scale 0.05 --listen "127.0.0.1:$port" --grpc-listen off \
    --nats "$nats" --nats-token-file "$work/nats.token" --node "$1" >"$work/$1.log" 2>&1 &
  node_pid[$1]=$!
  pids+=($!)
}
for n in n1 n2 n3; do start_node "$n"; done
gw_port="$(free_port)"
gw_grpc_port="$(free_port)"
start_gateway() {
  "$bin" gateway --listen "127.0.0.1:$gw_port" --grpc-listen "127.0.0.1:$gw_grpc_port" --nats "$nats" \
    --nats-token-file "$work/nats.token" --silence 1 >>"$work/gateway.log" 2>&1 &
  gw_pid=$!
  pids+=($!)
}
start_gateway
gw="http://127.0.0.1:$gw_port"

table() {  # TITLE: the gateway's /v1/cluster through the CLI pointed at it
  echo
  echo "== $1"
  "$bin" state --url "$gw" | tee "$work/state.txt" || fail "fluidfaas state at the gateway"
}
healthy() { healthy_nodes "$gw"; }
wait_healthy() {  # N
  for _ in $(seq 100); do [ "$(healthy)" = "$1" ] && return 0; sleep 0.2; done
  fail "expected $1 healthy nodes"
}

wait_healthy 3
curl -sf -X POST "$gw/v2/models/bert-base/infer" --data-binary @bench/http/bert_infer.json -o /dev/null ||
  fail "a first call through the gateway"
table "three nodes joined; one call made"
grep -Eq "bert-base .*(exclusive_hot|time_sharing|loading)" "$work/state.txt" ||
  fail "the gateway's state shows no instance of bert-base after a call"
echo
echo "== gRPC through the gateway (fluidfaas bench grpc, 4 connections, 1 s)"
"$bin" bench grpc --target "127.0.0.1:$gw_grpc_port" --model bert-base --connections 4 --duration 1 --json |
  python3 -c 'import json,sys; r=json.load(sys.stdin); print("%d calls, %d failed, %.0f/s, p50 %.2f ms" %
    (r["completed"], r["failed"], r["requests_per_s"], r["p50_ms"])); sys.exit(r["failed"] > 0 or r["completed"] == 0)' ||
  fail "gRPC calls through the gateway failed"
if "$bin" serve --listen 127.0.0.1:0 --grpc-listen off --nats "$nats" --node intruder >"$work/intruder.log" 2>&1; then
  fail "a node without the NATS token joined"
fi
echo "a node without the NATS token is refused: $(grep -o 'Authentication Violation' "$work/intruder.log" | head -1)"

echo
echo "== load through the gateway for ${secs} s (wrk, 8 connections); n2 SIGKILLed after $((secs / 2)) s"
BODY_FILE=bench/http/bert_infer.json wrk -t1 -c8 -d"${secs}s" -s bench/http/post.lua \
  "$gw/v2/models/bert-base/infer" >"$work/wrk.txt" 2>&1 &
wrk_pid=$!
sleep "$((secs / 2))"
kill -9 "${node_pid[n2]}"
wait "$wrk_pid" || true
grep -E "requests in|Requests/sec|Non-2xx|Socket errors" "$work/wrk.txt"
if grep -q "Socket errors" "$work/wrk.txt"; then fail "calls without an HTTP answer"; fi
curl -sf "$gw/metrics" | grep -E '^fluidfaas_gateway_(answers|retries)' || true
table "after n2 was killed (the gateway's silence is 1 s)"
[ "$(healthy)" = 2 ] || fail "n2 is not marked unhealthy"

start_node n2
wait_healthy 3
table "n2 started again under its name"

echo
echo "== the gateway restarted: stateless, its view rebuilt from the bucket"
kill -TERM "$gw_pid"
wait "$gw_pid" 2>/dev/null || true
t0="$(date +%s.%N)"
start_gateway
wait_healthy 3
echo "three healthy nodes again $(python3 -c "import time; print('%.2f' % (time.time() - $t0))") s after the restart"

echo
echo "== the NATS server stopped: calls on the direct path keep flowing; restarted: every node reports again"
kill -TERM "$nats_pid"
wait "$nats_pid" 2>/dev/null || true
for i in $(seq 10); do
  code="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$gw/v2/models/bert-base/infer" --data-binary @bench/http/bert_infer.json)"
  [ "$code" = 200 ] || fail "call $i with NATS down: HTTP $code"
done
echo "10 calls with NATS down: 200"
nats_start
wait_healthy 3
table "NATS back"
echo
echo "cluster-demo: ok"
