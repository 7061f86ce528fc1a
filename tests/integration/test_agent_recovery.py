"""Agent recovery: `kill -9` the agent while 20 tasks of a checkpointing framework run, restart
it: all 20 still run (none launched twice), the framework still sees them RUNNING, a task that
ended while the agent was down is reported, and the recovered tasks can still be killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymesos import encode_data

from meseta.runtime.serve import free_port
from meseta.testing.clusters import FAST_ALLOCATION, start_daemon, wait_for_agents
from meseta.testing.processes import stop_processes
from meseta.testing.pymesos_recorder import Recorder, driver_for, task
from meseta.testing.waiting import wait_until

pytestmark = pytest.mark.integration
EXECUTOR = Path(__file__).with_name("pymesos_executor.py")


def _count(marker: str) -> int:
    """How many task processes run (each is `sh -c 'sleep 300' <marker>`; wrappers do not match)."""
    found = subprocess.run(["pgrep", "-fc", f"^sh -c sleep 300 {marker}$"], capture_output=True, text=True)
    return int(found.stdout.strip() or 0)


def _kill_groups(pattern: str) -> None:
    """Test clean-up after a failure: every process group holding a process that matches."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    for pid in found:
        try:
            os.killpg(os.getpgid(int(pid)), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue


def _agent_tasks(agent_port: int, timeout: float = 5.0) -> dict[str, str]:
    state = httpx.get(f"http://127.0.0.1:{agent_port}/state", timeout=timeout).json()
    return {t["id"]: t["state"] for f in state["frameworks"] for e in f["executors"] for t in e["tasks"]}


class Restartable:
    """A master and one agent process that the test kills with SIGKILL and starts again."""

    def __init__(self, tmp_path: Path, *agent_flags: str, leftovers: str) -> None:
        self.leftovers = leftovers  # what the tasks' command lines hold: killed, groups and all, at the end
        port, self.agent_port = free_port(), free_port()
        self.master = f"127.0.0.1:{port}"
        self.log = tmp_path / "agent.log"
        self.agent_args = ["agent", "--master", self.master, "--port", str(self.agent_port), "--work-dir",
                           str(tmp_path / "agent"), "--no-switch-user", *agent_flags]
        self.procs = [start_daemon(["master", "--port", str(port), "--work-dir", str(tmp_path / "master"),
                                    *FAST_ALLOCATION], tmp_path / "master.log"),
                      start_daemon(self.agent_args, self.log)]

    def __enter__(self) -> Restartable:
        try:
            wait_for_agents(self.master, 1)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        stop_processes(self.procs)
        _kill_groups(self.leftovers)  # after a failure, tasks the agents did not stop

    def kill_agent(self) -> None:
        os.kill(self.procs[-1].pid, signal.SIGKILL)  # the agent only: tasks live in their own sessions
        self.procs[-1].wait()

    def start_agent(self, *extra: str) -> None:
        self.procs.append(start_daemon([*self.agent_args, *extra], self.log))


def test_tasks_survive_a_killed_agent_and_are_recovered(tmp_path: Path) -> None:
    marker = f"recovery-{uuid.uuid4().hex[:8]}"
    recorder = Recorder()
    with Restartable(tmp_path, "--resources", "cpus:4;mem:4096;disk:256", leftovers=marker) as cluster, \
            driver_for(cluster.master, recorder, checkpoint=True, failover_timeout=600) as driver:
        agent_port = cluster.agent_port
        offer = recorder.take_offers()[0]
        long = [task(f"long-{i}", offer, command={"value": f"exec sh -c 'sleep 300' {marker}"}) for i in range(20)]
        long[1]["health_check"] = {"type": "COMMAND", "command": {"value": "test ! -f unhealthy"},
                                   "delay_seconds": 0, "interval_seconds": 0.3, "consecutive_failures": 2}
        short = task("short", offer, command={"value": f"sleep 3; echo {marker} > done"})
        driver.launchTasks(offer["id"], [*long, short])
        recorder.wait(lambda: all("TASK_RUNNING" in recorder.states(t["task_id"]["value"])
                                  for t in [*long, short]), 30, "21 tasks running")
        time.sleep(0.5)  # the RUNNING acknowledgements reach the agent
        assert _count(marker) == 20

        cluster.kill_agent()
        time.sleep(4)  # meanwhile "short" finishes, with nobody to reap it but its wrapper
        assert _count(marker) == 20
        cluster.start_agent()

        finished = recorder.final("short", 30)
        assert finished["state"] == "TASK_FINISHED", finished
        running: dict[str, str] = {}

        def twenty_running() -> bool:
            running.clear()
            running.update(_agent_tasks(agent_port))
            return sum(s == "TASK_RUNNING" for s in running.values()) == 20
        wait_until(twenty_running, 20, "20 tasks running on the recovered agent", describe=lambda: running)
        assert _count(marker) == 20  # none launched twice

        before = len(recorder.updates)
        driver.reconcileTasks([])  # implicit: the master answers with what it knows
        recorder.wait(lambda: len(recorder.updates) >= before + 20, 20, "reconciliation")
        with recorder.lock:
            reconciled: dict[str, Any] = {u["task_id"]["value"]: u["state"] for u in recorder.updates[before:]}
        assert all(reconciled.get(f"long-{i}") == "TASK_RUNNING" for i in range(20)), reconciled

        driver.killTask({"value": "long-0"})  # an adopted process can still be killed
        assert recorder.final("long-0")["state"] == "TASK_KILLED"
        (sandbox,) = (tmp_path / "agent").glob("slaves/*/frameworks/*/executors/long-1/runs/*-*")
        (sandbox / "unhealthy").touch()  # its health check was resumed by the new agent
        unhealthy = recorder.final("long-1")
        assert unhealthy["state"] == "TASK_KILLED" and unhealthy["healthy"] is False, unhealthy
        assert _count(marker) == 18


def test_a_custom_executor_subscribes_again_after_the_agent_restarts(tmp_path: Path) -> None:
    recorder = Recorder()
    with Restartable(tmp_path, "--resources", "cpus:2;mem:1024;disk:256",
                     "--executor-reregistration-timeout", "20", leftovers=str(EXECUTOR)) as cluster, \
            driver_for(cluster.master, recorder, checkpoint=True, failover_timeout=600) as driver:
        agent_port = cluster.agent_port
        offer = recorder.take_offers()[0]
        executor = {"executor_id": {"value": "echo-executor"}, "command": {"value": f"{sys.executable} {EXECUTOR}"},
                    "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                  {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]}
        driver.launchTasks(offer["id"], [task("served", offer, executor=executor)])
        recorder.wait(lambda: "TASK_RUNNING" in recorder.states("served"), 30, "the executor's task")
        time.sleep(0.5)
        executors = subprocess.run(["pgrep", "-f", str(EXECUTOR)], capture_output=True, text=True).stdout.split()

        cluster.kill_agent()
        time.sleep(1)
        cluster.start_agent()
        wait_until(lambda: "TASK_RUNNING" in _agent_tasks(agent_port, timeout=1).values(), 30,
                   "the recovered executor's task running")

        def echoed() -> bool:
            """framework messages are best effort: one sent before the executor has subscribed again
            (pymesos backs off 1 s, then 3 s) is dropped, so send until one comes back"""
            if b"echo:again" in recorder.messages:
                return True
            driver.sendFrameworkMessage({"value": "echo-executor"}, offer["agent_id"], encode_data(b"again"))
            return False
        wait_until(echoed, 30, "a message through the re-subscribed executor", interval=0.5)
        assert subprocess.run(["pgrep", "-f", str(EXECUTOR)], capture_output=True,
                              text=True).stdout.split() == executors  # the same process, not a new one
        driver.killTask({"value": "served"})
        assert recorder.final("served")["state"] == "TASK_KILLED"


def test_recover_cleanup_kills_what_the_previous_agent_left(tmp_path: Path) -> None:
    marker = f"cleanup-{uuid.uuid4().hex[:8]}"
    recorder = Recorder()
    with Restartable(tmp_path, "--resources", "cpus:2;mem:1024;disk:256", leftovers=marker) as cluster, \
            driver_for(cluster.master, recorder, checkpoint=True, failover_timeout=600) as driver:
        offer = recorder.take_offers()[0]
        tasks = [task(f"t{i}", offer, command={"value": f"exec sh -c 'sleep 300' {marker}"}) for i in range(3)]
        driver.launchTasks(offer["id"], tasks)
        recorder.wait(lambda: all("TASK_RUNNING" in recorder.states(f"t{i}") for i in range(3)), 30, "running")
        cluster.kill_agent()
        assert _count(marker) == 3
        cluster.start_agent("--recover", "cleanup")
        wait_until(lambda: _count(marker) == 0, 15, "the previous agent's tasks killed")
        wait_for_agents(cluster.master, 1)
        assert not any(s == "TASK_RUNNING" for s in _agent_tasks(cluster.agent_port).values())
