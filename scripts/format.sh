#!/usr/bin/env bash
# clang-format (.clang-format) on every C++ source of the project: --check reports files that differ and exits
# 1; without it, formats them in place.
# Usage: scripts/format.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = "--check" ]; then
  if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/format.$$; then
    grep -E '^[^ ].*: (warning|error):' /tmp/format.$$ | cut -d: -f1 | sort -u | sed 's/^/needs formatting: /'
    rm -f /tmp/format.$$
    echo "format: run scripts/format.sh"
    exit 1
  fi
  rm -f /tmp/format.$$
  echo "format: clean (${#files[@]} files)"
else
  clang-format -i "${files[@]}"
fi
