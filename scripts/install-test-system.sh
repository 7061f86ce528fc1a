#!/usr/bin/env bash
# Debian packages the tests use beyond the build tools: busybox-static (tests build a tiny
# container image from it), zookeeper (real ensembles for the HA tests; pulls a JRE),
# iproute2 (network namespaces for the partition tests), docker-registry and skopeo (a loopback image
# registry and pushes into it), containernetworking-plugins and iptables (container networks), haproxy
# (the load balancer `meseta lb` drives) and dnsutils (`dig` against `meseta dns`).
exec bash "$(dirname "$0")/apt-need.sh" busybox-static util-linux iproute2 zookeeper docker-registry skopeo \
  containernetworking-plugins iptables haproxy dnsutils
