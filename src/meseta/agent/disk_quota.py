"""The disk/du isolator's decision (pure): a sandbox over its disk resources.

Every --container-disk-watch-interval the agent measures each sandbox (as ``du`` does, without
following links, so persistent volumes linked into it do not count) against the container's
``disk`` resources, persistent volumes excluded. With --enforce-container-disk-quota a sandbox
over its quota is destroyed: its tasks end TASK_FAILED with REASON_CONTAINER_LIMITATION_DISK.
"""

from __future__ import annotations

from meseta.core.reservations import volume_of
from meseta.core.resources import Resources

DISK_REASON = "REASON_CONTAINER_LIMITATION_DISK"
DEFAULT_WATCH_INTERVAL = 15.0  # Mesos --container_disk_watch_interval
MB = 1024 * 1024


def quota_bytes(resources: Resources) -> int | None:
    """The sandbox's share of the container's disk, persistent volumes excluded; None: no quota."""
    milli = sum(q for k, q in resources.items() if k.name == "disk" and isinstance(q, int) and volume_of(k) is None)
    return milli * MB // 1000 if milli else None


def disk_limitation(used_bytes: int, quota: int | None) -> str | None:
    if quota is None or used_bytes <= quota:
        return None
    return f"Disk usage ({used_bytes / MB:.1f}MB) exceeds quota ({quota / MB:.1f}MB)"
