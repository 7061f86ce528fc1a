"""launch_throughput: how fast one framework gets tasks to TASK_RUNNING through a real master.

Part 1 (simulated): a `meseta master` process, 100 in-process FakeAgents speaking the real agent
protocol over loopback HTTP, one framework on the v1 scheduler API launching 10,000 trivial
tasks. Reports tasks/s from the first ACCEPT to the last TASK_RUNNING the scheduler sees, and
p50/p99 offer-to-RUNNING latency.

Part 2 (real): a `meseta agent` process running 1,000 real `true` processes: launches/s to
TASK_RUNNING and to TASK_FINISHED.

    python benchmarks/launch_throughput.py [--tasks 10000] [--agents 100] [--real 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from meseta.protocol.recordio import RecordIODecoder
from meseta.runtime.fast_http import FastPoster
from meseta.runtime.serve import free_port
from meseta.testing.clusters import start_daemon
from meseta.testing.fake_agent import FakeAgent
from meseta.testing.waiting import async_wait_until

TASK_RESOURCES = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.01}},
                  {"name": "mem", "type": "SCALAR", "scalar": {"value": 1}}]


class BenchScheduler:
    """A minimal v1 scheduler: launch `total` tasks as offers arrive, acknowledge every update."""

    def __init__(self, master: str, total: int, command: str, wait_for: str,
                 framework_info: dict[str, Any] | None = None) -> None:
        self.framework_info = {"user": "", "name": "bench", **(framework_info or {})}
        self.url = f"http://{master}/api/v1/scheduler"
        self.total, self.command, self.wait_for = total, command, wait_for
        host, _, port = master.partition(":")
        self.poster = FastPoster(host, int(port), connections=16)
        self.framework_id = ""
        self.stream_id = ""
        self.launched = 0
        self.offer_time: dict[str, float] = {}
        self.reached: dict[str, float] = {}
        self.first_accept = 0.0
        self.done = asyncio.Event()
        self._acks: set[asyncio.Task[Any]] = set()

    async def run(self) -> None:
        body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": self.framework_info}}
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as stream_client, \
                stream_client.stream("POST", self.url, json=body) as response:
            self.stream_id = response.headers["Mesos-Stream-Id"]
            decoder = RecordIODecoder()
            async for chunk in response.aiter_raw():
                for record in decoder.feed(chunk):
                    await self._on_event(json.loads(record))
                if self.done.is_set():
                    return

    async def _call(self, body: dict[str, Any]) -> None:
        body["framework_id"] = {"value": self.framework_id}
        status, data = await self.poster.post("/api/v1/scheduler", body, {"Mesos-Stream-Id": self.stream_id})
        if status >= 300 and not self.done.is_set():
            raise RuntimeError(f"{body['type']} answered {status}: {data[:200]!r}")

    async def _on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "SUBSCRIBED":
            self.framework_id = event["subscribed"]["framework_id"]["value"]
        elif kind == "OFFERS":
            now = time.perf_counter()
            for offer in event["offers"]["offers"]:
                await self._launch_on(offer, now)
        elif kind == "UPDATE":
            status = event["update"]["status"]
            task_id = status["task_id"]["value"]
            if status["state"] == self.wait_for and task_id not in self.reached:
                self.reached[task_id] = time.perf_counter()
                if len(self.reached) == self.total:
                    self.done.set()
            if "uuid" in status:
                ack = {"type": "ACKNOWLEDGE", "acknowledge": {"agent_id": status["agent_id"],
                                                              "task_id": status["task_id"], "uuid": status["uuid"]}}
                task = asyncio.create_task(self._call(ack))
                self._acks.add(task)
                task.add_done_callback(self._acks.discard)

    async def _launch_on(self, offer: dict[str, Any], now: float) -> None:
        cpus = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "cpus")
        mem = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "mem")
        fits = int(min(cpus / 0.01 + 1e-6, mem))
        count = max(0, min(fits, self.total - self.launched))
        tasks = []
        for _ in range(count):
            task_id = f"t{self.launched}"
            self.launched += 1
            self.offer_time[task_id] = now
            tasks.append({"name": task_id, "task_id": {"value": task_id}, "agent_id": offer["agent_id"],
                          "resources": TASK_RESOURCES, "command": {"value": self.command}})
        if not self.first_accept and tasks:
            self.first_accept = time.perf_counter()
        operations = [{"type": "LAUNCH", "launch": {"task_infos": tasks}}] if tasks else []
        await self._call({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": operations,
                                                         "filters": {"refuse_seconds": 0 if tasks else 3600}}})

    def report(self) -> dict[str, float]:
        elapsed = max(self.reached.values()) - self.first_accept
        latencies = sorted(self.reached[t] - self.offer_time[t] for t in self.reached)
        return {
            "tasks": len(self.reached),
            "seconds": elapsed,
            "tasks_per_s": len(self.reached) / elapsed,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        }


def start(args: list[str], log: Path, pinned: bool = False) -> subprocess.Popen[bytes]:
    """A meseta daemon; ``pinned`` puts it on core 0 (the load generator runs on core 1)."""
    pin = ["taskset", "-c", "0"] if pinned and shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    return start_daemon(args, log, prefix=pin)


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


async def wait_agents(master: str, count: int) -> None:
    async with httpx.AsyncClient() as client:
        async def registered() -> bool:
            return len((await client.get(f"http://{master}/master/slaves")).json()["slaves"]) >= count
        await async_wait_until(registered, 60, f"{count} agents registered", interval=0.1)


async def simulated(tmp: Path, total: int, agents: int) -> dict[str, float]:
    port = free_port()
    master = f"127.0.0.1:{port}"
    proc = start(["master", "--port", str(port), "--work-dir", str(tmp / "sim-master")], tmp / "sim-master.log",
                 pinned=True)
    try:
        await wait_agents(master, 0)
        per_agent = total // agents + 1
        client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=400))
        fakes = [FakeAgent(master, f"sim{i}", f"cpus:{per_agent * 0.01:.2f};mem:{per_agent}", client)
                 for i in range(agents)]
        runs = [asyncio.create_task(f.run()) for f in fakes]
        await wait_agents(master, agents)
        scheduler = BenchScheduler(master, total, "true", "TASK_RUNNING")
        sched = asyncio.create_task(scheduler.run())
        await asyncio.wait_for(scheduler.done.wait(), 600)
        sched.cancel()
        for run in runs:
            run.cancel()
        return scheduler.report()
    finally:
        stop(proc)


async def real(tmp: Path, total: int) -> dict[str, Any]:
    port = free_port()
    master = f"127.0.0.1:{port}"
    procs = [start(["master", "--port", str(port), "--work-dir", str(tmp / "real-master")], tmp / "real-master.log"),
             start(["agent", "--master", master, "--port", str(free_port()), "--work-dir", str(tmp / "real-agent"),
                    "--resources", f"cpus:{total * 0.01 + 1:.2f};mem:{total + 64}", "--no-switch-user"],
                   tmp / "real-agent.log")]
    try:
        await wait_agents(master, 1)
        results: dict[str, Any] = {}
        for state in ("TASK_RUNNING", "TASK_FINISHED"):
            scheduler = BenchScheduler(master, total, "true", state)
            sched = asyncio.create_task(scheduler.run())
            await asyncio.wait_for(scheduler.done.wait(), 600)
            sched.cancel()
            results[state] = scheduler.report()
            await asyncio.sleep(1.0)
        return results
    finally:
        for proc in procs:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--real", type=int, default=1_000)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, loopback TCP; simulated part pinned "
          "(master core 0, load core 1), real part unpinned")
    with tempfile.TemporaryDirectory() as tmp:
        if (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {1})  # simulated part: master on core 0, load generator on core 1
        sim = asyncio.run(simulated(Path(tmp), args.tasks, args.agents))
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))  # real part: the agent forks need both
        print(f"simulated: {sim['tasks']} tasks on {args.agents} fake agents in {sim['seconds']:.2f} s = "
              f"{sim['tasks_per_s']:.0f} tasks/s; offer->RUNNING p50 {sim['p50_ms']:.0f} ms, "
              f"p99 {sim['p99_ms']:.0f} ms")
        if args.real:
            res = asyncio.run(real(Path(tmp), args.real))
            for state, r in res.items():
                print(f"real agent: {r['tasks']} `true` processes to {state} in {r['seconds']:.2f} s = "
                      f"{r['tasks_per_s']:.0f} launches/s; offer->{state} p50 {r['p50_ms']:.0f} ms, "
                      f"p99 {r['p99_ms']:.0f} ms")


if __name__ == "__main__":
    main()
