#!/usr/bin/env bash
# The node daemon, end to end, as an operator meets it: starts `fluidfaas serve` on the embedded default node
# (emulated A100-80GB, 1g + 2g + 4g, zoo functions), calls it with curl and the CLI client, feeds it garbage, lints
# /metrics with promtool (Debian package prometheus) when it is installed, sends SIGTERM and checks that it
# drains, exits 0 and leaves no worker process behind. Exit 0 when all of that holds.
# Usage: scripts/serve-smoke.sh            (after a release build: scripts/test.sh or scripts/run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release
source scripts/lib/daemon.sh
log="$(mktemp)"
workers_before="$(pgrep -fc 'fluidfaas-worker.*serve --control-fd' || true)"
daemon_pid=""
trap '[ -z "$daemon_pid" ] || kill -9 $daemon_pid 2>/dev/null || true; rm -f "$log"' EXIT
start_daemon "$log" --time-scale 0.1
pid=$daemon_pid
fail() { echo "serve-smoke: $*"; cat "$log"; exit 1; }
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

curl -sf "$url/v2/health/live" >/dev/null || fail "not live"
# Each body is read whole before it is matched: under pipefail, a `grep -q` that stops at its match can leave the
# writer a SIGPIPE, and the check fails although the body was right.
body() { curl -sf "$@" || echo "(curl failed: $?)"; }
grep -q '"name":"fluidfaas"' <<<"$(body "$url/v2")" || fail "server metadata"
grep -q '"shape":\[-1,128\]' <<<"$(body "$url/v2/models/bert-base")" || fail "model metadata"
"$bin/fluidfaas" invoke --url "$url" --model bert-base --timeout-ms 30000 >/dev/null || fail "first (cold) request"
"$bin/fluidfaas" invoke --url "$url" --model bert-base --repeat 20 >/dev/null || fail "warm requests"
"$bin/fluidfaas" invoke --url "$url" --model llama2-13b --timeout-ms 60000 >/dev/null || fail "llama2-13b"
summary="$("$bin/fluidfaas" load --url "$url" --functions bert-base --rate 40 --duration 3 --json 2>/dev/null)" ||
  fail "load: some requests went unanswered"
grep -q '"unanswered": 0' <<<"$summary" || fail "load: $summary"
completed="$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["hits"] + d["late"])' <<<"$summary")"
[ "$(status -X POST -d '{nope' "$url/v2/models/bert-base/infer")" = 400 ] || fail "garbage body is not 400"
[ "$(status -X POST -d '{"inputs": 7}' "$url/v2/models/bert-base/infer")" = 400 ] || fail "bad inputs are not 400"
[ "$(status -X POST -d '{}' "$url/v2/models/nope/infer")" = 404 ] || fail "unknown model is not 404"
[ "$(status "$url/v2/models/bert-base/ready")" = 200 ] || fail "model not ready"
grep -q '"instances"' <<<"$(body "$url/v1/node")" || fail "node state"
metrics="$(curl -sf "$url/metrics")" || fail "metrics"
grep -q "fluidfaas_requests_total{function=\"bert-base\",outcome=\"completed\",code=\"\"} $((21 + completed))" \
  <<<"$metrics" || fail "metrics do not count the $((21 + completed)) completed bert-base requests"
if command -v promtool >/dev/null; then
  promtool check metrics <<<"$metrics" || fail "promtool check metrics"
else
  echo "serve-smoke: promtool not installed (Debian package prometheus): metrics format not linted"
fi
kill -TERM "$pid"
code=0
wait "$pid" || code=$?
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
sleep 0.5
workers_after="$(pgrep -fc 'fluidfaas-worker.*serve --control-fd' || true)"
[ "$workers_after" = "$workers_before" ] || fail "worker processes left behind ($workers_before before, $workers_after after)"
echo "serve-smoke: ok ($url)"
