#!/usr/bin/env bash
# Regenerates go.mod/go.sum for a Kubernetes version: pins every staging module that
# k8s.io/kubernetes@vK replaces to ./staging to the published v0.x.y tag.
set -euo pipefail
K=${1:?usage: resolve.sh 1.34.4}
S="v0.${K#1.}"
cd "$(dirname "$0")"
GOMOD=$(go mod download -json "k8s.io/kubernetes@v$K" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
for m in $(sed -n 's|^[[:space:]]*\(k8s.io/[^ ]*\) => \./staging/.*|\1|p' "$GOMOD"); do
  go mod edit -replace="$m=$m@$S"
done
go get "k8s.io/kubernetes@v$K"
go mod tidy
