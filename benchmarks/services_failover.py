"""services_failover: kill -9 the leading `meseta services` with thousands of tasks running and a
deployment under way (the spec's S3 for the service scheduler, benchmarks.md 7.4).

    ZooKeeper (1 node) <- 2 x `meseta services --zk` (one leads, one stands by)
    `meseta master` <- 50 FakeAgents in this process (they record every RUN_TASK and KILL_TASK)

    1. POST /base with --tasks instances; wait until all run
    2. POST /more with --deploy instances; once some of them run, kill -9 the leader
    3. measure: kill -> the stand-by leads (GET /v2/leader names it, /v2/info has the framework
       id) -> the first launch it makes -> the deployment done (both apps at their target)
    4. check: every task the agents were asked to run is one of the apps' tasks, the apps have
       exactly their instance counts, no task was killed (0 lost, 0 duplicated)

    python benchmarks/services_failover.py [--tasks 5000] [--deploy 2000] [--agents 50]
        [--session-timeout 10] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from meseta.runtime.fast_http import FastPoster
from meseta.runtime.serve import free_port
from meseta.testing.clusters import start_daemon
from meseta.testing.fake_agent import FakeAgent
from meseta.testing.processes import stop_processes
from meseta.testing.waiting import async_wait_until
from meseta.testing.zookeeper import Ensemble

AGENT_RESOURCES = "cpus:32;mem:65536"
# every wait here asks again past what a server still starting (or failing over) answers
until = partial(async_wait_until, ignore=(httpx.HTTPError, OSError, KeyError, ValueError))


def app_body(app_id: str, instances: int) -> dict[str, Any]:
    return {"id": app_id, "cmd": "sleep 3600", "instances": instances, "cpus": 0.01, "mem": 1, "disk": 0,
            "portDefinitions": []}


class Setup:
    def __init__(self, tmp: Path, args: argparse.Namespace, zk_url: str) -> None:
        self.tmp, self.args, self.zk_url = tmp, args, zk_url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.fakes: list[FakeAgent] = []
        self.runs: list[asyncio.Task[None]] = []
        self.api = httpx.AsyncClient(timeout=httpx.Timeout(60, read=None))
        self.stream = httpx.AsyncClient(timeout=httpx.Timeout(30, read=None),
                                        limits=httpx.Limits(max_connections=args.agents + 10))
        self.master = ""

    async def start(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.master = f"127.0.0.1:{port}"
        self.procs["master"] = start_daemon(["master", "--port", str(port), "--work-dir", str(self.tmp / "master"),
                                      "--allocation-interval", "0.2", "--agent-ping-timeout", "60"],
                                     self.tmp / "master.log")
        await until(lambda: self._agents(0), 60, "the master")
        poster = FastPoster("127.0.0.1", port, connections=16)
        self.fakes = [FakeAgent(self.master, f"sim{i}", AGENT_RESOURCES, self.stream, poster)
                      for i in range(self.args.agents)]
        self.runs = [asyncio.create_task(f.run()) for f in self.fakes]
        await until(lambda: self._agents(self.args.agents), 60, "the agents", interval=0.25)
        for name in ("s0", "s1"):
            self.ports[name] = free_port()
            self.procs[name] = start_daemon(["services", "--master", self.master, "--port", str(self.ports[name]),
                                      "--work-dir", str(self.tmp / name), "--zk", self.zk_url,
                                      "--zk-session-timeout", str(self.args.session_timeout)],
                                     self.tmp / f"{name}.log")

    async def stop(self) -> None:
        stop_processes(self.procs.values())
        for run in self.runs:
            run.cancel()
        await asyncio.gather(*self.runs, return_exceptions=True)
        await self.api.aclose()
        await self.stream.aclose()

    async def _agents(self, count: int) -> bool:
        slaves = (await self.api.get(f"http://{self.master}/master/slaves")).json()["slaves"]
        return len(slaves) >= count

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    async def leader(self, among: list[str]) -> str | None:
        """The instance that says it leads and has subscribed (its /v2/info has the framework id)."""
        for name in among:
            try:
                leader = (await self.api.get(self.url(name) + "/v2/leader", timeout=1)).json()["leader"]
                info = (await self.api.get(self.url(name) + "/v2/info", timeout=1)).json()
            except (httpx.HTTPError, ValueError, KeyError):
                continue
            if leader.endswith(f":{self.ports[name]}") and info.get("frameworkId"):
                return name
        return None

    async def running(self, name: str, app_id: str) -> int:
        app = (await self.api.get(f"{self.url(name)}/v2/apps{app_id}", timeout=5)).json()["app"]
        return int(app["tasksRunning"])

    def launched(self) -> list[str]:
        return [t for f in self.fakes for t in f.launched]

    def killed(self) -> list[str]:
        return [t for f in self.fakes for t in f.killed]


async def one_round(tmp: Path, args: argparse.Namespace, zk_url: str) -> dict[str, Any]:
    setup = Setup(tmp, args, zk_url)
    try:
        await setup.start()
        first = await until(lambda: setup.leader(["s0", "s1"]), 60, "a services leader")
        other = "s1" if first == "s0" else "s0"
        url = setup.url(first)
        response = await setup.api.post(url + "/v2/apps", json=app_body("/base", args.tasks))
        assert response.status_code == 201, response.text
        await until(lambda: _at(setup, first, "/base", args.tasks), 300, f"{args.tasks} tasks running", interval=0.5)
        await until(lambda: _no_deployments(setup, first), 60, "the base deployment to end")

        response = await setup.api.post(url + "/v2/apps", json=app_body("/more", args.deploy))
        assert response.status_code == 201, response.text
        await until(lambda: _at(setup, first, "/more", args.deploy // 10), 60, "the deployment under way",
                    interval=0.02)
        before_kill = len(setup.launched())
        os.killpg(setup.procs[first].pid, signal.SIGKILL)
        t_kill = time.perf_counter()
        setup.procs[first].wait()
        await until(lambda: setup.leader([other]), 120, "the stand-by to lead", interval=0.02)
        t_leads = time.perf_counter()
        await until(lambda: len(setup.launched()) > before_kill, 120, "a launch after the kill", interval=0.01)
        t_launch = time.perf_counter()
        in_flight = len(setup.launched()) - before_kill  # launches of the old leader still on their way count too
        await until(lambda: _at(setup, other, "/more", args.deploy), 300, "the deployment to finish", interval=0.1)
        await until(lambda: _no_deployments(setup, other), 60, "no deployment left", interval=0.1)
        t_done = time.perf_counter()
        await asyncio.sleep(2)  # anything still on its way arrives
        listed = (await setup.api.get(setup.url(other) + "/v2/apps?embed=apps.tasks")).json()["apps"]
        apps = {a["id"]: a for a in listed}
        known = {t["id"] for a in apps.values() for t in a.get("tasks", [])}
        launched = setup.launched()
        return {
            "leads_s": t_leads - t_kill, "first_launch_s": t_launch - t_kill, "done_s": t_done - t_kill,
            "in_flight": in_flight, "at_kill": before_kill,
            "launched": len(launched), "unique_launched": len(set(launched)),
            "expected": args.tasks + args.deploy, "killed": len(setup.killed()),
            "unknown": len(set(launched) - known), "missing": len(known - set(launched)),
            "running": {a: apps[a]["tasksRunning"] for a in ("/base", "/more") if a in apps},
        }
    finally:
        await setup.stop()


async def _at(setup: Setup, name: str, app_id: str, count: int) -> bool:
    return await setup.running(name, app_id) >= count


async def _no_deployments(setup: Setup, name: str) -> bool:
    return (await setup.api.get(setup.url(name) + "/v2/deployments", timeout=5)).json() == []


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=5_000)
    parser.add_argument("--deploy", type=int, default=2_000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--session-timeout", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--work-dir", type=Path, default=None, help="keep logs and state here")
    args = parser.parse_args()
    print(f"# services_failover: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}; {args.agents} FakeAgents, {args.tasks} tasks running, a deployment of "
          f"{args.deploy} under way, ZooKeeper session {args.session_timeout:g} s", flush=True)
    with contextlib.ExitStack() as stack:
        tmp = str(args.work_dir) if args.work_dir else stack.enter_context(
            tempfile.TemporaryDirectory(prefix="services-failover-"))
        tick = max(200, int(args.session_timeout * 1000 / 10))  # ZooKeeper allows sessions up to 20 ticks
        with Ensemble(Path(tmp) / "zk", size=1, tick_ms=tick) as zk:
            results = []
            for n in range(args.rounds):
                result = await one_round(Path(tmp) / f"round{n}", args, zk.url(f"/services{n}"))
                results.append(result)
                ok = (result["unique_launched"] == result["launched"] == result["expected"] and not result["killed"]
                      and not result["unknown"] and not result["missing"])
                print(f"round {n + 1}: stand-by leads {result['leads_s']:.2f} s after kill -9, first launch "
                      f"{result['first_launch_s']:.2f} s, deployment done {result['done_s']:.2f} s; "
                      f"{result['at_kill']} launched before the kill; agents ran {result['launched']} tasks "
                      f"({result['unique_launched']} distinct, {result['expected']} expected), killed "
                      f"{result['killed']}, unknown to the services {result['unknown']}, listed but never run "
                      f"{result['missing']}; running {result['running']} -> {'0 lost, 0 duplicated' if ok else 'BAD'}",
                      flush=True)
    worst = max(r["first_launch_s"] for r in results)
    print(f"S3 verdict (must: 0 lost or duplicated, resumed <= 15 s; aim <= 5 s): worst resume {worst:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
