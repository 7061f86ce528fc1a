"""Framework failover: a new scheduler instance re-subscribes with the same id; a framework that
stays away longer than its failover_timeout is removed and its tasks are killed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest
from pymesos import MesosSchedulerDriver

from meseta.testing.processes import processes_with
from meseta.testing.pymesos_recorder import Recorder, launch_running, own_headers, start_driver, task
from meseta.testing.waiting import wait_until

EXECUTOR = Path(__file__).with_name("pymesos_executor.py")


def _framework(master: str, framework_id: str) -> dict:
    state = httpx.get(f"http://{master}/master/state").json()
    for framework in state["frameworks"] + state["completed_frameworks"]:
        if framework["id"] == framework_id:
            return framework
    raise AssertionError(f"framework {framework_id} not in /master/state")


@pytest.mark.integration
def test_new_instance_takes_over_with_the_same_id_and_tasks_keep_running(separate_processes: str) -> None:
    master = separate_processes
    marker = f"40.{time.time_ns() % 99991}"
    first = Recorder()
    driver = start_driver(master, first, failover_timeout=60)
    launch_running(driver, first, "survivor", f"sleep {marker}")
    framework_id = first.framework_id
    driver.stop(failover=True)  # the scheduler goes away without tearing down
    driver.join()
    time.sleep(0.5)
    assert _framework(master, framework_id)["connected"] is False
    assert processes_with(marker), "the task must keep running while its framework is away"

    second = Recorder()
    info = {"user": "", "name": "pymesos-test", "failover_timeout": 60, "id": {"value": framework_id}}
    takeover = own_headers(MesosSchedulerDriver(second, info, master, use_addict=False))
    takeover.start()
    try:
        second.wait(lambda: second.framework_id == framework_id, what="re-registration with the same id")
        takeover.reconcileTasks([])
        second.wait(lambda: "TASK_RUNNING" in second.states("survivor"), what="survivor reconciled")
        framework = _framework(master, framework_id)
        assert framework["connected"] and framework["active"]
        takeover.killTask({"value": "survivor"})
        second.wait(lambda: "TASK_KILLED" in second.states("survivor"), what="survivor killed")
    finally:
        takeover.stop()
        takeover.join()


@pytest.mark.integration
def test_framework_gone_past_its_failover_timeout_is_removed(separate_processes: str) -> None:
    master = separate_processes
    marker = f"41.{time.time_ns() % 99991}"
    recorder = Recorder()
    driver = start_driver(master, recorder, failover_timeout=1)
    launch_running(driver, recorder, "orphan", f"sleep {marker}")
    driver.stop(failover=True)
    driver.join()
    wait_until(lambda: not processes_with(marker) and not _framework(master, recorder.framework_id)["active"], 15,
               "the framework removed and its task killed")
    state = httpx.get(f"http://{master}/master/state").json()
    assert recorder.framework_id in [f["id"] for f in state["completed_frameworks"]]


@pytest.mark.integration
def test_shutdown_call_stops_a_custom_executor(separate_processes: str) -> None:
    recorder = Recorder()
    driver = start_driver(separate_processes, recorder)
    try:
        offer = recorder.take_offers()[0]
        executor = {"executor_id": {"value": "to-stop"}, "command": {"value": f"{sys.executable} {EXECUTOR}"},
                    "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                  {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]}
        driver.launchTasks(offer["id"], [task("held", offer, executor=executor)])
        recorder.wait(lambda: "TASK_RUNNING" in recorder.states("held"), what="held running")
        driver._send({"type": "SHUTDOWN", "framework_id": {"value": recorder.framework_id},
                      "shutdown": {"executor_id": {"value": "to-stop"}, "agent_id": offer["agent_id"]}})
        recorder.wait(lambda: any(s in recorder.states("held") for s in ("TASK_FAILED", "TASK_KILLED", "TASK_LOST")),
                      what="the executor's task to end")
    finally:
        driver.stop()
        driver.join()
