"""Task groups through the default executor, and an agent removed after missed pings."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meseta.runtime.serve import free_port
from meseta.testing.clusters import DEFAULT_AGENT_RESOURCES, start_daemon, wait_for_agents
from meseta.testing.processes import processes_with, stop_processes
from meseta.testing.pymesos_recorder import Recorder, start_driver, task
from meseta.testing.waiting import wait_until


@pytest.mark.integration
def test_launch_group_runs_every_task_through_the_default_executor(separate_processes: str) -> None:
    recorder = Recorder()
    driver = start_driver(separate_processes, recorder)
    try:
        offer = recorder.take_offers()[0]
        executor = {"type": "DEFAULT", "executor_id": {"value": "group-1"},
                    "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                  {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]}
        group = [task(f"g{i}", offer, command={"value": f"echo member {i}"}) for i in range(3)]
        driver.acceptOffers([offer["id"]], [{"type": "LAUNCH_GROUP", "launch_group": {
            "executor": executor, "task_group": {"tasks": group}}}])
        for i in range(3):
            recorder.wait(lambda i=i: "TASK_FINISHED" in recorder.states(f"g{i}"), what=f"g{i} finished")
        # An invalid group (a member with its own executor) is refused as a whole.
        offer = recorder.take_offers()[0]
        bad = [task("b0", offer, command={"value": "true"}),
               task("b1", offer, executor={"executor_id": {"value": "x"}, "command": {"value": "true"}})]
        driver.acceptOffers([offer["id"]], [{"type": "LAUNCH_GROUP", "launch_group": {
            "executor": {**executor, "executor_id": {"value": "group-2"}}, "task_group": {"tasks": bad}}}])
        recorder.wait(lambda: "TASK_ERROR" in recorder.states("b0") and "TASK_ERROR" in recorder.states("b1"),
                      what="the invalid group refused")
        assert recorder.updates[-1]["reason"] == "REASON_TASK_GROUP_INVALID"
    finally:
        driver.stop()
        driver.join()


@pytest.fixture
def fast_ping_cluster(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    master = f"127.0.0.1:{port}"
    master_args = ["master", "--port", str(port), "--work-dir", str(tmp_path / "m"),
                   "--agent-ping-timeout", "0.5", "--max-agent-ping-timeouts", "2"]
    agent_args = ["agent", "--master", master, "--port", str(free_port()), "--work-dir", str(tmp_path / "a"),
                  "--resources", DEFAULT_AGENT_RESOURCES, "--no-switch-user"]
    procs = [start_daemon(args, tmp_path / "cluster.log") for args in (master_args, agent_args)]
    try:
        wait_for_agents(master, 1)
        yield master, procs[1]
    finally:
        stop_processes(procs)  # (SIGCONT first: the test may leave the agent stopped)


@pytest.mark.integration
def test_agent_that_stops_answering_pings_is_unreachable_and_comes_back(
        fast_ping_cluster: tuple[str, subprocess.Popen[bytes]]) -> None:
    master, agent = fast_ping_cluster
    recorder = Recorder()
    driver = start_driver(master, recorder)
    try:
        offer = recorder.take_offers()[0]
        marker = f"60.{time.time_ns() % 99991}"
        driver.launchTasks(offer["id"], [task("stranded", offer, command={"value": f"sleep {marker}"})])
        recorder.wait(lambda: "TASK_RUNNING" in recorder.states("stranded"), what="stranded running")
        os.killpg(agent.pid, signal.SIGSTOP)  # the agent process freezes: no more PONGs
        recorder.wait(lambda: "TASK_LOST" in recorder.states("stranded"), timeout=15, what="TASK_LOST")
        lost = next(u for u in recorder.updates if u["state"] == "TASK_LOST")
        assert lost["reason"] == "REASON_AGENT_REMOVED" and "uuid" not in lost
        recorder.wait(lambda: bool(recorder.lost_agents), what="the agent-lost callback")
        assert httpx.get(f"http://{master}/master/slaves").json()["slaves"] == []
        state = httpx.get(f"http://{master}/master/state").json()
        assert state["unreachable_slaves"] == 1
        os.killpg(agent.pid, signal.SIGCONT)  # it wakes up and re-registers with the same id (Mesos >= 1.5)
        wait_for_agents(master, 1, timeout=30)
        new_id = httpx.get(f"http://{master}/master/slaves").json()["slaves"][0]["id"]
        assert new_id == offer["agent_id"]["value"]
        # The framework is not partition-aware and was told TASK_LOST: the task is shut down.
        wait_until(lambda: not processes_with(marker), 10, "the stranded task shut down")
    finally:
        driver.stop()
        driver.join()


@pytest.mark.integration
def test_a_dying_custom_executor_fails_its_tasks_and_is_reported_lost(separate_processes: str) -> None:
    recorder = Recorder()
    driver = start_driver(separate_processes, recorder)
    try:
        offer = recorder.take_offers()[0]
        executor = {"executor_id": {"value": "short-lived"}, "command": {"value": "sleep 0.5; exit 3"},
                    "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                  {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]}
        driver.launchTasks(offer["id"], [task("orphaned", offer, executor=executor)])
        recorder.wait(lambda: "TASK_FAILED" in recorder.states("orphaned"), what="the task to fail")
        failed = next(u for u in recorder.updates if u["state"] == "TASK_FAILED")
        assert failed["reason"] == "REASON_EXECUTOR_TERMINATED" and failed["source"] == "SOURCE_AGENT"
        assert "exited with status 3" in failed["message"] and "uuid" in failed
        recorder.wait(lambda: bool(recorder.lost_executors), what="executorLost")
        assert recorder.lost_executors == [("short-lived", 3 << 8)]  # a wait status, as Mesos reports
    finally:
        driver.stop()
        driver.join()
