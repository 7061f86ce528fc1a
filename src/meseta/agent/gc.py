"""Sandbox garbage collection (pure): which finished sandboxes to delete, and when.

A sandbox is scheduled when its executor terminates. Every --disk-watch-interval the agent
measures the disk holding its work directory and deletes the sandboxes older than::

    max_age = gc_delay x max(0, 1 - gc_disk_headroom - disk_usage)

so they live for --gc-delay on an empty disk (Mesos: one week) and go sooner as the disk
fills; past 1 - headroom every finished sandbox goes at once. Persistent volumes live outside
the sandboxes and are never collected.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

DEFAULT_GC_DELAY = 7 * 24 * 3600.0  # Mesos --gc_delay: 1 week
DEFAULT_DISK_HEADROOM = 0.1  # Mesos --gc_disk_headroom
DEFAULT_DISK_WATCH_INTERVAL = 60.0  # Mesos --disk_watch_interval: 1 minute


def max_age(gc_delay: float, headroom: float, disk_usage: float) -> float:
    """How old a finished sandbox may get at this disk usage (a fraction, 0..1)."""
    return gc_delay * max(0.0, 1.0 - headroom - disk_usage)


def due(scheduled: Mapping[K, float], now: float, age_limit: float) -> list[K]:
    """The scheduled sandboxes (sandbox -> when its run ended) older than ``age_limit``, oldest first."""
    return sorted((path for path, finished in scheduled.items() if now - finished >= age_limit),
                  key=lambda path: scheduled[path])
