"""jobs_failover: J2 for `meseta jobs` (issue 15): leader failures, Jepsen-style, while jobs run.

    ZooKeeper (one server, loopback), a `meseta master` process, --agents simulated agents in this
    process (FakeAgent: TASK_RUNNING at once, TASK_FINISHED --run-seconds later; every RUN_TASK
    is recorded, so runs are counted where they happen), and three `meseta jobs --zk` processes,
    restarted by this script whenever one exits (as a supervisor would).

    --jobs jobs, each due every --period seconds (concurrent, so that a run shown running after a
    failover until its agent resends its end does not hold the next one back).

    Every --every seconds the nemesis picks the leader and, in turn:
        kill -9 it                       (a crash)
        SIGSTOP it for 2 x session timeout, then SIGCONT   (a long pause: a partition from
                                         ZooKeeper; it must find itself fenced and start nothing)

    Afterwards: duplicates (a due time launched twice), due times neither run nor reported
    missed, "stuck" jobs (no run for 3 periods at the end), and the failover gaps.

    python benchmarks/jobs_failover.py [--minutes 10] [--every 30] [--jobs 50] [--period 5]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from meseta.runtime.serve import free_port
from meseta.testing.fake_agent import FakeAgent
from meseta.testing.waiting import async_wait_until
from meseta.testing.zookeeper import Ensemble

MESETA = [sys.executable, "-m", "meseta.cli.main"]
AGENT_RESOURCES = "cpus:32;mem:65536;disk:65536"
SESSION_TIMEOUT = 4.0


class Supervisor:
    """Three jobs instances; one that exits is started again."""

    def __init__(self, work: Path, master: str, zk: str) -> None:
        self.work, self.master, self.zk = work, master, zk
        self.ports = [free_port() for _ in range(3)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None, None, None]
        self.restarts = 0

    def start(self, i: int) -> None:
        log = open(self.work / f"jobs{i}.log", "ab")  # noqa: SIM115 - the child keeps it
        self.procs[i] = subprocess.Popen(
            [*MESETA, "jobs", "--master", self.master, "--port", str(self.ports[i]), "--work-dir",
             str(self.work / f"j{i}"), "--zk", self.zk, "--zk-session-timeout", str(SESSION_TIMEOUT),
             "--task-epsilon", "60"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def keep_up(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is None or proc.poll() is not None:
                if proc is not None:
                    self.restarts += 1
                self.start(i)

    def leader(self) -> int | None:
        for port in self.ports:
            try:
                leader = httpx.get(f"http://127.0.0.1:{port}/leader", timeout=1).json()["leader"]
                return self.ports.index(int(leader.rsplit(":", 1)[1]))
            except (httpx.HTTPError, ValueError, KeyError):
                continue
        return None

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
                proc.terminate()
                proc.wait(10)


def _new_leader(supervisor: Supervisor, old: int) -> bool:
    return supervisor.leader() not in (None, old)


async def run(args: argparse.Namespace, work: Path) -> None:
    ensemble = Ensemble(work / "zk", size=1)
    ensemble.start()
    master = f"127.0.0.1:{free_port()}"
    log = open(work / "master.log", "ab")  # noqa: SIM115
    master_proc = subprocess.Popen([*MESETA, "master", "--port", master.split(":")[1], "--work-dir",
                                    str(work / "master")], stdout=log, stderr=subprocess.STDOUT)
    client = httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=args.agents + 10))
    supervisor = Supervisor(work, master, ensemble.url("jobs"))
    fakes: list[FakeAgent] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await async_wait_until(lambda: httpx.get(f"http://{master}/health", timeout=2).status_code == 200, 30,
                               "the master", interval=0.1, ignore=(httpx.HTTPError,))
        fakes = [FakeAgent(master, f"sim{i}", AGENT_RESOURCES, client, finish_after=args.run_seconds)
                 for i in range(args.agents)]
        tasks = [asyncio.create_task(f.run()) for f in fakes]
        supervisor.keep_up()
        await async_wait_until(lambda: supervisor.leader() is not None, 60, "a jobs leader", interval=0.2)
        leader = supervisor.leader()
        assert leader is not None
        api = f"http://127.0.0.1:{supervisor.ports[leader]}/v1/scheduler"
        start = time.time() + 10
        async with httpx.AsyncClient(timeout=30) as http:
            for i in range(args.jobs):
                when = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(start) + i % args.period))
                body = {"name": f"j{i}", "command": "true", "owner": "", "disabled": False, "concurrent": True,
                        "schedule": f"R/{when}/PT{args.period}S", "cpus": 0.01, "mem": 1, "disk": 1, "retries": 0}
                answer = await http.post(f"{api}/iso8601", json=body)
                assert answer.status_code == 204, answer.text
        end = time.time() + args.minutes * 60
        faults: list[str] = []
        gaps: list[float] = []
        turn = 0
        await asyncio.sleep(max(0.0, start - time.time()) + args.every / 2)
        while time.time() < end - args.every:
            leader = supervisor.leader()
            proc = supervisor.procs[leader] if leader is not None else None
            if proc is not None:
                since = time.time()
                if turn % 2 == 0:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    faults.append("kill -9")
                else:
                    os.killpg(proc.pid, signal.SIGSTOP)
                    faults.append("SIGSTOP")
                    await asyncio.sleep(SESSION_TIMEOUT * 2)
                    os.killpg(proc.pid, signal.SIGCONT)
                turn += 1
                await async_wait_until(functools.partial(_new_leader, supervisor, leader), 60, "a new leader",
                                       interval=0.1, ignore=(httpx.HTTPError,))
                gaps.append(time.time() - since)
            for _ in range(int(args.every * 10)):
                supervisor.keep_up()
                await asyncio.sleep(0.1)
        await asyncio.sleep(max(0.0, end - time.time()) + args.period + 2)
        launched = [task_id for f in fakes for task_id in f.launched]
        dues = Counter((t.split(":")[3], int(t.split(":")[1])) for t in launched
                       if t.startswith("ct:") and int(t.split(":")[1]) / 1000 < end)
        duplicates = {k: n for k, n in dues.items() if n > 1}
        leader = supervisor.leader()
        metrics = httpx.get(f"http://127.0.0.1:{supervisor.ports[leader or 0]}/metrics", timeout=5).json()
        missed = metrics["counters"]["runs.missed"]["count"]
        expected = sum(1 for i in range(args.jobs)
                       for k in range(10_000) if int(start) + i % args.period + k * args.period < end)
        stuck = [i for i in range(args.jobs)
                 if max((due for (job, due) in dues if job == f"j{i}"), default=0) / 1000 < end - 3 * args.period]
        print(f"J2 {args.minutes} min, {args.jobs} jobs every {args.period} s, a fault every {args.every} s "
              f"({Counter(faults)}), {supervisor.restarts} restarts: runs {len(dues)} of {expected} due "
              f"(recorded missed: {missed}); duplicates {len(duplicates)}; "
              f"stuck jobs {len(stuck)}; failover to a new leader p50 {sorted(gaps)[len(gaps) // 2]:.1f} s, "
              f"max {max(gaps):.1f} s", flush=True)
        if duplicates:
            print("  duplicated:", sorted(duplicates.items())[:10])
    finally:
        supervisor.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()
        master_proc.terminate()
        master_proc.wait(10)
        ensemble.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--every", type=float, default=30)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--period", type=int, default=5)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--run-seconds", type=float, default=0.5)
    args = parser.parse_args()
    print(f"# {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
