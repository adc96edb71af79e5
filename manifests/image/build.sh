#!/usr/bin/env bash
# Builds image archives without Docker (see build.ts): manifests/image/build.sh [product] [busybox] [pause]
# Options: --name NAME --tag TAG (product), --out-dir DIR (default .images), --node-version X.Y.Z.
# Prints the path of each archive on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec node --import tsx manifests/image/build.ts "$@"
