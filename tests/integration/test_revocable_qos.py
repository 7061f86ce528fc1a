"""Revocable resources are reclaimed first: an agent over its QoS load threshold destroys the
executors that run on revocable CPUs, and leaves the tasks on plain resources alone.

Real processes: a master, an agent advertising ``cpus:2`` of oversubscribed (revocable) CPUs with
``--qos-load-threshold-5min 0``, and a pymesos framework with REVOCABLE_RESOURCES. The revocable
task is a busy loop, so the host's load is above zero however idle the machine was.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from meseta.daemons import free_port

from .conftest import _stop, wait_for_agents
from .test_allocation_e2e import _proc
from .test_pymesos import Recorder, start_driver, task

pytestmark = pytest.mark.integration


def _running(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0


def test_revocable_executors_are_preempted_and_plain_ones_keep_running(tmp_path: Path) -> None:
    port, agent_port = free_port(), free_port()
    master = f"127.0.0.1:{port}"
    procs = [_proc(["master", "--port", str(port), "--work-dir", str(tmp_path / "master"),
                    "--allocation-interval", "0.2"], tmp_path / "master.log"),
             _proc(["agent", "--master", master, "--port", str(agent_port), "--work-dir", str(tmp_path / "agent"),
                    "--no-switch-user", "--resources", "cpus:2;mem:1024;disk:256;ports:[31000-31010]",
                    "--oversubscribed-resources", "cpus:2", "--qos-load-threshold-5min", "0",
                    "--qos-correction-interval", "0.5"], tmp_path / "agent.log")]
    recorder, driver = Recorder(), None
    marker = f"qos-busy-{uuid.uuid4().hex[:8]}"
    try:
        wait_for_agents(master, 1)
        driver = start_driver(master, recorder, capabilities=[{"type": "REVOCABLE_RESOURCES"}])
        offer = recorder.take_offers()[0]
        assert any("revocable" in r for r in offer["resources"]), offer["resources"]
        plain = task("plain", offer, command={"value": "sleep 300"})
        busy = task("revocable", offer, command={"value": f"exec sh -c 'while :; do :; done' {marker}"})
        busy["resources"] = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "revocable": {}},
                             {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]
        driver.launchTasks(offer["id"], [plain, busy])
        recorder.wait(lambda: "TASK_RUNNING" in recorder.states("plain"), 20, "the plain task running")
        recorder.wait(lambda: "TASK_LOST" in recorder.states("revocable"), 30, "the revocable task preempted")

        with recorder.lock:
            (lost,) = [u for u in recorder.updates
                       if u["task_id"]["value"] == "revocable" and u["state"] == "TASK_LOST"]
        assert lost["reason"] == "REASON_CONTAINER_PREEMPTED"
        assert "load" in lost["message"]
        assert not _running(marker)  # the container is destroyed, not just reported
        assert recorder.states("plain")[-1] == "TASK_RUNNING"
        metrics = httpx.get(f"http://127.0.0.1:{agent_port}/metrics/snapshot").json()
        assert metrics["slave/executors_preempted"] == 1
        assert metrics["slave/tasks_running"] == 1
    finally:
        if driver is not None:
            driver.stop()
            driver.join()
        _stop(procs)
