#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan; the "fuzz" preset) and runs each for SECONDS on its
# corpus in fuzz/corpus/NAME. New inputs go to a scratch folder, so the repository's corpus stays as committed;
# a crash, leak, hang or sanitizer report stops the run and fails the script (the input is in build/fuzz/).
# Usage: scripts/fuzz.sh [SECONDS] [NAME...]     (default: 60 s each; every harness)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(layout slice_list node_config manifest azure_trace http_request oip_infer)
scripts/install-deps.sh >&2
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
for name in "${names[@]}"; do
  scratch="$(mktemp -d)"
  echo "== fuzz: $name for ${seconds} s"
  (cd build/fuzz && ./fuzz/"${name}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
     -max_len=65536 -print_final_stats=1 "$scratch" "../../fuzz/corpus/$name" 2>&1 | tail -n 40)
  rm -rf "$scratch"
done
