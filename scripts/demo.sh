#!/usr/bin/env bash
# A one-minute look at FluidFaaS on the embedded emulated node (one A100-80GB split 4g + 2g + 1g; emulated
# executors in real time): the daemon, two phases of open-loop load, and what the node did.
#   1. llama2-13b at 10 requests/s (30 s): one instance takes the 4g; the 2g and the 1g are each too small for
#      llama2-13b, so the second instance is a pipeline over both (stages talking through host shared memory).
#   2. resnet50 and bert-base, 12 requests/s in all (25 s): llama2-13b's burst is over; its idle instances give
#      way (time sharing, eviction to host memory) to the small models.
# The policy's state changes are sped up so that they happen within the minute (dwell and idle eviction 10 s;
# the defaults are 20 s and 60 s). Each phase prints the measured row beside the simulator's prediction.
# Usage: scripts/demo.sh       (after scripts/run.sh, or any release build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release
[ -x "$bin/fluidfaas" ] || { echo "demo: build first (scripts/run.sh builds it)"; exit 1; }
source scripts/lib/daemon.sh
log="$(mktemp)"
daemon_pid=""
trap '[ -z "$daemon_pid" ] || { kill -TERM $daemon_pid 2>/dev/null; wait $daemon_pid 2>/dev/null; }; rm -f "$log"' EXIT
start_daemon "$log" --policy fluidfaas:dwell=10s:idle_evict=10s
head -2 "$log"
state() { echo; echo "-- node at $1"; "$bin/fluidfaas" state --url "$url"; }

echo
echo "== phase 1: llama2-13b at 10 requests/s for 30 s (its first load takes about 16 s: disk, host, device)"
"$bin/fluidfaas" load --url "$url" --functions llama2-13b --rate 10 --duration 30 --seed 1 2>/dev/null
state "the end of phase 1: a pipeline on the 2g + 1g beside the 4g instance"
pipelines="$("$bin/fluidfaas" state --url "$url" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["pipelines"])')"
[ "$pipelines" -ge 1 ] || { echo "demo: no pipeline formed in phase 1"; exit 1; }

echo
echo "== phase 2: resnet50 and bert-base at 12 requests/s in all for 25 s"
"$bin/fluidfaas" load --url "$url" --functions resnet50,bert-base --zipf 0 --rate 12 --duration 25 \
  --seed 2 2>/dev/null >"$log.phase2" &
load=$!
sleep 12
state "12 s into phase 2"
shared="$("$bin/fluidfaas" state --url "$url" --json |
  python3 -c 'import json,sys; print(max(len(s["residents"]) for s in json.load(sys.stdin)["slices"]))')"
[ "$shared" -ge 2 ] || echo "demo: no slice is time-shared 12 s into phase 2 (timing-dependent; see above)"
wait "$load" || true
cat "$log.phase2"
rm -f "$log.phase2"
state "the end of phase 2"
echo
echo "(the simulator's rows start from an empty node; phase 2 on the daemon starts from phase 1's)"
echo "== metrics: $url/metrics"
curl -sf "$url/metrics" | grep -E '^fluidfaas_(launches|pipelines|migrations|evictions)_total|^fluidfaas_requests_total' |
  sed 's/^/  /'
