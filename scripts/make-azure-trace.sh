#!/usr/bin/env bash
# Writes a synthetic trace in the Azure Functions 2019 format (invocations_per_function_md.anon.dXX.csv:
# HashOwner,HashApp,HashFunction,Trigger, then one count column per minute named 1..1440) for timing the
# simulator on a day-long trace: FUNCTIONS functions with Zipf(1) popularity, a diurnal swing of +-50%, about
# TOTAL invocations in all.
#
# Usage: scripts/make-azure-trace.sh OUT.csv [TOTAL=10000000] [FUNCTIONS=200]
set -euo pipefail
out=${1:?usage: $0 OUT.csv [TOTAL] [FUNCTIONS]}
total=${2:-10000000}
functions=${3:-200}
mkdir -p "$(dirname "$out")"
awk -v total="$total" -v n="$functions" 'BEGIN {
  pi = atan2(0, -1)
  h = 0
  for (f = 1; f <= n; f++) h += 1 / f
  printf "HashOwner,HashApp,HashFunction,Trigger"
  for (m = 1; m <= 1440; m++) printf ",%d", m
  printf "\n"
  for (f = 1; f <= n; f++) {
    printf "owner%d,app%d,func%d,http", f, f, f
    carry = 0
    for (m = 1; m <= 1440; m++) {
      # Per-minute share of the day: 1 + 0.5 sin(...), normalised over 1440 minutes (the sine sums to ~0).
      x = total / 1440 * (1 + 0.5 * sin(2 * pi * (m - 1) / 1440)) / (f * h) + carry
      c = int(x)
      carry = x - c
      printf ",%d", c
    }
    printf "\n"
  }
}' > "$out"
