"""M1: how long a newly started master takes to get N agents with 10 tasks each back.

The registry is seeded with N admitted agents, as a failed-over master finds it; a `meseta master`
process then starts on it, and N simulated agents (raw asyncio connections speaking the real agent
protocol) re-register at once, each reporting 10 RUNNING tasks of 5 checkpointing frameworks, with
10 labels per task (spec M1, after Mesos's `master_benchmarks.cpp`).
Reported: seconds from the first REREGISTER sent to the last REREGISTERED received, and the
master's own view afterwards (agents and tasks in /metrics/snapshot).

    python benchmarks/failover_reregistration.py [--agents 1000 5000 10000] [--tasks 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from meseta.master.effects import AdmitAgent
from meseta.master.registry.storage import SqliteStorage
from meseta.protocol.agent_wire import AGENT_STREAM_PATH
from meseta.protocol.recordio import RecordIODecoder
from meseta.runtime.serve import free_port
from meseta.testing.waiting import async_wait_until

FRAMEWORKS = [{"id": {"value": f"m1-framework-{k}"}, "name": f"m1-{k}", "user": "root", "checkpoint": True}
              for k in range(5)]
LABELS = {"labels": [{"key": f"key{j}", "value": f"value{j}"} for j in range(10)]}
RESOURCES = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 16}},
             {"name": "mem", "type": "SCALAR", "scalar": {"value": 65536}}]
TASK_RESOURCES = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                  {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]
CONNECTING = 500  # agents connecting at one time (the listen backlog is finite)


def agent_info(i: int) -> dict[str, Any]:
    return {"hostname": f"sim{i}", "port": 5051, "resources": RESOURCES, "attributes": [],
            "id": {"value": f"m1-S{i}"}}


def reregister_body(i: int, tasks: int) -> bytes:
    reported = [{"framework_id": FRAMEWORKS[n % 5]["id"], "state": "TASK_RUNNING", "executor_id": "",
                 "resources": TASK_RESOURCES,
                 "info": {"task_id": {"value": f"a{i}-t{n}"}, "name": "sleeper", "agent_id": {"value": f"m1-S{i}"},
                          "resources": TASK_RESOURCES, "command": {"value": "sleep 1000"}, "labels": LABELS}}
                for n in range(tasks)]
    return json.dumps({"type": "REREGISTER", "agent_info": agent_info(i), "version": "1.11.0",
                       "frameworks": FRAMEWORKS, "executor_infos": [], "tasks": reported}).encode()


async def reregister(port: int, body: bytes, gate: asyncio.Semaphore, held: list[asyncio.StreamWriter]) -> float:
    """Send REREGISTER; return when REREGISTERED arrives; keep the stream open."""
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST {AGENT_STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                     f"application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace").split("\r\n")[0])
        decoder = RecordIODecoder()
        while True:
            size_line = await reader.readuntil(b"\r\n")  # chunked transfer encoding
            chunk = await reader.readexactly(int(size_line.strip(), 16) + 2)
            for record in decoder.feed(chunk[:-2]):
                if json.loads(record)["type"] == "REREGISTERED":
                    held.append(writer)
                    return time.perf_counter()


async def measure(agents: int, tasks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="m1-") as tmp:
        storage = SqliteStorage(Path(tmp) / "registry.sqlite")
        for i in range(agents):
            storage.apply(AdmitAgent(f"m1-S{i}", agent_info(i)))
        storage.close()
        port = free_port()
        master = subprocess.Popen(
            [sys.executable, "-m", "meseta.cli.main", "master", "--port", str(port), "--work-dir", tmp,
             "--agent-ping-timeout", "600"],
            stdout=open(Path(tmp) / "master.log", "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            async with httpx.AsyncClient() as client:
                async def healthy() -> bool:
                    return (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200
                await async_wait_until(healthy, 60, "the master's /health")
                bodies = [reregister_body(i, tasks) for i in range(agents)]
                gate, held = asyncio.Semaphore(CONNECTING), []
                start = time.perf_counter()
                done = await asyncio.gather(*(reregister(port, b, gate, held) for b in bodies))
                elapsed = max(done) - start
                metrics = (await client.get(f"http://127.0.0.1:{port}/metrics/snapshot", timeout=60)).json()
                for writer in held:
                    writer.close()
        finally:
            os.killpg(master.pid, signal.SIGKILL)
            master.wait()
    return {"seconds": elapsed, "agents": metrics.get("master/slaves_active", -1),
            "tasks": metrics.get("master/tasks_running", -1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--tasks", type=int, default=10)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the master inherits it
    print(f"# M1 failover re-registration, {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"{time.strftime('%Y-%m-%d')}, {args.tasks} tasks per agent")
    for count in args.agents:
        result = asyncio.run(measure(count, args.tasks))
        rate = count * args.tasks / result["seconds"]
        print(f"{count:6d} agents / {count * args.tasks:7d} tasks: all re-registered in {result['seconds']:6.2f} s "
              f"({rate:7.0f} tasks/s); master sees {result['agents']:.0f} active agents, "
              f"{result['tasks']:.0f} running tasks", flush=True)


if __name__ == "__main__":
    main()
