#!/usr/bin/env bash
# Installs the Debian packages the local nodes need (once): containerd, runc, CNI plugins,
# busybox-static (the busybox image), xfsprogs (mkfs.xfs), iptables and conntrack (kube-proxy).
set -euo pipefail
need=()
for pair in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
  /usr/bin/busybox:busybox-static mkfs.xfs:xfsprogs iptables:iptables conntrack:conntrack \
  losetup:mount curl:curl; do
  cmd=${pair%%:*} pkg=${pair#*:}
  if [[ $cmd == /* ]]; then [ -e "$cmd" ] && continue; else command -v "$cmd" >/dev/null 2>&1 && continue; fi
  need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "deps: installing ${need[*]} (apt-get)" >&2
if [ "$(id -u)" != 0 ]; then echo "deps: needs root to install ${need[*]}" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
