"""G1 (spec/benchmarks.md 7.3): one real agent launches, then kills, 1,000 `sleep 3600` tasks.

A `meseta master` and one `meseta agent` process on loopback; one v1 scheduler (it acknowledges
every update, as pymesos does) launches the tasks as offers come, waits until all are
TASK_RUNNING, then sends every KILL at once and waits for every TASK_KILLED. Reports launches/s
and kills/s, with the agent's default posix isolation and, side by side, with
--isolation cgroups/cpu,cgroups/mem,cgroups/pids (a cgroup per container, created and removed).
Mesos 1.7: ~30 s to launch and ~22 s to destroy 1,000 containers (~33/s and ~45/s).

    python benchmarks/agent_launch_kill.py [--tasks 1000] [--isolation posix,cgroups]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from launch_throughput import BenchScheduler, start, stop, wait_agents
from meseta.runtime.serve import free_port

ISOLATION = {"posix": "posix/cpu,posix/mem", "cgroups": "cgroups/cpu,cgroups/mem,cgroups/pids"}


class LaunchKillScheduler(BenchScheduler):
    """Launch ``total`` tasks to TASK_RUNNING, then ``kill_all`` and time every TASK_KILLED. The
    base class's ``done`` is never set, so the subscription stays open across both phases."""

    def __init__(self, master: str, total: int) -> None:
        super().__init__(master, total, "sleep 3600", "(tracked here)")
        self.running: dict[str, float] = {}
        self.killed: dict[str, float] = {}
        self.all_running, self.all_killed = asyncio.Event(), asyncio.Event()
        self.agent_id: dict[str, Any] = {}

    async def _on_event(self, event: dict[str, Any]) -> None:
        if event["type"] == "UPDATE":
            status = event["update"]["status"]
            self.agent_id = status.get("agent_id", self.agent_id)
            seen = {"TASK_RUNNING": (self.running, self.all_running),
                    "TASK_KILLED": (self.killed, self.all_killed)}.get(status["state"])
            if seen is not None:
                seen[0].setdefault(status["task_id"]["value"], time.perf_counter())
                if len(seen[0]) == self.total:
                    seen[1].set()
        await super()._on_event(event)

    async def kill_all(self) -> float:
        start_at = time.perf_counter()
        await asyncio.gather(*(self._call({"type": "KILL", "kill": {"task_id": {"value": task_id},
                                                                    "agent_id": self.agent_id}})
                               for task_id in self.running))
        await asyncio.wait_for(self.all_killed.wait(), 600)
        return max(self.killed.values()) - start_at


async def one_run(tmp: Path, total: int, isolation: str) -> dict[str, float]:
    port = free_port()
    master = f"127.0.0.1:{port}"
    root = f"meseta-bench-{uuid.uuid4().hex[:8]}"
    procs = [start(["master", "--port", str(port), "--work-dir", str(tmp / "master")], tmp / "master.log"),
             start(["agent", "--master", master, "--port", str(free_port()), "--work-dir", str(tmp / "agent"),
                    "--resources", f"cpus:{total * 0.01 + 1:.2f};mem:{total * 32 + 64}", "--no-switch-user",
                    "--isolation", ISOLATION[isolation], "--cgroups-root", root], tmp / "agent.log")]
    try:
        await wait_agents(master, 1)
        scheduler = LaunchKillScheduler(master, total)
        runner = asyncio.create_task(scheduler.run())
        await asyncio.wait_for(scheduler.all_running.wait(), 600)
        launch_seconds = max(scheduler.running.values()) - scheduler.first_accept
        kill_seconds = await scheduler.kill_all()
        runner.cancel()
        return {"launch_s": launch_seconds, "launches_per_s": total / launch_seconds,
                "kill_s": kill_seconds, "kills_per_s": total / kill_seconds}
    finally:
        for proc in procs:
            stop(proc)
        for base in Path("/sys/fs/cgroup").glob(f"*/{root}"):  # the agent keeps its root; the bench does not
            base.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--isolation", default="posix,cgroups")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, loopback TCP, unpinned")
    for isolation in args.isolation.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            r = asyncio.run(one_run(Path(tmp), args.tasks, isolation))
        print(f"G1 {isolation:8s} {args.tasks} `sleep 3600`: launch {r['launch_s']:.2f} s = "
              f"{r['launches_per_s']:.0f}/s, kill {r['kill_s']:.2f} s = {r['kills_per_s']:.0f}/s "
              f"(must >= 33/s each, aim >= 100/s; Mesos 1.7 ~33/s and ~45/s)")


if __name__ == "__main__":
    main()
