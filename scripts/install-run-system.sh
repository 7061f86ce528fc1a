#!/usr/bin/env bash
# Debian packages `meseta local` uses for containers: the CNI plugins and iptables (the bridge network
# mesos-bridge and its port mappings), util-linux and iproute2 (namespaces). Installed as root when
# missing; elsewhere say what is missing and go on (`meseta local` runs without container networks).
set -euo pipefail
need=()
for pkg in util-linux iproute2 containernetworking-plugins iptables; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "note: missing Debian packages for container networks: ${need[*]} (install them as root)" >&2
  exit 0
fi
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
