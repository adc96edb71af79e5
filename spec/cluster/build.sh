#!/usr/bin/env bash
# Builds (once) the multicall Kubernetes binary (control plane, kubelet, kube-proxy) from upstream Go modules and prints its path.
# The result is cached outside the work tree, keyed by the Kubernetes version, the Go version
# and a hash of the wrapper module, so every later run (tests, demo, benchmarks) reuses it.
#   TESTPLANE_CACHE  cache root (default: ${XDG_CACHE_HOME:-~/.cache}/datera-provisioner)
#   TESTPLANE_BIN    use this prebuilt binary instead
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
plane="$here/plane"
if [ -n "${TESTPLANE_BIN:-}" ]; then echo "$TESTPLANE_BIN"; exit 0; fi
K=$(sed -n 's|^[[:space:]]*k8s.io/kubernetes v\([0-9.]*\)$|\1|p' "$plane/go.mod" | head -n1)
MAJ=${K%%.*}; rest=${K#*.}; MIN=${rest%%.*}
gover=$(go env GOVERSION)
hash=$(cat "$plane/go.mod" "$plane/go.sum" "$plane"/*.go "$0" | sha256sum | cut -c1-12)
root=${TESTPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/datera-provisioner}
out="$root/testplane-v$K-$gover-$hash"
bin="$out/testplane"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$out"
echo "testplane: building kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, etcd and kubectl v$K from Go modules" >&2
echo "testplane: a cold build takes about 15-30 minutes on 2 cores; it is cached in $out" >&2
X="-X main.k8sVersion=v$K"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  X="$X -X $p.gitVersion=v$K -X $p.gitMajor=$MAJ -X $p.gitMinor=$MIN -X $p.gitTreeState=clean"
done
cd "$plane"
start=$(date +%s)
# -v prints each package as it compiles: that is the progress indicator on a long cold build.
log="$out/build.log"
if ! CGO_ENABLED=0 go build -v -trimpath -p "${TESTPLANE_BUILD_PARALLEL:-2}" -tags selinux,notest,grpcnotrace \
  -ldflags "-s -w $X" -o "$bin.tmp" . 2>&1 | tee "$log" |
  awk '{n++; if (n % 100 == 0) { printf "testplane: %d packages compiled (%s)\n", n, $0 > "/dev/stderr" } }'; then
  :
fi
if [ ! -x "$bin.tmp" ]; then
  echo "testplane: build failed; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
mv "$bin.tmp" "$bin"
echo "testplane: built in $(( $(date +%s) - start )) s: $bin" >&2
echo "$bin"
