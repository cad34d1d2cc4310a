#!/usr/bin/env bash
# Builds the fluidfaas binaries (fluidfaas, and fluidfaas-worker for serve) when needed (installing packages first) and runs it with the given arguments.
# Usage: scripts/run.sh node show      (any fluidfaas subcommand; try scripts/run.sh --help)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
{
  "$root/scripts/install-deps.sh"
  cmake -S "$root" --preset release
  cmake --build "$root/build/release" --target fluidfaas fluidfaas-worker -j 2
} >&2
exec "$root/build/release/fluidfaas" "$@"
