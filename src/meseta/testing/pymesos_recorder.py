"""A pymesos scheduler that records what the unmodified library delivers, for tests and benchmarks.

The test (or benchmark) thread drives the driver; pymesos calls back on its own thread, so every
record is kept under one condition variable that ``wait`` blocks on::

    with driver_for(master, recorder, checkpoint=True) as driver:    # "host:port" or "zk://.../path"
        offers = recorder.take_offers()
        driver.launchTasks(offers[0]["id"], [task("t1", offers[0], command={"value": "sleep 9"})])
        recorder.final("t1")

    with driver_for(master, recorder) as driver:
        offer = launch_running(driver, recorder, "t2", "sleep 30")       # on the first offer, once RUNNING
        assert scalar(offer, "cpus") >= 0.1
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pymesos import MesosSchedulerDriver, Scheduler, decode_data

from meseta.protocol.task_states import TERMINAL


def task(task_id: str, offer: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "task_id": {"value": task_id}, "agent_id": offer["agent_id"], "name": task_id,
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
        **extra,
    }


def scalar(offer: dict[str, Any], name: str) -> float:
    """The total of the offer's scalar resources called ``name`` (every role and reservation)."""
    return float(sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name))


class Recorder(Scheduler):  # type: ignore[misc]
    """Collects what pymesos delivers; the test thread drives the driver."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.offers: list[dict[str, Any]] = []
        self.offer_events = 0
        self.updates: list[dict[str, Any]] = []
        self.messages: list[bytes] = []
        self.errors: list[str] = []
        self.lost_agents: list[str] = []
        self.lost_executors: list[tuple[str, int]] = []
        self.framework_id: str | None = None
        self.reregistrations: list[float] = []  # time.monotonic() of each reregistered()
        self.on_offers: Callable[[Any, list[dict[str, Any]]], None] | None = None

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        with self.lock:
            self.framework_id = framework_id["value"]
            self.lock.notify_all()

    def reregistered(self, driver: Any, master_info: Any) -> None:
        with self.lock:
            self.framework_id = driver.framework_id
            self.reregistrations.append(time.monotonic())
            self.lock.notify_all()

    def resourceOffers(self, driver: Any, offers: list[dict[str, Any]]) -> None:
        with self.lock:
            self.offer_events += 1
            handler = self.on_offers
            if handler is None:
                self.offers.extend(offers)
        if handler is not None:
            handler(driver, offers)
        with self.lock:
            self.lock.notify_all()

    def statusUpdate(self, driver: Any, status: dict[str, Any]) -> None:
        with self.lock:
            self.updates.append(status)
            self.lock.notify_all()

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, message: str) -> None:
        with self.lock:
            self.messages.append(decode_data(message))
            self.lock.notify_all()

    def slaveLost(self, driver: Any, agent_id: Any) -> None:
        with self.lock:
            self.lost_agents.append(agent_id["value"])
            self.lock.notify_all()

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: int) -> None:
        with self.lock:
            self.lost_executors.append((executor_id["value"], status))
            self.lock.notify_all()

    def error(self, driver: Any, message: str) -> None:
        with self.lock:
            self.errors.append(message)
            self.lock.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
        with self.lock:
            assert self.lock.wait_for(predicate, timeout), f"timed out waiting for {what}"

    def take_offers(self, timeout: float = 20.0) -> list[dict[str, Any]]:
        self.wait(lambda: bool(self.offers), timeout, "offers")
        with self.lock:
            offers, self.offers = self.offers, []
        return offers

    def states(self, task_id: str) -> list[str]:
        with self.lock:
            return [u["state"] for u in self.updates if u["task_id"]["value"] == task_id]

    def final(self, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The task's first terminal update, once it comes."""
        self.wait(lambda: any(s in TERMINAL for s in self.states(task_id)), timeout, f"{task_id} to end")
        with self.lock:
            return next(u for u in self.updates if u["task_id"]["value"] == task_id and u["state"] in TERMINAL)


def own_headers(driver: MesosSchedulerDriver) -> MesosSchedulerDriver:
    """pymesos 0.3.15's ``_send(..., headers={})`` writes each call's Mesos-Stream-Id into that one
    shared default dict: two drivers in one process (each with its own lock) can send each
    other's stream id, and the master refuses the call (400). Give every call a dict of its own."""
    send = driver._send

    def _send(body: Any, path: str = "/api/v1/scheduler", method: str = "POST",
              headers: dict[str, str] | None = None) -> Any:
        return send(body, path, method, headers=dict(headers or {}))

    driver._send = _send
    return driver


def start_driver(master: str, recorder: Recorder, **info: Any) -> MesosSchedulerDriver:
    framework = {"user": "", "name": "pymesos-test", **info}
    driver = own_headers(MesosSchedulerDriver(recorder, framework, master, use_addict=False))
    driver.start()
    recorder.wait(lambda: recorder.framework_id is not None, what="registration")
    return driver


@contextmanager
def driver_for(master: str, recorder: Recorder, **info: Any) -> Iterator[MesosSchedulerDriver]:
    """A started pymesos driver, stopped and joined afterwards."""
    driver = start_driver(master, recorder, **info)
    try:
        yield driver
    finally:
        driver.stop()
        driver.join()


def launch_running(driver: MesosSchedulerDriver, recorder: Recorder, task_id: str, command: str) -> dict[str, Any]:
    """Launch one command task on the first offer and wait until it runs; returns that offer."""
    offer = recorder.take_offers()[0]
    driver.launchTasks(offer["id"], [task(task_id, offer, command={"value": command})])
    recorder.wait(lambda: "TASK_RUNNING" in recorder.states(task_id), what=f"{task_id} running")
    return offer
