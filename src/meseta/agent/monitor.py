"""Resource usage of an executor's process tree (Mesos ResourceStatistics keys), via psutil."""

from __future__ import annotations

from typing import Any

import psutil


def process_tree_statistics(pid: int, *, cpus_limit: float | None, mem_limit_bytes: int | None,
                            now: float) -> dict[str, Any]:
    stats: dict[str, Any] = {"timestamp": now}
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return stats
    user = system = 0.0
    rss = threads = alive = 0
    for proc in procs:
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                user += times.user
                system += times.system
                rss += proc.memory_info().rss
                threads += proc.num_threads()
                alive += 1
        except psutil.Error:
            continue
    stats.update(processes=alive, threads=threads, cpus_user_time_secs=user, cpus_system_time_secs=system,
                 mem_rss_bytes=rss, mem_total_bytes=rss)
    if cpus_limit is not None:
        stats["cpus_limit"] = cpus_limit
    if mem_limit_bytes is not None:
        stats["mem_limit_bytes"] = mem_limit_bytes
    return stats
