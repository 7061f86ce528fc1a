#!/usr/bin/env bash
# Install the Debian packages given that are missing (as root). Elsewhere, say what is missing and
# fail, or, with --optional, go on.
#   bash scripts/apt-need.sh [--optional] PACKAGE...
set -euo pipefail
optional=0
if [ "${1:-}" = --optional ]; then optional=1; shift; fi
need=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${need[*]} (install them as root)" >&2
  exit $((1 - optional))
fi
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
