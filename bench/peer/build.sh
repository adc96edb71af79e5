#!/usr/bin/env bash
# Builds (once) the Go benchmark peer and prints its path. The binary is cached outside the work
# tree, keyed by the Go version and a hash of this module, so later runs reuse it.
#   BENCH_PEER_CACHE  cache root (default: ${XDG_CACHE_HOME:-~/.cache}/datera-provisioner)
#   BENCH_PEER_BIN    use this prebuilt binary instead
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${BENCH_PEER_BIN:-}" ]; then echo "$BENCH_PEER_BIN"; exit 0; fi
gover=$(go env GOVERSION)
hash=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" "$0" | sha256sum | cut -c1-12)
root=${BENCH_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/datera-provisioner}
out="$root/bench-peer-$gover-$hash"
bin="$out/bench-peer"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$out"
echo "bench-peer: building the Go peer (sig-storage-lib-external-provisioner v13) into $out; about 2-3 minutes cold" >&2
cd "$here"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp" . >&2
mv "$bin.tmp" "$bin"
echo "$bin"
