#!/usr/bin/env bash
# Debian packages `meseta local` uses for containers: the CNI plugins and iptables (the bridge network
# mesos-bridge and its port mappings), util-linux and iproute2 (namespaces), haproxy (`meseta lb`). Without root it says
# what is missing and goes on (`meseta local` then runs without container networks).
exec bash "$(dirname "$0")/apt-need.sh" --optional util-linux iproute2 containernetworking-plugins iptables haproxy
