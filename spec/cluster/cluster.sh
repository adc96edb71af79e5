#!/usr/bin/env bash
# make cluster / make cluster-down: a control plane in the background, kubeconfig in .cluster/.
set -euo pipefail
cd "$(dirname "$0")/../.."
state=.cluster
case "${1:-}" in
  up)
    if [ -f "$state/plane.json" ] && kill -0 "$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$state/plane.json")" 2>/dev/null; then
      echo "control plane already running; KUBECONFIG=$PWD/$state/kubeconfig"; exit 0
    fi
    bin=$(spec/cluster/build.sh)
    mkdir -p "$state"; rm -f "$state/plane.json"
    nohup "$bin" up --dir "$PWD/$state" --pv-sync-period 2s > "$state/up.log" 2>&1 &
    for _ in $(seq 1 180); do
      [ -f "$state/plane.json" ] && break
      if ! kill -0 $! 2>/dev/null; then echo "control plane failed to start:"; tail -20 "$state/up.log" "$state"/*.log; exit 1; fi
      sleep 1
    done
    [ -f "$state/plane.json" ] || { echo "control plane not ready after 180 s; logs in $state/"; exit 1; }
    echo "control plane running (logs in $state/)."
    echo "  export KUBECONFIG=$PWD/$state/kubeconfig"
    echo "  kubectl get --raw /readyz    # or: $bin kubectl ... (same version as the server)"
    ;;
  down)
    if [ -f "$state/plane.json" ]; then
      pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$state/plane.json")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      rm -f "$state/plane.json"
      echo "control plane stopped"
    else
      echo "no control plane running"
    fi
    ;;
  *) echo "usage: $0 up|down"; exit 2 ;;
esac
