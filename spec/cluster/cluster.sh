#!/usr/bin/env bash
# make cluster / make cluster-down / make cluster-load: a local two-node Kubernetes cluster with
# the Datera simulator, and the provisioner and node driver installed the way the README says.
#
#   up      build what is missing (Kubernetes binary, images), start everything in the
#           background, install the product; writes .cluster/kubeconfig
#   down    stop everything; leaves no processes, mounts, loop devices or network devices
#   load F  import the image archive F (OCI or docker format) into every node's containerd
#   status  what is running
#
# Settings (environment): CLUSTER_ADDRESS (10.250.0.1: the cluster's own address, on a bridge
# device this script creates; the API server, the simulator and the kubelets listen there and
# nowhere else), CLUSTER_NODES (2), CLUSTER_SIM_PORT (7717), CLUSTER_SIM_ARGS (extra simulator
# flags, e.g. --latency-ms 20), CLUSTER_INSTALL (1; 0 = bare cluster, no provisioner/driver).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
state=$root/.cluster
ADDR=${CLUSTER_ADDRESS:-10.250.0.1}
NODES=${CLUSTER_NODES:-2}
SIM_PORT=${CLUSTER_SIM_PORT:-7717}
SIM_URL=http://$ADDR:$SIM_PORT
NS=datera-system
BRIDGE=dtr0

say() { printf '\033[1mcluster:\033[0m %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
kc() { "$state/bin/kubectl" "$@"; }
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

images() { ls "$root"/.images/*.tar 2>/dev/null | paste -sd, -; }

net_up() {
  # Remember the forwarding setting to restore it at `down`.
  [ -f "$state/ip_forward.orig" ] || sysctl -n net.ipv4.ip_forward >"$state/ip_forward.orig"
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr show dev "$BRIDGE" | grep -q "inet $ADDR/" || ip addr add "$ADDR/32" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  sysctl -qw net.ipv4.ip_forward=1
}

net_down() {
  for dev in $(ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: \(dtrcni[0-9]*\)[:@].*/\1/p') "$BRIDGE"; do
    ip link del "$dev" 2>/dev/null || true
  done
  if [ -f "$state/ip_forward.orig" ]; then
    sysctl -qw net.ipv4.ip_forward="$(cat "$state/ip_forward.orig")" || true
    rm -f "$state/ip_forward.orig"
  fi
}

# iptables chains kube-proxy made for the cluster's Services.
iptables_down() {
  local bin=$1 t
  # Rules kubelet or kube-proxy may add to the machine's own chains (neither is configured to).
  for t in iptables ip6tables; do
    while "$t" -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    while "$t" -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    "$t" -F KUBE-FIREWALL 2>/dev/null && "$t" -X KUBE-FIREWALL 2>/dev/null || true
  done
  if iptables-save 2>/dev/null | grep -q 'KUBE-' || ip6tables-save 2>/dev/null | grep -q 'KUBE-'; then
    "$bin" kube-proxy --cleanup >"$state/kube-proxy-cleanup.log" 2>&1 || true
  fi
}

start_sim() {
  running "$state/sim.pid" && return 0
  mkdir -p "$state/volumes"
  # shellcheck disable=SC2086
  nohup node --import tsx lib/sim/cli.ts --host "$ADDR" --port "$SIM_PORT" \
    --seed config/sim-seed.yaml --backing-dir "$state/volumes" ${CLUSTER_SIM_ARGS:-} >"$state/sim.log" 2>&1 &
  echo $! >"$state/sim.pid"
  for _ in $(seq 1 60); do
    curl -fsS "$SIM_URL/_sim/state" >/dev/null 2>&1 && return 0
    running "$state/sim.pid" || break
    sleep 0.5
  done
  tail -20 "$state/sim.log" >&2
  die "the Datera simulator did not start (log: $state/sim.log)"
}

install_product() {
  say "installing the provisioner and the node driver as the README says"
  kc apply -f manifests/base/namespace.yaml >/dev/null
  kc -n "$NS" get secret datera-credentials >/dev/null 2>&1 ||
    kc -n "$NS" create secret generic datera-credentials --type=datera/iscsi \
      --from-literal=server="$SIM_URL" --from-literal=username=admin --from-literal=password=password
  kc apply -k manifests/base >/dev/null
  kc apply -k manifests/flex >/dev/null
  kc -n "$NS" rollout status deployment/datera-provisioner --timeout=180s
  kc -n "$NS" rollout status daemonset/datera-flex --timeout=180s
  for i in $(seq 1 "$NODES"); do
    local drv="$state/nodes/node-$i/root/usr/libexec/kubernetes/kubelet-plugins/volume/exec/datera~iscsi/iscsi"
    for _ in $(seq 1 120); do [ -x "$drv" ] && break; sleep 1; done
    [ -x "$drv" ] || die "the datera/iscsi driver was not installed on node-$i"
  done
}

up() {
  [ "$(id -u)" = 0 ] || die "needs root (containerd, kubelet, mounts, loop devices)"
  if running "$state/up.pid"; then
    say "already running; export KUBECONFIG=$state/kubeconfig"
    return 0
  fi
  spec/cluster/deps.sh
  local bin
  bin=$(spec/cluster/build.sh)
  make --no-print-directory -s image node-images >&2
  # A fresh cluster: nothing of an earlier one's nodes (pods, images, IP allocations) is reused.
  rm -rf "$state/nodes" "$state/plane.json"
  mkdir -p "$state/bin"
  printf '#!/bin/sh\n# kubectl of the same version as the cluster, against it by default.\nKUBECONFIG=${KUBECONFIG:-%s} exec %s kubectl "$@"\n' \
    "$state/kubeconfig" "$bin" >"$state/bin/kubectl"
  chmod +x "$state/bin/kubectl"
  net_up
  start_sim
  say "starting the control plane, kube-proxy and $NODES nodes (logs in $state/)"
  DATERA_ISCSI_STANDIN_SIM=$SIM_URL DATERA_ISCSI_STANDIN_BACKING_DIR=$state/volumes nohup "$bin" up --dir "$state" --bind-address "$ADDR" \
    --in-cluster-clients --scheduler --kube-proxy --nodes "$NODES" --node-images "$(images)" \
    --node-path "$root/spec/cluster/node" --pv-sync-period 2s >"$state/up.log" 2>&1 &
  echo $! >"$state/up.pid"
  for _ in $(seq 1 300); do
    [ -f "$state/plane.json" ] && break
    running "$state/up.pid" || { tail -20 "$state/up.log" >&2; die "the cluster failed to start (logs in $state/)"; }
    sleep 1
  done
  [ -f "$state/plane.json" ] || die "the cluster was not ready after 300 s (logs in $state/)"
  kc wait --for=condition=Ready node --all --timeout=180s >/dev/null
  [ "${CLUSTER_INSTALL:-1}" = 1 ] && install_product
  kc get nodes -o wide >&2
  say "ready. export KUBECONFIG=$state/kubeconfig   (kubectl: $state/bin/kubectl; Datera simulator: $SIM_URL)"
}

down() {
  local bin
  bin=$(TESTPLANE_QUIET=1 spec/cluster/build.sh 2>/dev/null || true)
  if running "$state/up.pid"; then
    say "stopping the nodes, kube-proxy and the control plane"
    kill "$(cat "$state/up.pid")"
    for _ in $(seq 1 60); do running "$state/up.pid" || break; sleep 1; done
    running "$state/up.pid" && kill -9 "$(cat "$state/up.pid")"
  fi
  rm -f "$state/up.pid" "$state/plane.json"
  if running "$state/sim.pid"; then
    kill "$(cat "$state/sim.pid")"
    for _ in $(seq 1 20); do running "$state/sim.pid" || break; sleep 0.5; done
  fi
  rm -f "$state/sim.pid"
  # Loop devices the iSCSI stand-in attached for volumes the nodes had logged in to.
  if [ -d "$state/volumes" ]; then
    node spec/cluster/node/iscsiadm.mjs --standin-cleanup "$state/volumes" && rm -rf "$state/volumes"
  fi
  [ -n "$bin" ] && iptables_down "$bin"
  net_down
  say "stopped"
}

load() {
  local file=${1:?usage: make cluster-load IMAGE=archive.tar}
  [ -f "$file" ] || die "$file: no such file"
  local n=0
  for sock in "$state"/nodes/node-*/containerd.sock; do
    [ -S "$sock" ] || continue
    ctr --address "$sock" -n k8s.io images import "$file" >&2
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || die "no running nodes (make cluster first)"
  say "loaded $file into $n nodes"
}

status() {
  running "$state/up.pid" && say "cluster running (KUBECONFIG=$state/kubeconfig)" || say "cluster not running"
  running "$state/sim.pid" && say "simulator running at $SIM_URL" || true
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  load) shift; load "$@" ;;
  status) status ;;
  *) echo "usage: $0 up|down|load FILE|status" >&2; exit 2 ;;
esac
