#!/usr/bin/env bash
# The node's edge beside nginx serving the same answer bytes, on this machine, alternately: wrk on the daemon's
# JSON and binary-extension infer routes and `fluidfaas bench grpc` on its gRPC service, then wrk on nginx
# returning the daemon's own answer bodies, at 1, 16 and 64 connections; req/s, p50, p99 and the ratios. Then the
# same with another process busy on one core. Then hostile clients (bench/http/hostile.py): 2,000 slowloris and
# 2,000 idle connections beside a normal client (its p50/p99 and answers), and every hostile input once (status,
# time, the daemon's RSS).
#
# Usage: scripts/bench-edge.sh [SECONDS_PER_RUN]     (default 10; CI runs it with 2 and BUSY_CORE=0)
# Environment: BUSY_CORE=0 leaves out the run with a core busy; SLOW_CONNECTIONS, IDLE_CONNECTIONS (2000 each);
# CONTROL_THREAD=1 runs the daemon with --control-thread (the controller off the edge's loop: the ablation).
# The function is bert-base at --time-scale 1e-6: the model's time is ~0, so what is measured is the edge, the
# control thread and the worker hop.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
scripts/install-deps.sh >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release --target fluidfaas fluidfaas-worker >/dev/null
bin=build/release/fluidfaas
work="$(mktemp -d)"
source scripts/lib/cluster.sh  # free_port
port="$(free_port)"; grpc_port="$(free_port)"; nginx_port="$(free_port)"
busy_pid=""
cleanup() {
  [ -n "$busy_pid" ] && kill "$busy_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  [ -n "${daemon_pid:-}" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

layout=()
[ "${CONTROL_THREAD:-0}" = 1 ] && layout=(--control-thread)
"$bin" serve --functions bert-base --time-scale 1e-6 --listen "127.0.0.1:$port" --grpc-listen "127.0.0.1:$grpc_port" \
  "${layout[@]}" >"$work/serve.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port/v2/models/bert-base/infer"
# The daemon's own answers, warm: the bodies nginx will serve.
curl -sf -X POST "$url" --data-binary @bench/http/bert_infer.json -o "$work/answer.json"
curl -sf -X POST "$url" --data-binary @bench/http/bert_infer.json -o "$work/answer.json"
header='{"inputs":[{"name":"input","datatype":"FP32","shape":[1,128],"parameters":{"binary_data_size":512}}],"parameters":{"binary_data_output":true}}'
{ printf '%s' "$header"; python3 -c 'import sys; sys.stdout.buffer.write(b"\0\0\0\x3f" * 128)'; } >"$work/request.bin"
curl -sf -X POST "$url" -H "Inference-Header-Content-Length: ${#header}" --data-binary @"$work/request.bin" \
  -o "$work/answer.bin"
echo "answer bodies: JSON $(stat -c %s "$work/answer.json") bytes, binary $(stat -c %s "$work/answer.bin") bytes"

# nginx: one worker (the daemon's edge is one thread), POST answered with the static body (405 -> 200 $uri).
cat >"$work/nginx.conf" <<CONF
worker_processes 1; daemon on; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path $work/body;
  server {
    listen 127.0.0.1:$nginx_port; root $work;
    location = /json { default_type application/json; alias $work/answer.json; error_page 405 =200 \$uri; }
    location = /bin { default_type application/octet-stream; alias $work/answer.bin; error_page 405 =200 \$uri; }
  }
}
CONF
nginx -c "$work/nginx.conf"

# wrk's req/s, p50 and p99 (ms) as one line.
wrk_run() {  # URL SCRIPT CONNECTIONS
  wrk -t1 -c"$3" -d"${secs}s" --latency -s "$2" "$1" | awk '
    /Requests\/sec/ { rps = $2 }
    / 50%/ { p50 = $2 } / 99%/ { p99 = $2 }
    /Non-2xx/ { bad = $NF }
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    END { printf "%.0f %.3f %.3f %d\n", rps, ms(p50), ms(p99), bad }'
}
grpc_run() {  # CONNECTIONS
  # Exits 1 when a call failed (a rejection while a second instance starts): the count is in the JSON.
  { "$bin" bench grpc --target "127.0.0.1:$grpc_port" --model bert-base --connections "$1" --duration "$secs" --json ||
    true; } |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.0f %.3f %.3f %d" % (r["requests_per_s"], r["p50_ms"], r["p99_ms"], r["failed"]))'
}

table() {
  echo
  echo "| connections | form | daemon req/s | p50 ms | p99 ms | nginx req/s | p50 ms | p99 ms | nginx / daemon | p50 + ms |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  for c in 1 16 64; do
    for form in json binary grpc; do
      case $form in
        json) d=$(BODY_FILE=bench/http/bert_infer.json wrk_run "$url" bench/http/post.lua "$c")
              n=$(BODY_FILE=bench/http/bert_infer.json wrk_run "http://127.0.0.1:$nginx_port/json" bench/http/post.lua "$c") ;;
        binary) d=$(wrk_run "$url" bench/http/binary.lua "$c")
                n=$(wrk_run "http://127.0.0.1:$nginx_port/bin" bench/http/binary.lua "$c") ;;
        grpc) d=$(grpc_run "$c")
              n=$(wrk_run "http://127.0.0.1:$nginx_port/bin" bench/http/binary.lua "$c") ;;
      esac
      read -r drps dp50 dp99 dbad <<<"$d"
      read -r nrps np50 np99 _ <<<"$n"
      [ "$dbad" = "0" ] || echo "warning: $dbad answers from the daemon were not 2xx ($form, $c connections)" >&2
      awk -v c="$c" -v f="$form" -v dr="$drps" -v d5="$dp50" -v d9="$dp99" -v nr="$nrps" -v n5="$np50" -v n9="$np99" \
        'BEGIN { printf "| %d | %s | %d | %.3f | %.3f | %d | %.3f | %.3f | %.2f | %+.3f |\n", c, f, dr, d5, d9, nr, n5, n9, nr / dr, d5 - n5 }'
    done
  done
}

echo "== idle machine, ${secs} s per run (grpc's nginx column: the binary answer over HTTP/1.1)"
table
if [ "${BUSY_CORE:-1}" != 0 ]; then
  echo
  echo "== another process busy on one core"
  (while :; do :; done) &
  busy_pid=$!
  table
  kill "$busy_pid"; busy_pid=""
fi

echo
echo "== hostile clients (bench/http/hostile.py)"
python3 bench/http/hostile.py slow --port "$port" --pid "$daemon_pid" --seconds "$((secs * 2))" \
  --slow "${SLOW_CONNECTIONS:-2000}" --idle "${IDLE_CONNECTIONS:-2000}"
python3 bench/http/hostile.py inputs --port "$port" --pid "$daemon_pid"
