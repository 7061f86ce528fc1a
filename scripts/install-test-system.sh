#!/usr/bin/env bash
# Debian packages the tests use beyond the build tools: busybox-static (tests build a tiny
# container image from it), zookeeper (real ensembles for the HA tests; pulls a JRE).
# iproute2 (network namespaces for the partition tests), docker-registry and skopeo (a loopback image
# registry and pushes into it), containernetworking-plugins and iptables (container networks).
# Installed as root when missing; elsewhere say what is missing.
set -euo pipefail
need=()
for pkg in busybox-static util-linux iproute2 zookeeper docker-registry skopeo containernetworking-plugins iptables; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${need[*]} (install them as root)" >&2
  exit 1
fi
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
