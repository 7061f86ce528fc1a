"""A master restart: the registry re-admits the agent, which re-registers with its tasks, and an
update produced while the master was down still reaches the (re-subscribed) framework."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from meseta.daemons import free_port

from .conftest import AGENT_RESOURCES, MESETA, _stop, wait_for_agents
from .test_pymesos import Recorder, launch_running, start_driver


def _master(port: int, work_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*MESETA, "master", "--port", str(port), "--work-dir", str(work_dir)],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.integration
def test_update_made_while_the_master_is_down_is_delivered_after_restart(tmp_path: Path) -> None:
    port = free_port()
    master = f"127.0.0.1:{port}"
    first = _master(port, tmp_path / "master", tmp_path / "master.log")
    agent = subprocess.Popen([*MESETA, "agent", "--master", master, "--port", str(free_port()),
                              "--work-dir", str(tmp_path / "agent"), "--resources", AGENT_RESOURCES,
                              "--no-switch-user"], stdout=open(tmp_path / "agent.log", "wb"),  # noqa: SIM115
                             stderr=subprocess.STDOUT, start_new_session=True)
    procs = [first, agent]
    recorder = Recorder()
    driver = None
    try:
        wait_for_agents(master, 1)
        agent_id = httpx.get(f"http://{master}/master/slaves").json()["slaves"][0]["id"]
        driver = start_driver(master, recorder, failover_timeout=300)
        launch_running(driver, recorder, "outlives", "sleep 2")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        time.sleep(3)  # the task finishes while no master is there to hear it
        procs.append(_master(port, tmp_path / "master", tmp_path / "master.log"))
        recorder.wait(lambda: "TASK_FINISHED" in recorder.states("outlives"), timeout=60,
                      what="the update held by the agent")
        slaves = httpx.get(f"http://{master}/master/slaves").json()["slaves"]
        assert [s["id"] for s in slaves] == [agent_id]  # re-registered with the same id
        # Launched once: one container run in the sandbox tree. (RUNNING may arrive twice: the master
        # died before relaying its ack, so the agent resent it; at-least-once allows that.)
        runs = [p for p in (tmp_path / "agent").glob("slaves/*/frameworks/*/executors/outlives/runs/*")
                if p.name != "latest"]
        assert len(runs) == 1
    finally:
        if driver is not None:
            driver.stop()
            driver.join()
        _stop(procs)
