"""jobs_accuracy: J1 and J3 for `meseta jobs` (issue 15), through its real REST API and a real master.

Each scenario gets a fresh cluster: a `meseta master` process (default flags: 1 s allocation
interval), a `meseta jobs` process (SQLite store) and simulated agents
(`meseta.testing.fake_agent.FakeAgent`, in this process, speaking the real agent protocol: every
RUN_TASK is answered TASK_RUNNING, then TASK_FINISHED ``--run-seconds`` later).

    J1  --jobs 1000 ISO 8601 jobs, each due every minute (their first due times spread over the
        first minute, or all at once with --burst), for --minutes: start lateness = the run's
        startTime (TASK_RUNNING reached the scheduler) - its due time (in its task id), p50/p99/max;
        runs missed (/metrics) and runs expected vs counted
    J3  --chains 100 dependency chains of depth --depth 10 (one scheduled root, dependents below):
        overhead per hop = a child's startTime - its parent's endTime, p50/p99

    python benchmarks/jobs_accuracy.py [--scenarios J1 J3] [--jobs 1000] [--minutes 10] [--burst]
        [--chains 100] [--depth 10] [--agents 50] [--run-seconds 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from meseta.runtime.serve import free_port
from meseta.testing.fake_agent import FakeAgent
from meseta.testing.waiting import async_wait_until

AGENT_RESOURCES = "cpus:32;mem:65536;disk:65536"
MESETA = [sys.executable, "-m", "meseta.cli.main"]


def iso(t: float) -> str:
    moment = dt.datetime.fromtimestamp(t, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


class Cluster:
    def __init__(self, work: Path, agents: int, run_seconds: float) -> None:
        self.work = work
        self.master = f"127.0.0.1:{free_port()}"
        self.jobs = f"127.0.0.1:{free_port()}"
        self.agents, self.run_seconds = agents, run_seconds
        self.procs: list[subprocess.Popen[bytes]] = []
        self.fakes: list[FakeAgent] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Cluster:
        log = open(self.work / "daemons.log", "ab")  # noqa: SIM115 - kept open for the children
        self.procs.append(subprocess.Popen([*MESETA, "master", "--port", self.master.split(":")[1], "--work-dir",
                                            str(self.work / "master")], stdout=log, stderr=subprocess.STDOUT))
        await async_wait_until(lambda: httpx.get(f"http://{self.master}/health", timeout=2).status_code == 200,
                               30, "the master", interval=0.1, ignore=(httpx.HTTPError,))
        self.client = httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=self.agents + 10))
        self.fakes = [FakeAgent(self.master, f"sim{i}", AGENT_RESOURCES, self.client, finish_after=self.run_seconds)
                      for i in range(self.agents)]
        self.tasks = [asyncio.create_task(fake.run()) for fake in self.fakes]
        await async_wait_until(lambda: all(f.agent_id for f in self.fakes), 30, "agents registered", interval=0.1)
        self.procs.append(subprocess.Popen([*MESETA, "jobs", "--master", self.master, "--port",
                                            self.jobs.split(":")[1], "--work-dir", str(self.work / "jobs")],
                                           stdout=log, stderr=subprocess.STDOUT))
        await async_wait_until(lambda: httpx.get(f"http://{self.jobs}/ping", timeout=2).status_code == 200,
                               30, "the jobs scheduler", interval=0.1, ignore=(httpx.HTTPError,))
        self.api = httpx.AsyncClient(base_url=f"http://{self.jobs}/v1/scheduler", timeout=60)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.api.aclose()
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                print(f"# {proc.args[3]} did not stop within 30 s of SIGTERM: killed", flush=True)
                proc.kill()
                proc.wait()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()

    async def post(self, path: str, body: dict[str, Any]) -> None:
        answer = await self.api.post(path, json=body)
        assert answer.status_code == 204, answer.text

    async def history(self, name: str) -> list[dict[str, Any]]:
        answer = await self.api.get(f"/job/stat/{name}")
        return list(answer.json()["taskStatHistory"])

    def launched(self) -> int:
        return sum(len(f.launched) for f in self.fakes)


def job(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "command": "true", "owner": "", "disabled": False, "cpus": 0.01, "mem": 1, "disk": 1,
            "retries": 0, **fields}


async def j1(args: argparse.Namespace, work: Path) -> None:
    async with Cluster(work, args.agents, args.run_seconds) as cluster:
        base = float(int(time.time()) + 30 + args.jobs // 100)  # whole seconds; after the last POST
        for i in range(args.jobs):
            start = base if args.burst else base + 60.0 * i / args.jobs
            await cluster.post("/iso8601", job(f"j{i}", schedule=f"R/{iso(start)}/PT1M"))
        assert time.time() < base, "the jobs were not all defined before the first was due: give more lead"
        end = base + 60 * args.minutes
        await asyncio.sleep(end - time.time() + 5)
        late: list[float] = []
        counted = 0
        for i in range(args.jobs):
            for run in await cluster.history(f"j{i}"):
                due = int(run["taskId"].split(":")[1]) / 1000
                if due < end and run["status"] == "success":
                    late.append(parse_iso(run["startTime"]) - due)
                    counted += 1
        metrics = (await httpx.AsyncClient().get(f"http://{cluster.jobs}/metrics")).json()
        expected = args.jobs * args.minutes
        print(f"J1 {args.jobs} jobs every minute for {args.minutes} min ({'burst' if args.burst else 'spread'}), "
              f"{args.agents} agents: runs {counted}/{expected} expected, missed "
              f"{metrics['counters']['runs.missed']['count']}, skipped {metrics['counters']['runs.skipped']['count']}; "
              f"start lateness p50 {percentile(late, 0.5) * 1000:.0f} ms, p99 {percentile(late, 0.99) * 1000:.0f} ms, "
              f"max {max(late, default=float('nan')) * 1000:.0f} ms", flush=True)


async def j3(args: argparse.Namespace, work: Path) -> None:
    async with Cluster(work, args.agents, args.run_seconds) as cluster:
        later = time.time() + 3600  # the roots are moved to "soon" once every chain is defined
        for c in range(args.chains):
            await cluster.post("/iso8601", job(f"c{c}-0", schedule=f"R1/{iso(later)}/PT1H"))
            for d in range(1, args.depth):
                await cluster.post("/dependency", job(f"c{c}-{d}", parents=[f"c{c}-{d - 1}"]))
        start = time.time() + 3
        for c in range(args.chains):
            await cluster.post("/iso8601", job(f"c{c}-0", schedule=f"R1/{iso(start)}/PT1H"))
        total = args.chains * args.depth
        await async_wait_until(lambda: cluster.launched() >= total, 60 + args.depth * 10, "every chain's end",
                               interval=0.2)
        await asyncio.sleep(args.run_seconds + 2)
        hops: list[float] = []
        for c in range(args.chains):
            runs = [(await cluster.history(f"c{c}-{d}"))[0] for d in range(args.depth)]
            for parent, child in itertools.pairwise(runs):
                hops.append(parse_iso(child["startTime"]) - parse_iso(parent["endTime"]))
        print(f"J3 {args.chains} chains of depth {args.depth}, runs of {args.run_seconds} s: overhead per hop "
              f"p50 {percentile(hops, 0.5) * 1000:.0f} ms, p99 {percentile(hops, 0.99) * 1000:.0f} ms, "
              f"max {max(hops) * 1000:.0f} ms over {len(hops)} hops", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=["J1", "J3"])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--run-seconds", type=float, default=0.5)
    parser.add_argument("--keep", type=Path, help="keep the daemons' work directories and logs here")
    args = parser.parse_args()
    print(f"# {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenarios:
            work = (args.keep or Path(tmp)) / scenario
            work.mkdir(parents=True)
            await {"J1": j1, "J3": j3}[scenario](args, work)


if __name__ == "__main__":
    asyncio.run(main())
