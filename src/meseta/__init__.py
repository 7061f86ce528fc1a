"""Meseta: a datacenter resource manager in Python, wire-compatible with the Apache Mesos v1 APIs."""

__version__ = "0.1.0"

# The Mesos release whose v1 wire protocol Meseta speaks. Clients parse `/version` as
# dotted integers (pymesos crashes on suffixes), so this stays purely numeric.
MESOS_COMPAT_VERSION = "1.11.0"
