"""Pure cgroup decisions: which hierarchy serves each controller, the limits a container gets, and
what the kernel's files say back. ``cgroups.py`` does the reading and writing.

Limits, as Mesos sets them (``cpus`` and ``mem`` are the container's resources)::

    cpu.shares          max(1024 x cpus, 2)      (10 x cpus when the cpus are revocable)
    cpu.cfs_quota_us    max(100 ms x cpus, 1 ms) per 100 ms period, with --cgroups-enable-cfs
    memory limit        max(mem, 32 MiB)
    pids.max            --cgroups-limit-pids, when given (Mesos only counts)

cgroup v2 takes the same numbers as ``cpu.weight`` (the kernel's shares-to-weight mapping),
``cpu.max`` "quota period", ``memory.max`` and ``pids.max``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CONTROLLERS = ("cpu", "cpuacct", "memory", "pids")
SHARES_PER_CPU = 1024
SHARES_PER_REVOCABLE_CPU = 10
MIN_SHARES = 2  # the kernel's floor
CFS_PERIOD_US = 100_000  # the kernel's default period, 100 ms
MIN_CFS_QUOTA_US = 1_000
MIN_MEMORY_BYTES = 32 * 1024 * 1024
USER_HZ = 100  # cpuacct.stat ticks per second on Linux


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """Where one controller lives: a v1 hierarchy mount, or the v2 unified mount."""

    mount: str
    version: int  # 1 or 2


@dataclass(frozen=True, slots=True)
class Limits:
    cpu_shares: int
    cfs_quota_us: int | None  # None: no hard cap
    memory_bytes: int
    pids_max: int | None


def parse_mountinfo(text: str) -> tuple[dict[str, str], str | None]:
    """``/proc/self/mountinfo`` -> ({v1 controller: mount point}, the cgroup2 mount or None)."""
    v1: dict[str, str] = {}
    unified: str | None = None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        mount, fstype, options = fields[4], tail[0], tail[2].split(",")
        if fstype == "cgroup2" and unified is None:
            unified = mount
        elif fstype == "cgroup":
            for option in options:
                if option in CONTROLLERS and option not in v1:
                    v1[option] = mount
    return v1, unified


def choose_hierarchies(
    v1: Mapping[str, str], unified: str | None, v2_controllers: Iterable[str]
) -> dict[str, Hierarchy]:
    """Each controller from v1 where a v1 hierarchy has it, else from v2 where it is enabled there
    (a hybrid host has both). cpuacct is part of v2's cpu controller."""
    available = set(v2_controllers)
    chosen: dict[str, Hierarchy] = {}
    for controller in CONTROLLERS:
        if controller in v1:
            chosen[controller] = Hierarchy(v1[controller], 1)
        elif unified is not None and (controller if controller != "cpuacct" else "cpu") in available:
            chosen[controller] = Hierarchy(unified, 2)
    return chosen


def compute_limits(cpus: float, mem_mb: float, *, revocable_cpus: bool = False, enable_cfs: bool = False,
                   pids_max: int | None = None) -> Limits:
    per_cpu = SHARES_PER_REVOCABLE_CPU if revocable_cpus else SHARES_PER_CPU
    shares = max(int(per_cpu * cpus), MIN_SHARES)
    quota = max(int(CFS_PERIOD_US * cpus), MIN_CFS_QUOTA_US) if enable_cfs else None
    memory = max(int(mem_mb * 1024 * 1024), MIN_MEMORY_BYTES)
    return Limits(shares, quota, memory, pids_max)


def shares_to_weight(shares: int) -> int:
    """cgroup v2 ``cpu.weight`` (1..10000) for v1 shares (2..262144), as the kernel maps them."""
    shares = min(max(shares, 2), 262_144)
    return 1 + ((shares - 2) * 9_999) // 262_142


def keyed_values(text: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, cpuacct.stat, memory.events, oom_control)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def oom_killed(text: str) -> bool:
    """v1 ``memory.oom_control`` or v2 ``memory.events``: did the kernel's OOM killer act here?"""
    return keyed_values(text).get("oom_kill", 0) > 0


def memory_limitation_message(limit_bytes: int, max_used_bytes: int | None) -> str:
    used = f"{max_used_bytes // (1024 * 1024)}MB" if max_used_bytes is not None else "unknown"
    return f"Memory limit exceeded: Requested: {limit_bytes // (1024 * 1024)}MB Maximum Used: {used}"


# --------------------------------------------------------------------- --isolation

# filesystem/linux: Mesos needs it for images; here a task with an image always gets its own
# mount namespace and root filesystem, so the name is accepted and changes nothing
POSIX_ISOLATORS = frozenset({"posix/cpu", "posix/mem", "posix/disk", "filesystem/linux", "filesystem/posix"})
CGROUP_ISOLATORS = {"cgroups/cpu": ("cpu", "cpuacct"), "cgroups/mem": ("memory",), "cgroups/pids": ("pids",)}
NAMESPACE_ISOLATORS = frozenset({"namespaces/pid"})
DISK_ISOLATORS = frozenset({"disk/du"})


@dataclass(frozen=True, slots=True)
class Isolation:
    controllers: frozenset[str]  # cgroup controllers each container gets
    pid_namespace: bool
    disk_du: bool = False


def parse_isolation(text: str) -> Isolation:
    """``--isolation posix/cpu,cgroups/mem,...``; raises ValueError naming an unknown isolator."""
    controllers: set[str] = set()
    pid_namespace = False
    disk_du = False
    known = sorted(POSIX_ISOLATORS | set(CGROUP_ISOLATORS) | NAMESPACE_ISOLATORS | DISK_ISOLATORS)
    for name in filter(None, (part.strip() for part in text.split(","))):
        if name in CGROUP_ISOLATORS:
            controllers.update(CGROUP_ISOLATORS[name])
        elif name in NAMESPACE_ISOLATORS:
            pid_namespace = True
        elif name in DISK_ISOLATORS:
            disk_du = True
        elif name not in POSIX_ISOLATORS:
            raise ValueError(f"--isolation: unknown isolator '{name}' (known: {', '.join(known)})")
    return Isolation(frozenset(controllers), pid_namespace, disk_du)
