"""Revocable resources are reclaimed first: an agent over its QoS load threshold destroys the
executors that run on revocable CPUs, and leaves the tasks on plain resources alone.

Real processes: a master, an agent advertising ``cpus:2`` of oversubscribed (revocable) CPUs with
``--qos-load-threshold-5min 0``, and a pymesos framework with REVOCABLE_RESOURCES. The revocable
task is a busy loop, so the host's load is above zero however idle the machine was.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from meseta.testing.clusters import master_and_agent
from meseta.testing.processes import processes_with
from meseta.testing.pymesos_recorder import Recorder, driver_for, task

pytestmark = pytest.mark.integration


def test_revocable_executors_are_preempted_and_plain_ones_keep_running(tmp_path: Path) -> None:
    marker = f"qos-busy-{uuid.uuid4().hex[:8]}"
    recorder = Recorder()
    with master_and_agent(tmp_path, "--resources", "cpus:2;mem:1024;disk:256;ports:[31000-31010]",
                          "--oversubscribed-resources", "cpus:2", "--qos-load-threshold-5min", "0",
                          "--qos-correction-interval", "0.5") as (master, agent_port), \
            driver_for(master, recorder, capabilities=[{"type": "REVOCABLE_RESOURCES"}]) as driver:
        offer = recorder.take_offers()[0]
        assert any("revocable" in r for r in offer["resources"]), offer["resources"]
        plain = task("plain", offer, command={"value": "sleep 300"})
        busy = task("revocable", offer, command={"value": f"exec sh -c 'while :; do :; done' {marker}"})
        busy["resources"] = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "revocable": {}},
                             {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]
        driver.launchTasks(offer["id"], [plain, busy])
        recorder.wait(lambda: "TASK_RUNNING" in recorder.states("plain"), 20, "the plain task running")

        lost = recorder.final("revocable")
        assert lost["state"] == "TASK_LOST" and lost["reason"] == "REASON_CONTAINER_PREEMPTED", lost
        assert "load" in lost["message"]
        assert not processes_with(marker)  # the container is destroyed, not just reported
        assert recorder.states("plain")[-1] == "TASK_RUNNING"
        metrics = httpx.get(f"http://127.0.0.1:{agent_port}/metrics/snapshot").json()
        assert metrics["slave/executors_preempted"] == 1
        assert metrics["slave/tasks_running"] == 1
