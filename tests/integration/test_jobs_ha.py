"""Two ``meseta jobs --zk`` instances over a real ZooKeeper, a master and two agents as processes:
kill -9 the leader while jobs run every two seconds. The other one leads; counted on the agents
(each run appends its task id, which holds its due time), no due run is lost or run twice, and
the runs of a job with a short epsilon that fell due while nobody led are reported as missed.
(The jobs are concurrent: a run the old leader launched shows as running until its agent sends
its end again, ~10 s, as Mesos reconciles with the state of the update in flight; a job that is
not concurrent would make the next due run wait for it.)"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.runtime.serve import free_port
from meseta.testing.clusters import FAST_ALLOCATION, agent_resources, kill9, start_daemon, wait_for_agents
from meseta.testing.processes import stop_processes
from meseta.testing.waiting import wait_until
from meseta.testing.zookeeper import Ensemble

chronos = pytest.importorskip("chronos")

pytestmark = pytest.mark.timeout(240)
PERIOD_MS = 2000


@pytest.fixture
def cluster(tmp_path: Path, single_node: Ensemble) -> Iterator[tuple[list[int], list[subprocess.Popen[bytes]]]]:
    master = f"127.0.0.1:{free_port()}"
    procs = [start_daemon(["master", "--port", master.split(":")[1], "--work-dir", str(tmp_path / "m"),
                           *FAST_ALLOCATION], tmp_path / "master.log")]
    for i in range(2):
        procs.append(start_daemon(["agent", "--master", master, "--port", str(free_port()), "--work-dir",
                                   str(tmp_path / f"a{i}"), "--no-switch-user", "--resources", agent_resources(i, 2)],
                                  tmp_path / f"agent{i}.log"))
    ports = [free_port(), free_port()]
    jobs = [start_daemon(["jobs", "--master", master, "--port", str(p), "--work-dir", str(tmp_path / f"j{i}"),
                          "--zk", single_node.url("jobs"), "--zk-session-timeout", "4", "--task-epsilon", "30"],
                         tmp_path / f"jobs{i}.log")
            for i, p in enumerate(ports)]
    try:
        wait_for_agents(master, 2)
        yield ports, jobs
    finally:
        stop_processes([*procs, *jobs])


def _leader(ports: list[int]) -> int:
    def ask() -> list[int]:
        for port in ports:
            try:
                leader = httpx.get(f"http://127.0.0.1:{port}/leader", timeout=2).json()["leader"]
                if httpx.get(f"http://{leader}/v1/scheduler/jobs", timeout=2).status_code == 200:
                    return [ports.index(int(leader.rsplit(":", 1)[1]))]
            except (httpx.HTTPError, ValueError, KeyError):
                continue
        return []
    return wait_until(ask, 60, "a jobs leader")[0]


def _job(name: str, out: Path, start: dt.datetime, **extra: Any) -> dict[str, Any]:
    when = start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"name": name, "command": f"echo $mesos_task_id >> {out}", "owner": "", "disabled": False,
            "schedule": f"R/{when}/PT2S", "concurrent": True, **extra}


def _dues(path: Path) -> list[int]:
    """The due times (ms) of the runs that happened, from their task ids ct:<due>:<attempt>:<name>:"""
    return [int(line.split(":")[1]) for line in path.read_text().split()] if path.exists() else []


def test_leader_killed_while_jobs_run_no_run_lost_or_doubled(
        tmp_path: Path, cluster: tuple[list[int], list[subprocess.Popen[bytes]]]) -> None:
    ports, jobs = cluster
    leading = _leader(ports)
    standby = 1 - leading
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=3)
    steady, strict = tmp_path / "steady", tmp_path / "strict"
    via_standby = chronos.connect([f"127.0.0.1:{ports[standby]}"])  # chronos-python, proxied to the leader
    for body in (_job("steady", steady, start), _job("strict", strict, start, epsilon="PT1S")):
        via_standby.add(body)
    assert sorted(j["name"] for j in via_standby.list()) == ["steady", "strict"]
    wait_until(lambda: len(_dues(steady)) >= 3, 30, "a few runs under the first leader")

    kill9(jobs[leading])
    killed_at = time.time()
    assert _leader(ports) == standby
    wait_until(lambda: max(_dues(steady), default=0) / 1000 > killed_at + 8, 60, "runs under the new leader")
    time.sleep(1)

    runs = _dues(steady)
    assert not [due for due, n in Counter(runs).items() if n > 1], f"a due run ran twice: {sorted(runs)}"
    first, last = min(runs), max(runs)
    assert sorted(runs) == list(range(first, last + 1, PERIOD_MS)), "every due run of 'steady' ran (epsilon 30 s)"

    leader = f"http://127.0.0.1:{ports[standby]}/v1/scheduler"
    events = httpx.get(f"{leader}/events", timeout=5).json()
    missed = [int(dt.datetime.strptime(e["due"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)
              for e in events if e["type"] == "run_missed" and e["job"] == "strict"]
    ran = _dues(strict)
    assert not set(missed) & set(ran) and len(ran) == len(set(ran)), "a run is either missed or run once"
    assert missed, "the failover outlasted 'strict''s epsilon: its due runs meanwhile are reported missed"
    slots = sorted(set(missed) | {d for d in ran if d <= max(missed)})
    assert slots == list(range(min(slots), max(slots) + 1, PERIOD_MS)), "no due run of 'strict' went unaccounted"
    metrics = httpx.get(f"http://127.0.0.1:{ports[standby]}/metrics", timeout=5).json()
    assert metrics["counters"]["runs.missed"]["count"] == len(missed)
