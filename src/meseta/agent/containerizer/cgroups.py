"""Container cgroups: the only module that writes under the cgroup mounts (decisions in
``cgroup_limits``). cgroup v1 and v2 are both served; each controller comes from whichever the
host has it on (``cgroup_limits.choose_hierarchies``).

Layout, with ``--cgroups-root meseta``::

    v1   <mount of cpu | cpuacct | memory | pids>/meseta/<container id>/
    v2   <unified mount>/meseta/<container id>/      (meseta/ enables +cpu +memory +pids below it)

Lifecycle of one container::

    CgroupIsolation.prepare(id, limits) -> ContainerCgroups     directories made, limits written
    .wrap(argv)      a /bin/sh stage writes its own pid into every cgroup.procs, then execs argv,
                     so the task and all it forks are inside before the task runs
    .limitation()    after the task ends: did the OOM killer act? -> the message, or None
    .statistics()    ResourceStatistics keys, from the kernel's counters
    .destroy()       SIGKILL whatever is left, rmdir every directory (blocking: run it in a thread)
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meseta.agent.containerizer.cgroup_limits import (
    CFS_PERIOD_US,
    USER_HZ,
    Hierarchy,
    Limits,
    choose_hierarchies,
    keyed_values,
    memory_limitation_message,
    oom_killed,
    parse_mountinfo,
    shares_to_weight,
)


class CgroupError(Exception):
    """The host lacks a controller, or the kernel refused a write; the message says which."""


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror or exc}") from None


@dataclass
class ContainerCgroups:
    container_id: str
    dirs: dict[str, tuple[Path, int]]  # controller -> (directory, cgroup version)
    limits: Limits

    def apply(self, limits: Limits) -> None:
        """Write ``limits`` (at creation, and again when the container's resources change)."""
        self.limits = limits
        if "cpu" in self.dirs:
            path, version = self.dirs["cpu"]
            if version == 1:
                _write(path / "cpu.shares", str(limits.cpu_shares))
                if limits.cfs_quota_us is not None:
                    _write(path / "cpu.cfs_period_us", str(CFS_PERIOD_US))
                    _write(path / "cpu.cfs_quota_us", str(limits.cfs_quota_us))
            else:
                _write(path / "cpu.weight", str(shares_to_weight(limits.cpu_shares)))
                quota = "max" if limits.cfs_quota_us is None else str(limits.cfs_quota_us)
                _write(path / "cpu.max", f"{quota} {CFS_PERIOD_US}")
        if "memory" in self.dirs:
            path, version = self.dirs["memory"]
            _write(path / ("memory.limit_in_bytes" if version == 1 else "memory.max"), str(limits.memory_bytes))
        if "pids" in self.dirs:
            path, _ = self.dirs["pids"]
            _write(path / "pids.max", "max" if limits.pids_max is None else str(limits.pids_max))

    def wrap(self, argv: tuple[str, ...]) -> tuple[str, ...]:
        procs = sorted({str(path / "cgroup.procs") for path, _ in self.dirs.values()})
        joins = " && ".join(f"echo $$ > {shlex.quote(p)}" for p in procs)
        return ("/bin/sh", "-c", f'{joins} && exec "$@"', "meseta-cgroup-join", *argv)

    def limitation(self) -> str | None:
        if "memory" not in self.dirs:
            return None
        path, version = self.dirs["memory"]
        if not oom_killed(_read(path / ("memory.oom_control" if version == 1 else "memory.events"))):
            return None
        peak = _read(path / ("memory.max_usage_in_bytes" if version == 1 else "memory.peak")).strip()
        return memory_limitation_message(self.limits.memory_bytes, int(peak) if peak.isdigit() else None)

    def statistics(self) -> dict[str, Any]:
        stats: dict[str, Any] = {}
        cpu, cpuacct = self.dirs.get("cpu"), self.dirs.get("cpuacct")
        if cpuacct is not None and cpuacct[1] == 1:
            ticks = keyed_values(_read(cpuacct[0] / "cpuacct.stat"))
            stats["cpus_user_time_secs"] = ticks.get("user", 0) / USER_HZ
            stats["cpus_system_time_secs"] = ticks.get("system", 0) / USER_HZ
        if cpu is not None:
            counters = keyed_values(_read(cpu[0] / "cpu.stat"))
            if cpu[1] == 2:
                stats["cpus_user_time_secs"] = counters.get("user_usec", 0) / 1e6
                stats["cpus_system_time_secs"] = counters.get("system_usec", 0) / 1e6
            stats["cpus_nr_periods"] = counters.get("nr_periods", 0)
            stats["cpus_nr_throttled"] = counters.get("nr_throttled", 0)
            if cpu[1] == 1:
                stats["cpus_throttled_time_secs"] = counters.get("throttled_time", 0) / 1e9
            else:
                stats["cpus_throttled_time_secs"] = counters.get("throttled_usec", 0) / 1e6
            stats["cpus_limit"] = self.limits.cpu_shares / 1024
            if self.limits.cfs_quota_us is not None:
                stats["cpus_limit"] = self.limits.cfs_quota_us / CFS_PERIOD_US
        if "memory" in self.dirs:
            path, version = self.dirs["memory"]
            memory = keyed_values(_read(path / "memory.stat"))
            usage = _read(path / ("memory.usage_in_bytes" if version == 1 else "memory.current")).strip()
            stats["mem_total_bytes"] = int(usage) if usage.isdigit() else 0
            stats["mem_rss_bytes"] = memory.get("total_rss", memory.get("rss", memory.get("anon", 0)))
            stats["mem_cache_bytes"] = memory.get("total_cache", memory.get("cache", memory.get("file", 0)))
            stats["mem_limit_bytes"] = self.limits.memory_bytes
        if "pids" in self.dirs:
            current = _read(self.dirs["pids"][0] / "pids.current").strip()
            stats["processes"] = int(current) if current.isdigit() else 0
        return stats

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path, _ in self.dirs.values():
            found.update(int(p) for p in _read(path / "cgroup.procs").split() if p.isdigit())
        return found

    def destroy(self, timeout: float = 10.0) -> None:
        """Kill every process still inside, then remove the directories."""
        deadline = time.monotonic() + timeout
        while (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        for path, _ in self.dirs.values():
            while path.exists() and time.monotonic() < deadline:
                try:
                    path.rmdir()
                except FileNotFoundError:
                    break
                except OSError:  # the last exit is still being accounted
                    time.sleep(0.01)


@dataclass
class CgroupIsolation:
    """The agent's cgroups isolators: ``controllers`` (of cpu, cpuacct, memory, pids) under ``root``."""

    hierarchies: dict[str, Hierarchy]
    root: str = "meseta"
    enable_cfs: bool = False
    pids_max: int | None = None
    live: dict[str, ContainerCgroups] = field(default_factory=dict)

    @classmethod
    def detect(cls, controllers: set[str], root: str = "meseta", enable_cfs: bool = False,
               pids_max: int | None = None) -> CgroupIsolation:
        v1, unified = parse_mountinfo(_read(Path("/proc/self/mountinfo")))
        v2_controllers = _read(Path(unified) / "cgroup.controllers").split() if unified else []
        found = choose_hierarchies(v1, unified, v2_controllers)
        missing = sorted(controllers - set(found))
        if missing:
            raise CgroupError(f"no cgroup hierarchy (v1 or v2) offers the {', '.join(missing)} controller(s)")
        chosen = {name: found[name] for name in controllers}
        for hierarchy in {h for h in chosen.values() if h.version == 2}:
            base = Path(hierarchy.mount) / root
            base.mkdir(exist_ok=True)
            enable = " ".join(f"+{c}" for c in sorted(controllers & {"cpu", "memory", "pids"}))
            _write(Path(hierarchy.mount) / "cgroup.subtree_control", enable)
            _write(base / "cgroup.subtree_control", enable)
        return cls(chosen, root, enable_cfs, pids_max)

    def prepare(self, container_id: str, limits: Limits) -> ContainerCgroups:
        dirs: dict[str, tuple[Path, int]] = {}
        for name, hierarchy in self.hierarchies.items():
            path = Path(hierarchy.mount) / self.root / container_id
            path.mkdir(parents=True, exist_ok=True)
            dirs[name] = (path, hierarchy.version)
        container = ContainerCgroups(container_id, dirs, limits)
        container.apply(limits)
        self.live[container_id] = container
        return container

    def release(self, container_id: str) -> None:
        container = self.live.pop(container_id, None)
        if container is not None:
            container.destroy()
