"""The unmodified pymesos 0.3.15 library against real Meseta processes.

Runs against `meseta master` + two `meseta agent` processes, and against `meseta local`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pymesos = pytest.importorskip("pymesos")
from pymesos import MesosSchedulerDriver, encode_data  # noqa: E402

from meseta.protocol.task_states import TERMINAL  # noqa: E402
from meseta.testing.processes import processes_with  # noqa: E402
from meseta.testing.pymesos_recorder import (  # noqa: E402
    Recorder,
    launch_running,
    own_headers,
    scalar,
    start_driver,
    task,
)
from meseta.testing.waiting import wait_until  # noqa: E402

EXECUTOR = Path(__file__).with_name("pymesos_executor.py")


def launch_hundred(master: str) -> None:
    recorder = Recorder()
    launched = [0]

    def on_offers(driver: Any, offers: list[dict[str, Any]]) -> None:
        for offer in offers:
            cpus, mem, tasks = scalar(offer, "cpus"), scalar(offer, "mem"), []
            while launched[0] < 100 and cpus >= 0.1 and mem >= 32:
                tasks.append(task(f"cmd-{launched[0]}", offer, command={"value": "echo $MESOS_TASK_ID"}))
                launched[0] += 1
                cpus, mem = cpus - 0.1, mem - 32
            driver.launchTasks(offer["id"], tasks)

    recorder.on_offers = on_offers
    driver = start_driver(master, recorder)
    try:
        recorder.wait(lambda: sum(u["state"] in TERMINAL for u in recorder.updates) >= 100, 60, "100 tasks")
        finals = {u["task_id"]["value"]: u["state"] for u in recorder.updates if u["state"] in TERMINAL}
        assert len(finals) == 100 and set(finals.values()) == {"TASK_FINISHED"}
        assert all("uuid" in u and "agent_id" in u for u in recorder.updates)
    finally:
        driver.stop()
        driver.join()


def custom_executor_and_messages(master: str) -> None:
    recorder = Recorder()
    driver = start_driver(master, recorder)
    try:
        offer = recorder.take_offers()[0]
        executor = {
            "executor_id": {"value": "echo-executor"},
            "command": {"value": f"{sys.executable} {EXECUTOR}"},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
        }
        driver.launchTasks(offer["id"], [
            task("ex-1", offer, executor=executor, data=encode_data(b"finish")),
            task("ex-2", offer, executor=executor),
        ])
        recorder.wait(lambda: "TASK_FINISHED" in recorder.states("ex-1"), what="ex-1 finished")
        recorder.wait(lambda: "TASK_RUNNING" in recorder.states("ex-2"), what="ex-2 running")
        driver.sendFrameworkMessage({"value": "echo-executor"}, offer["agent_id"], encode_data(b"ping"))
        recorder.wait(lambda: b"echo:ping" in recorder.messages, what="the executor's reply")
        driver.killTask({"value": "ex-2"})
        recorder.wait(lambda: "TASK_KILLED" in recorder.states("ex-2"), what="ex-2 killed")
    finally:
        driver.stop()
        driver.join()


def kill_reconcile_filters_teardown(master: str) -> None:
    recorder = Recorder()
    driver = start_driver(master, recorder)
    fid = recorder.framework_id
    try:
        offers = recorder.take_offers()
        offer = offers[0]
        driver.launchTasks(offer["id"], [task("sleeper", offer, command={"value": "sleep 300"})])
        for other in offers[1:]:
            driver.declineOffer(other["id"], {"refuse_seconds": 0})
        recorder.wait(lambda: "TASK_RUNNING" in recorder.states("sleeper"), what="sleeper running")

        # Explicit and implicit reconciliation: master-generated answers without a uuid.
        count = len(recorder.updates)
        driver.reconcileTasks([{"task_id": {"value": "sleeper"}}, {"task_id": {"value": "never-launched"}}])
        recorder.wait(lambda: len(recorder.updates) >= count + 2, what="explicit reconcile")
        answers = {u["task_id"]["value"]: u for u in recorder.updates[count:]}
        assert answers["sleeper"]["state"] == "TASK_RUNNING" and "uuid" not in answers["sleeper"]
        assert answers["sleeper"]["reason"] == "REASON_RECONCILIATION"
        assert answers["never-launched"]["state"] == "TASK_LOST"
        count = len(recorder.updates)
        driver.reconcileTasks([])
        recorder.wait(lambda: len(recorder.updates) >= count + 1, what="implicit reconcile")
        assert recorder.updates[count]["task_id"]["value"] == "sleeper"

        # Decline with a long filter: no offers; revive: offers again.
        for offer in recorder.take_offers():
            driver.declineOffer(offer["id"], {"refuse_seconds": 3600})
        time.sleep(1.5)
        assert not recorder.offers
        driver.reviveOffers()
        offers = recorder.take_offers()
        # A short filter expires by itself: the next batch allocation offers the agents again.
        for offer in offers:
            driver.declineOffer(offer["id"], {"refuse_seconds": 1})
        offers = recorder.take_offers(timeout=5)
        # Suppress: nothing while suppressed; revive brings offers back.
        driver.suppressOffers()
        for offer in offers:
            driver.declineOffer(offer["id"], {"refuse_seconds": 0})
        time.sleep(1.5)
        assert not recorder.offers
        driver.reviveOffers()
        recorder.take_offers()

        driver.killTask({"value": "sleeper"})
        recorder.wait(lambda: "TASK_KILLED" in recorder.states("sleeper"), what="sleeper killed")
    finally:
        driver.stop()
        driver.join()
    state = httpx.get(f"http://{master}/master/state").json()
    assert fid in [f["id"] for f in state["completed_frameworks"]]
    # A torn-down framework id can never subscribe again.
    again = Recorder()
    zombie = own_headers(MesosSchedulerDriver(again, {"user": "", "name": "again", "id": {"value": fid}}, master,
                                              use_addict=False))
    zombie.start()
    try:
        again.wait(lambda: bool(again.errors), what="the removed-framework error")
        assert "removed" in again.errors[0]
    finally:
        zombie.stop(failover=True)
        zombie.join()


def teardown_kills_running_tasks(master: str) -> None:
    marker = f"{300 + os.getpid() % 1000}.{time.time_ns() % 997}"
    recorder = Recorder()
    driver = start_driver(master, recorder)
    launch_running(driver, recorder, "doomed", f"sleep {marker}")
    assert processes_with(marker), "the task's process should be running"
    driver.stop()
    driver.join()
    wait_until(lambda: not processes_with(marker), 15, "teardown to end the task's process")
    tasks = httpx.get(f"http://{master}/master/tasks").json()["tasks"]
    assert [t["state"] for t in tasks if t["id"] == "doomed"] == ["TASK_KILLED"]


@pytest.mark.integration
def test_hundred_command_tasks_finish(cluster: str) -> None:
    launch_hundred(cluster)


@pytest.mark.integration
def test_custom_pymesos_executor_runs_tasks_and_exchanges_messages(cluster: str) -> None:
    custom_executor_and_messages(cluster)


@pytest.mark.integration
def test_kill_reconcile_filters_suppress_revive_and_teardown(cluster: str) -> None:
    kill_reconcile_filters_teardown(cluster)


@pytest.mark.integration
def test_teardown_kills_running_tasks(cluster: str) -> None:
    teardown_kills_running_tasks(cluster)
