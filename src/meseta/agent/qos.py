"""QoS corrections: revocable resources are the first taken back (Mesos' load QoS controller).

Pure decisions; the agent reads the system load and destroys the containers. Every
``--qos-correction-interval`` seconds::

    load_5min > --qos-load-threshold-5min   or   load_15min > --qos-load-threshold-15min
        --> every executor whose resources (its own or its tasks') include revocable ones is
            destroyed at once; its live tasks end TASK_GONE if the framework is PARTITION_AWARE,
            TASK_LOST otherwise, with reason REASON_CONTAINER_PREEMPTED
    otherwise, or with no threshold set --> nothing

Executors on plain (non-revocable) resources are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from meseta.core.reservations import is_revocable
from meseta.core.resources import ResourceError, parse_json

PREEMPTED_REASON = "REASON_CONTAINER_PREEMPTED"


@dataclass(frozen=True, slots=True)
class LoadThresholds:
    five_min: float | None = None
    fifteen_min: float | None = None

    def enabled(self) -> bool:
        return self.five_min is not None or self.fifteen_min is not None


def overload(thresholds: LoadThresholds, load_5min: float, load_15min: float) -> str | None:
    """Why the host is overloaded (the message for the preempted tasks), or None."""
    if thresholds.five_min is not None and load_5min > thresholds.five_min:
        return f"5-minute load {load_5min:.2f} exceeds the QoS threshold {thresholds.five_min:g}"
    if thresholds.fifteen_min is not None and load_15min > thresholds.fifteen_min:
        return f"15-minute load {load_15min:.2f} exceeds the QoS threshold {thresholds.fifteen_min:g}"
    return None


def holds_revocable(resource_lists: Iterable[Iterable[Mapping[str, Any]]]) -> bool:
    """Whether any of these v1 resource lists (an executor's and its tasks') is revocable."""
    for items in resource_lists:
        try:
            resources = parse_json(items)
        except ResourceError:
            continue  # the master validated them; an unreadable list is not ours to judge
        if any(is_revocable(key) for key in resources):
            return True
    return False


def preempted_state(framework_info: Mapping[str, Any]) -> str:
    capabilities = {c.get("type") for c in framework_info.get("capabilities") or []}
    return "TASK_GONE" if "PARTITION_AWARE" in capabilities else "TASK_LOST"
