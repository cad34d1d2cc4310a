#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over the project's sources using the release build's compile database, two files
# at a time. Exit 1 when it finds anything (the findings on stdout), 0 when clean.
# Usage: scripts/lint.sh [--no-tests] [FILE...]   (default: every .cc under src/ except the LibTorch ones, whose
#        headers clang-tidy cannot parse cleanly and which are slow; --no-tests leaves out the *_test.cc files too,
#        as CI does to stay within its time)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/release/compile_commands.json ] || cmake --preset release >/dev/null
skip='^$'
if [ "${1:-}" = "--no-tests" ]; then
  skip='_test\.cc$'
  shift
fi
if [ $# -eq 0 ]; then
  mapfile -t files < <(git ls-files 'src/*.cc' | grep -v -e torch -e worker_main | grep -v -E "$skip")
else
  files=("$@")
fi
findings="$(printf '%s\n' "${files[@]}" | xargs -P 2 -n 4 clang-tidy -p build/release --quiet 2>/dev/null \
  | grep -E '^(/|src/).*(warning|error):' || true)"
if [ -n "$findings" ]; then
  echo "$findings"
  echo "clang-tidy: $(echo "$findings" | wc -l) findings in ${#files[@]} files"
  exit 1
fi
echo "clang-tidy: clean (${#files[@]} files)"
