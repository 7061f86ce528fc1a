"""A network partition between the master and one agent, with real network namespaces.

Two agents each live in their own namespace on a bridge the test creates (testing.netns); the
master listens on the bridge. Cutting agent 0's bridge port drops its packets silently, as a
pulled cable does. Two pymesos frameworks run a task there: one PARTITION_AWARE, one not.

    cut      -> missed pings -> unreachable: TASK_UNREACHABLE (aware) / TASK_LOST (other), FAILURE
    heal     -> the agent re-registers with its id: the aware task is still RUNNING (reconcile),
                the other framework's task is shut down (it was already reported LOST)
    MARK_AGENT_GONE -> TASK_GONE_BY_OPERATOR, the agent is shut down and its tasks killed
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.testing.clusters import FAST_ALLOCATION, start_daemon
from meseta.testing.netns import Hosts
from meseta.testing.processes import processes_with, stop_processes
from meseta.testing.pymesos_recorder import Recorder, driver_for, task
from meseta.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(240)
PORT = 5050
AWARE = [{"type": "PARTITION_AWARE"}]


@pytest.fixture
def partitioned(tmp_path: Path) -> Iterator[tuple[Hosts, str]]:
    """A master on the bridge and an agent in each of two namespaces; yields (hosts, master)."""
    with Hosts(2) as hosts:
        master = f"{hosts.gateway}:{PORT}"
        procs = [start_daemon(["master", "--ip", hosts.gateway, "--port", str(PORT), "--work-dir", str(tmp_path / "m"),
                               "--agent-ping-timeout", "0.5", "--max-agent-ping-timeouts", "4", *FAST_ALLOCATION],
                              tmp_path / "master.log")]
        for i in range(2):
            procs.append(start_daemon(["agent", "--master", master, "--ip", hosts.address(i), "--port", "5051",
                                       "--work-dir", str(tmp_path / f"a{i}"), "--no-switch-user",
                                       "--resources", "cpus:2;mem:1024;disk:1024;ports:[31000-31100]"],
                                      tmp_path / f"agent{i}.log", prefix=hosts.inside(i)))
        try:
            wait_until(lambda: len(_state(master).get("slaves", [])) == 2, 30, "two agents")
            yield hosts, master
        finally:
            stop_processes(procs)


def _state(master: str) -> dict[str, Any]:
    try:
        return dict(httpx.get(f"http://{master}/master/state", timeout=2).json())
    except httpx.HTTPError:
        return {}


def _run_on(recorder: Recorder, driver: Any, hostname: str, task_id: str, marker: str) -> str:
    """Launch ``sleep <marker>`` on the agent named ``hostname``; returns its agent id."""
    while True:
        for offer in recorder.take_offers(30):
            if offer["hostname"] != hostname:
                driver.declineOffer(offer["id"], {"refuse_seconds": 0.5})
                continue
            driver.launchTasks(offer["id"], [task(task_id, offer, command={"value": f"sleep {marker}"})])
            recorder.wait(lambda: "TASK_RUNNING" in recorder.states(task_id), 30, f"{task_id} running")
            return str(offer["agent_id"]["value"])


def test_partition_then_heal_then_gone(partitioned: tuple[Hosts, str]) -> None:
    hosts, master = partitioned
    aware, other = Recorder(), Recorder()
    markers = {"aware": f"77.{os.getpid() % 991}1", "other": f"77.{os.getpid() % 991}2"}
    with driver_for(master, aware, name="aware", checkpoint=True, capabilities=AWARE) as aware_driver, \
            driver_for(master, other, name="other", checkpoint=True) as other_driver:
        agent_id = _run_on(aware, aware_driver, hosts.address(0), "aware-task", markers["aware"])
        _run_on(other, other_driver, hosts.address(0), "other-task", markers["other"])
        aware_pids = processes_with(markers["aware"])
        assert aware_pids and processes_with(markers["other"])

        hosts.cut(0)
        aware.wait(lambda: "TASK_UNREACHABLE" in aware.states("aware-task"), 20, "TASK_UNREACHABLE")
        other.wait(lambda: "TASK_LOST" in other.states("other-task"), 20, "TASK_LOST")
        unreachable = next(u for u in aware.updates if u["state"] == "TASK_UNREACHABLE")
        assert unreachable["reason"] == "REASON_AGENT_REMOVED" and "unreachable_time" in unreachable
        for recorder in (aware, other):
            recorder.wait(lambda r=recorder: agent_id in r.lost_agents, 10, "the agent-lost callback")
        state = _state(master)
        assert state["unreachable_slaves"] == 1 and [a["id"] for a in state["slaves"]] != [agent_id]
        aware_driver.reconcileTasks([{"task_id": {"value": "aware-task"}}])
        aware.wait(lambda: aware.states("aware-task").count("TASK_UNREACHABLE") >= 2, 10, "reconciled UNREACHABLE")

        hosts.heal(0)
        wait_until(lambda: agent_id in [a["id"] for a in _state(master).get("slaves", [])], 30, "the agent back")
        aware_driver.reconcileTasks([{"task_id": {"value": "aware-task"}}])
        aware.wait(lambda: aware.states("aware-task")[-1] == "TASK_RUNNING", 10, "the aware task RUNNING again")
        wait_until(lambda: not processes_with(markers["other"]), 15, "the other framework's task shut down")
        assert processes_with(markers["aware"]) == aware_pids, "the partition-aware task kept running throughout"
        assert "TASK_RUNNING" not in other.states("other-task")[other.states("other-task").index("TASK_LOST"):]

        answer = httpx.post(f"http://{master}/api/v1", json={
            "type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}})
        assert answer.status_code == 200, answer.text
        aware.wait(lambda: "TASK_GONE_BY_OPERATOR" in aware.states("aware-task"), 15, "TASK_GONE_BY_OPERATOR")
        wait_until(lambda: not processes_with(markers["aware"]), 15, "the gone agent's task killed")
        wait_until(lambda: agent_id not in [a["id"] for a in _state(master).get("slaves", [])], 15, "the agent gone")
