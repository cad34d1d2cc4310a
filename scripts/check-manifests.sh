#!/usr/bin/env bash
# Checks what deploys FluidFaaS, offline:
#  1. every kustomization under deploy/k8s renders (`kubectl kustomize`), and every rendered object validates against
#     the Kubernetes schemas and the cross-object rules of deploy/k8s/validate.mjs (selectors, references);
#  2. every MIG layout in deploy/k8s/mig is one the GPU can place (`fluidfaas mig validate`);
#  3. the Dockerfile: base images pinned, a non-root user last, apt lists removed, each stage named that is copied
#     from; the runtime stage installs the package of every library the binaries link (readelf NEEDED, dpkg -S);
#     and the sources it copies configure with CMake on their own;
#  4. the check itself: broken copies of the manifests (a wrong type, an unknown kind, a selector that matches
#     nothing, a missing resource) must each fail.
# Needs kubectl (with kustomize) and Node.js with npm; installs kubernetes-models@4.5.1 and js-yaml@4 into
# build/k8s-tools. Without kubectl it says so and exits 0, except under CI=true, where it fails.
# Usage: scripts/check-manifests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
if ! command -v kubectl >/dev/null; then
  echo "check-manifests: kubectl is not installed (not in Debian's archive; see docs/operations.md)"
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi
command -v npm >/dev/null || { echo "check-manifests: npm missing (scripts/install-deps.sh)"; exit 1; }
tools="$root/build/k8s-tools"
if [ ! -f "$tools/node_modules/kubernetes-models/package.json" ] || [ ! -f "$tools/node_modules/js-yaml/package.json" ]; then
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-audit --no-fund --silent kubernetes-models@4.5.1 js-yaml@4 >/dev/null
fi
cp deploy/k8s/validate.mjs "$tools/validate.mjs"  # ES modules resolve packages beside the script
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# check_tree DIR: renders every overlay and the mig kustomization under DIR and validates them; 0 when all pass.
check_tree() {
  local dir="$1" ok=0 k
  for k in "$dir"/overlays/* "$dir"/mig; do
    local name out
    name="$(basename "$k")"
    out="$work/rendered-$name.yaml"
    if ! kubectl kustomize "$k" >"$out" 2>"$work/kustomize.err"; then
      echo "  $name: kubectl kustomize failed: $(head -c 300 "$work/kustomize.err")"
      ok=1
      continue
    fi
    if node "$tools/validate.mjs" "$out" >"$work/validate.out"; then
      echo "  $name: $(tail -n 1 "$work/validate.out")"
    else
      sed 's/^/  '"$name"': /' "$work/validate.out"
      ok=1
    fi
  done
  return "$ok"
}

echo "== deploy/k8s: render and validate"
check_tree deploy/k8s

echo "== MIG layouts (deploy/k8s/mig) against the GPU's placement rules"
bin=build/release/fluidfaas
if [ -x "$bin" ]; then
  kubectl kustomize deploy/k8s/mig >"$work/mig.yaml"
  python3 - "$work/mig.yaml" >"$work/layouts" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
# The config.yaml inside the ConfigMap: one "NAME: [ {devices, mig-enabled, mig-devices} ]" per layout.
name, devices = None, {}
def flush():
    if name is not None:
        print(name, "+".join(p for p, n in devices.items() for _ in range(n)) or "-")
for line in text.splitlines():
    if m := re.match(r"^      ([A-Za-z0-9._-]+):\s*$", line):
        flush()
        name, devices = m.group(1), {}
    elif m := re.match(r'^\s+"?(\d+g\.\d+gb)"?:\s*(\d+)\s*$', line):
        devices[m.group(1)] = int(m.group(2))
flush()
PY
  while read -r name layout; do
    if [ "$layout" = "-" ]; then echo "  $name: MIG disabled"; continue; fi
    if placed="$("$bin" mig validate --gpu a100-80gb "$layout" 2>&1)"; then
      echo "  $name: $layout -> $placed"
    else
      echo "  $name: $layout cannot be placed on an A100-80GB: $placed"
      exit 1
    fi
  done <"$work/layouts"
  [ -s "$work/layouts" ] || { echo "  no layout found in deploy/k8s/mig"; exit 1; }
else
  echo "  skipped: $bin not built (scripts/test.sh builds it)"
fi

echo "== deploy/docker/Dockerfile"
dockerfile=deploy/docker/Dockerfile
problems=0
problem() { echo "  $*"; problems=$((problems + 1)); }
for image in $(awk '/^FROM / { print $2 }' "$dockerfile"); do
  case "$image" in
    *@sha256:*) ;;
    *:latest) problem "a base image is :latest: $image" ;;
    *:*) ;;
    *) problem "unpinned base image: $image" ;;
  esac
done
last_user="$(awk '/^FROM /{user=""} /^USER /{user=$2} END{print user}' "$dockerfile")"
case "$last_user" in "" | root | 0) problem "the final stage runs as root (no USER, or USER root)" ;; esac
grep -q 'apt-get install' "$dockerfile" && ! grep -q 'rm -rf /var/lib/apt/lists' "$dockerfile" &&
  problem "apt lists are left in the image"
grep 'apt-get install' "$dockerfile" | grep -qv -- '--no-install-recommends' && problem "apt-get install without --no-install-recommends"
grep -qE '^ADD +https?://' "$dockerfile" && problem "ADD from a URL (download in a RUN with a checksum instead)"
for stage in $(grep -oE 'COPY --from=[A-Za-z0-9_-]+' "$dockerfile" | cut -d= -f2 | sort -u); do
  grep -qiE "^FROM .* AS $stage\$" "$dockerfile" || problem "COPY --from=$stage names no stage"
done
# The runtime stage's packages against the libraries the binaries need.
runtime_packages="$(awk '/^FROM .* AS runtime/{rt=1} rt' "$dockerfile" | tr -d '\\' | tr ' ' '\n' | grep -E '^lib|^ca-' | sort -u)"
if [ -x build/release/fluidfaas ] && [ -x build/release/fluidfaas-worker ]; then
  for b in build/release/fluidfaas build/release/fluidfaas-worker; do
    # ldd's whole answer first: an awk that exits at its match can close the pipe while ldd still writes, and under
    # pipefail the SIGPIPE ended this script without a word (CI, 2026-12-05).
    resolved="$(ldd "$b")"
    for lib in $(readelf -d "$b" | awk '/NEEDED/ { gsub(/[\[\]]/, "", $5); print $5 }'); do
      path="$(awk -v l="$lib" '$1 == l && !found { print $3; found = 1 }' <<<"$resolved")"
      pkg="$(dpkg -S "$path" 2>/dev/null || dpkg -S "/usr$path" 2>/dev/null || dpkg -S "$(realpath "$path")" 2>/dev/null || true)"
      pkg="${pkg%%:*}"
      case "$pkg" in
        libc6 | libgcc-s1 | libstdc++6) ;;  # in debian:12-slim
        "") problem "$(basename "$b") needs $lib, from no installed package" ;;
        *) grep -qx "$pkg" <<<"$runtime_packages" || problem "$(basename "$b") needs $lib (package $pkg): not installed in the runtime stage" ;;
      esac
    done
  done
else
  echo "  the runtime libraries: skipped (build/release not built)"
fi
# The build context it copies configures on its own.
mkdir -p "$work/context"
for path in $(awk '/^COPY / && !/--from/ { for (i = 2; i < NF; ++i) print $i }' "$dockerfile"); do
  cp -r "$path" "$work/context/"
done
if ! cmake -S "$work/context" -B "$work/context-build" -DCMAKE_BUILD_TYPE=Release -DFLUIDFAAS_BUILD_TESTS=OFF \
  -DFLUIDFAAS_BUILD_BENCH=OFF >"$work/cmake.log" 2>&1; then
  problem "the sources the Dockerfile copies do not configure: $(tail -n 5 "$work/cmake.log")"
fi
if [ "$problems" -gt 0 ]; then
  echo "  $problems problems"
  exit 1
fi
echo "  clean: pinned images, non-root ($last_user), runtime packages cover every library, the copied sources configure"

echo "== the check itself: broken copies must fail"
broken() {  # NAME FILE SED-EXPRESSION
  rm -rf "$work/k8s"
  cp -r deploy/k8s "$work/k8s"
  sed -i "$3" "$work/k8s/$2"
  if check_tree "$work/k8s" >"$work/broken.out" 2>&1; then
    echo "  $1: NOT caught"
    cat "$work/broken.out"
    return 1
  fi
  echo "  $1: caught ($(grep -v ' 0 problems' "$work/broken.out" | head -n 1 | sed 's/^ *//' | cut -c1-120))"
}
broken "a wrong type" base/gateway.yaml 's/^  replicas: 2$/  replicas: two/'
broken "an unknown kind" base/gateway.yaml 's/^kind: PodDisruptionBudget$/kind: PodDisruptionBudge/'
broken "a selector that matches no pod" base/gateway.yaml '0,/app.kubernetes.io\/name: fluidfaas-gateway$/s//app.kubernetes.io\/name: fluidfaas-gatewy/'
broken "a missing selector" base/node.yaml '/^  selector:$/,/^  updateStrategy:$/{/^  selector:$/d;/matchLabels:/d;/name: fluidfaas-node$/d}'
broken "a resource that is not there" base/kustomization.yaml 's/  - gateway.yaml/  - gateway-missing.yaml/'
echo "check-manifests: ok"
