#!/usr/bin/env bash
# The gateway's overhead over calling the node directly: a nats-server, one emulated node (bert-base at
# --time-scale 1e-6: the model's time is ~0) and a gateway on loopback; wrk on the binary form, the node directly
# and through the gateway in alternating runs (ROUNDS pairs, each SECONDS long) at 1 and 16 connections. Prints each
# pair, then the medians of the paired differences: throughput through the gateway as a share of the direct run's,
# p50 and p99 added. Pairs, not means: on a shared VM the direct figure alone swings 2-4x between minutes, and a
# pair run back to back sees the same machine. Also the CPU each process spent per call through the gateway
# (/proc/PID/stat), the figure that carries to a machine where the gateway has cores of its own. Beside them, in the
# same rounds, nginx as a plain reverse proxy in front of the same node: what any L7 hop costs on this machine.
# Usage: scripts/bench-gateway.sh [SECONDS] [ROUNDS]     (default 4 and 5; CI runs 2 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-4}"
rounds="${2:-5}"
bin=build/release/fluidfaas
source scripts/lib/cluster.sh
cluster_script bench-gateway
[ -x "$bin" ] || { echo "bench-gateway: $bin missing (scripts/test.sh builds it)"; exit 1; }

nats_port="$(free_port)"
start_nats "$nats_port" "$work/store" "$work/nats.log" || exit 1
pids+=("$nats_pid")
nats="nats://127.0.0.1:$nats_port"
node_port="$(free_port)"
"$bin" serve --functions bert-base --time-scale 1e-6 --listen "127.0.0.1:$node_port" --grpc-listen off \
  --nats "$nats" --node n1 >"$work/node.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")
gw_port="$(free_port)"
"$bin" gateway --listen "127.0.0.1:$gw_port" --nats "$nats" >"$work/gateway.log" 2>&1 &
gw_pid=$!
pids+=("$gw_pid")
for _ in $(seq 100); do [ "$(healthy_nodes "http://127.0.0.1:$gw_port")" = 1 ] && break; sleep 0.1; done
[ "$(healthy_nodes "http://127.0.0.1:$gw_port")" = 1 ] || fail "the gateway does not see the node"
# The strongest alternative an operator would put in front of a node: nginx as a reverse proxy, one worker (the
# gateway is one loop thread), HTTP/1.1 keep-alive to the node. It routes nothing: the floor of any L7 hop here.
proxy_port="$(free_port)"
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path $work/nginx; proxy_temp_path $work/nginx;
  upstream node { server 127.0.0.1:$node_port; keepalive 64; }
  server {
    listen 127.0.0.1:$proxy_port;
    location / { proxy_pass http://node; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
CONF
nginx -c "$work/nginx.conf" &
pids+=("$!")
direct="http://127.0.0.1:$node_port/v2/models/bert-base/infer"
via="http://127.0.0.1:$gw_port/v2/models/bert-base/infer"
proxy="http://127.0.0.1:$proxy_port/v2/models/bert-base/infer"
for url in "$direct" "$via" "$proxy"; do  # warm: the instance loaded, the gateway's connection to the node open
  for _ in $(seq 50); do
    curl -sf -X POST "$url" --data-binary @bench/http/bert_infer.json -o /dev/null && break
    sleep 0.1
  done
done

# wrk's req/s, p50 and p99 (ms) and non-2xx count as one line.
wrk_run() {  # URL CONNECTIONS
  wrk -t1 -c"$2" -d"${secs}s" --latency -s bench/http/binary.lua "$1" | awk '
    /Requests\/sec/ { rps = $2 }
    / 50%/ { p50 = $2 } / 99%/ { p99 = $2 }
    /Non-2xx/ { bad = $NF }
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    END { printf "%.0f %.3f %.3f %d\n", rps, ms(p50), ms(p99), bad }'
}
# Clock ticks of user + system time a process has used.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

for c in 1 16; do
  echo
  echo "== $c connection(s), binary form, ${secs} s a run, direct and through the gateway alternately"
  echo "| pair | direct req/s | p50 ms | p99 ms | gateway req/s | p50 ms | p99 ms | share | p50 + ms | p99 + ms | nginx proxy req/s | share | p50 + ms |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  : >"$work/pairs.$c"
  for r in $(seq "$rounds"); do
    read -r d_rps d_p50 d_p99 d_bad < <(wrk_run "$direct" "$c")
    gw0="$(ticks "$gw_pid")"; node0="$(ticks "$node_pid")"
    read -r g_rps g_p50 g_p99 g_bad < <(wrk_run "$via" "$c")
    gw1="$(ticks "$gw_pid")"; node1="$(ticks "$node_pid")"
    read -r n_rps n_p50 n_p99 n_bad < <(wrk_run "$proxy" "$c")
    [ "$d_bad" = 0 ] && [ "$g_bad" = 0 ] && [ "$n_bad" = 0 ] ||
      fail "non-2xx answers: direct $d_bad, through the gateway $g_bad, through nginx $n_bad"
    python3 - "$r" "$d_rps" "$d_p50" "$d_p99" "$g_rps" "$g_p50" "$g_p99" "$((gw1 - gw0))" "$((node1 - node0))" \
      "$secs" "$(getconf CLK_TCK)" "$n_rps" "$n_p50" >>"$work/pairs.$c" <<'PY'
import sys
r, d_rps, d_p50, d_p99, g_rps, g_p50, g_p99, gw_ticks, node_ticks, secs, hz, n_rps, n_p50 = sys.argv[1:]
calls = float(g_rps) * float(secs)
us = lambda t: 1e6 * int(t) / int(hz) / calls if calls else 0
print(r, d_rps, d_p50, d_p99, g_rps, g_p50, g_p99, float(g_rps) / float(d_rps), float(g_p50) - float(d_p50),
      float(g_p99) - float(d_p99), us(gw_ticks), us(node_ticks), n_rps, float(n_rps) / float(d_rps),
      float(n_p50) - float(d_p50))
PY
    tail -n 1 "$work/pairs.$c" | awk '{ printf "| %d | %d | %.3f | %.3f | %d | %.3f | %.3f | %.0f%% | %+.3f | %+.3f | %d | %.0f%% | %+.3f |\n",
      $1, $2, $3, $4, $5, $6, $7, 100 * $8, $9, $10, $13, 100 * $14, $15 }'
  done
  python3 - "$work/pairs.$c" "$c" <<'PY'
import statistics, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1])]
med = lambda i: statistics.median(r[i] for r in rows)
print(f"median of {len(rows)} pairs at {sys.argv[2]} connection(s): throughput through the gateway "
      f"{100 * med(7):.0f}% of direct, p50 {med(8):+.3f} ms, p99 {med(9):+.3f} ms; CPU per call through the gateway: "
      f"gateway {med(10):.0f} us, node {med(11):.0f} us; nginx as the proxy instead: {100 * med(13):.0f}% of direct, "
      f"p50 {med(14):+.3f} ms")
PY
done
