#!/usr/bin/env bash
# 10x overload of the node daemon (docs/daemon.md, "Overload"): `fluidfaas serve --functions bert-base` on the
# embedded node, then `fluidfaas load` at 100 requests/s for 10 s, 3,600 requests/s for 60 s on 256 connections,
# and 100 requests/s for 10 s. Prints each phase's measured and simulated rows, the daemon's peak resident memory
# and its learned late margin after the overload and after the calm phase; the summaries stay in OUT.
# Usage: scripts/overload.sh [OUT] [SERVE FLAGS...]     (default OUT: out/overload; about 2 minutes)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/release/fluidfaas"
[[ -x "$bin" ]] || { echo "overload: build first (scripts/run.sh --help builds it)" >&2; exit 2; }
out="${1:-$root/out/overload}"
shift || true
rm -rf "$out"
mkdir -p "$out"
port="${FLUIDFAAS_OVERLOAD_PORT:-18181}"
url="http://127.0.0.1:$port"
"$bin" serve --functions bert-base --listen "127.0.0.1:$port" "$@" >"$out/serve.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "$url/v2/health/ready" >/dev/null && break; sleep 0.1; done
curl -sf "$url/v2/health/ready" >/dev/null || { echo "overload: the daemon did not come up ($out/serve.log)" >&2; exit 1; }
(
  peak=0
  while kill -0 "$pid" 2>/dev/null; do
    rss="$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ' || true)"
    [[ -n "$rss" && "$rss" -gt "$peak" ]] && peak="$rss"
    echo "$peak" >"$out/peak_rss_kb"
    sleep 0.5
  done
) &
margin() { curl -s "$url/metrics" | awk '$1 == "fluidfaas_late_margin" {print $2}'; }
"$bin" load --url "$url" --rate 100 --duration 10 --connections 32 --out "$out/before" >"$out/before.txt" 2>&1
"$bin" load --url "$url" --rate 3600 --duration 60 --connections 256 --out "$out/overload" >"$out/overload.txt" 2>&1
after_overload="$(margin)"
"$bin" load --url "$url" --rate 100 --duration 10 --connections 32 --out "$out/after" >"$out/after.txt" 2>&1
after_calm="$(margin)"
kill -TERM "$pid"
wait "$pid" || { echo "overload: the daemon exited $? on SIGTERM" >&2; exit 1; }
trap - EXIT
for phase in before overload after; do
  echo "== $phase"
  grep -E "^ +requests|^measured|^simulated" "$out/$phase.txt"
done
echo "peak resident memory: $(($(cat "$out/peak_rss_kb") / 1024)) MB; late margin after the overload $after_overload," \
  "after the calm phase $after_calm"
