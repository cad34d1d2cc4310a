#!/usr/bin/env bash
# Builds FluidFaaS and runs every test. Installs the Debian packages it needs first (idempotent).
# Usage: scripts/test.sh [release|debug|asan|tsan]     (default: release; tsan builds and runs the threaded
# code's tests only)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/install-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset"
