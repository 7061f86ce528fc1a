"""A master restart: the registry re-admits the agent, which re-registers with its tasks, and an
update produced while the master was down still reaches the (re-subscribed) framework."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from meseta.master.effects import AdmitAgent
from meseta.master.registry.storage import SqliteStorage
from meseta.runtime.serve import free_port
from meseta.testing.clusters import DEFAULT_AGENT_RESOURCES, kill9, start_daemon, wait_for_agents
from meseta.testing.processes import stop_processes
from meseta.testing.pymesos_recorder import Recorder, launch_running, start_driver
from meseta.testing.waiting import wait_until


def _master(port: int, work_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    return start_daemon(["master", "--port", str(port), "--work-dir", str(work_dir)], log)


@pytest.mark.integration
def test_update_made_while_the_master_is_down_is_delivered_after_restart(tmp_path: Path) -> None:
    port = free_port()
    master = f"127.0.0.1:{port}"
    first = _master(port, tmp_path / "master", tmp_path / "master.log")
    agent = start_daemon(["agent", "--master", master, "--port", str(free_port()), "--work-dir",
                          str(tmp_path / "agent"), "--resources", DEFAULT_AGENT_RESOURCES, "--no-switch-user"],
                         tmp_path / "agent.log")
    procs = [first, agent]
    recorder = Recorder()
    driver = None
    try:
        wait_for_agents(master, 1)
        agent_id = httpx.get(f"http://{master}/master/slaves").json()["slaves"][0]["id"]
        driver = start_driver(master, recorder, failover_timeout=300)
        launch_running(driver, recorder, "outlives", "sleep 2")
        kill9(first)
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
        stop_processes(procs)


def _seeded_master(tmp_path: Path, agents: int, *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    """A master whose registry already admits ``agents`` agents that will never come back."""
    storage = SqliteStorage(tmp_path / "master" / "registry.sqlite")
    for i in range(agents):
        storage.apply(AdmitAgent(f"old-S{i}", {"hostname": f"gone{i}", "port": 5051, "id": {"value": f"old-S{i}"}}))
    storage.close()
    port = free_port()
    proc = start_daemon(["master", "--port", str(port), "--work-dir", str(tmp_path / "master"), *flags],
                        tmp_path / "master.log")
    return proc, f"127.0.0.1:{port}"


@pytest.mark.integration
def test_recovery_removal_limit_stops_a_mass_removal(tmp_path: Path) -> None:
    proc, _ = _seeded_master(tmp_path, 4, "--agent-reregister-timeout", "1", "--recovery-agent-removal-limit", "50%")
    try:
        assert proc.wait(30) == 1, "the master exits rather than mark 100 % of its agents unreachable"
    finally:
        stop_processes([proc])
    assert "master stops" in (tmp_path / "master.log").read_text()
    assert SqliteStorage(tmp_path / "master" / "registry.sqlite").load_unreachable() == {}


@pytest.mark.integration
def test_agents_missing_after_restart_are_marked_unreachable_at_the_pace_allowed(tmp_path: Path) -> None:
    proc, master = _seeded_master(tmp_path, 3, "--agent-reregister-timeout", "1",
                                  "--agent-removal-rate-limit", "1/1secs")
    try:
        counts: list[int] = []

        def all_unreachable() -> bool:
            counts.append(httpx.get(f"http://{master}/master/state", timeout=2).json()["unreachable_slaves"])
            return counts[-1] >= 3
        wait_until(all_unreachable, 15, "3 agents unreachable", interval=0.2, describe=lambda: counts[-5:])
        assert counts[-1] == 3
        assert 1 in counts and 2 in counts, f"one at a time, a second apart: {sorted(set(counts))}"
    finally:
        stop_processes([proc])
    assert set(SqliteStorage(tmp_path / "master" / "registry.sqlite").load_unreachable()) == {"old-S0", "old-S1",
                                                                                              "old-S2"}
