#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over the project's sources using the release build's compile database.
# Usage: scripts/lint.sh [FILE...]      (default: every .cc under src/ except the LibTorch ones, which are slow)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/release/compile_commands.json ] || cmake --preset release >/dev/null
if [ $# -eq 0 ]; then
  mapfile -t files < <(git ls-files 'src/*.cc' | grep -v -e torchscript -e worker_main)
else
  files=("$@")
fi
clang-tidy -p build/release --quiet "${files[@]}" 2>/dev/null | grep -E '^(/|src/).*(warning|error):' || echo "clang-tidy: clean"
