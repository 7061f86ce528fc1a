"""G3 (spec/benchmarks.md 7.3): `kill -9` an agent running 100 checkpointed tasks, restart it,
repeatedly: time from the restart until the agent is registered again with every task
recovered RUNNING, and how many tasks ran twice (must: 100 % recovered, <= 5 s, 0 duplicates;
aim <= 2 s).

    python benchmarks/agent_recovery.py [--tasks 100] [--restarts 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from launch_throughput import BenchScheduler, start, stop, wait_agents
from meseta.runtime.serve import free_port
from meseta.testing.waiting import async_wait_until


def running_copies(marker: str) -> int:
    found = subprocess.run(["pgrep", "-fc", f"^sh -c sleep 3600 {marker}$"], capture_output=True, text=True)
    return int(found.stdout.strip() or 0)


async def recovered(agent_port: int, total: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            metrics = (await client.get(f"http://127.0.0.1:{agent_port}/metrics/snapshot")).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(metrics["slave/registered"]) and metrics["slave/tasks_running"] == total


async def run(tmp: Path, total: int, restarts: int) -> None:
    port, agent_port = free_port(), free_port()
    master = f"127.0.0.1:{port}"
    marker = f"g3-{uuid.uuid4().hex[:8]}"
    agent_args = ["agent", "--master", master, "--port", str(agent_port), "--work-dir", str(tmp / "agent"),
                  "--resources", f"cpus:{total * 0.01 + 1:.2f};mem:{total + 64}", "--no-switch-user"]
    master_proc = start(["master", "--port", str(port), "--work-dir", str(tmp / "master")], tmp / "master.log")
    agent = start(agent_args, tmp / "agent.log")
    try:
        await wait_agents(master, 1)
        scheduler = BenchScheduler(master, total, f"exec sh -c 'sleep 3600' {marker}", "TASK_RUNNING",
                                   {"checkpoint": True, "failover_timeout": 3600})
        subscription = asyncio.create_task(scheduler.run())
        await asyncio.wait_for(scheduler.done.wait(), 120)
        times, duplicates = [], 0
        for _ in range(restarts):
            await asyncio.sleep(0.5)  # acknowledgements settle
            os.kill(agent.pid, signal.SIGKILL)
            agent.wait()
            began = time.perf_counter()
            agent = start(agent_args, tmp / "agent.log")
            await async_wait_until(lambda: recovered(agent_port, total), 60, "the agent to recover", interval=0.02)
            times.append(time.perf_counter() - began)
            duplicates += max(0, running_copies(marker) - total)
            if running_copies(marker) < total:
                raise RuntimeError(f"only {running_copies(marker)} of {total} tasks still run")
        subscription.cancel()
        print(f"G3 {restarts} restarts of an agent with {total} checkpointed tasks: recovered and re-registered "
              f"p50 {statistics.median(times):.2f} s, max {max(times):.2f} s (must <= 5 s, aim <= 2 s); "
              f"{total} of {total} recovered every time; {duplicates} duplicate launches")
    finally:
        stop(agent)
        stop(master_proc)
        for pid in subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split():
            try:  # the whole group: the wrapper, the task's shell and its sleep
                os.killpg(os.getpgid(int(pid)), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, loopback TCP, unpinned")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp), args.tasks, args.restarts))


if __name__ == "__main__":
    main()
