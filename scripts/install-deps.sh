#!/usr/bin/env bash
# Installs the Debian packages FluidFaaS builds and tests with. Idempotent: a package
# that is already installed is skipped, and apt is not touched when nothing is missing.
# Usage: scripts/install-deps.sh        (as root, or with sudo available)
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libcpp-httplib-dev libboost-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libyaml-cpp-dev
  librapidcheck-dev libgtest-dev libgmock-dev libbenchmark-dev
  libtorch-dev
  libgoogle-perftools-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  gnuplot-nox
  nats-server libnats-dev
  curl prometheus python3 wrk nginx-light
  clang clang-format clang-tidy libclang-rt-14-dev libfuzzer-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
