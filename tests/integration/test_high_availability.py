"""Masters elected through a real 3-node ZooKeeper ensemble, with real agents and pymesos.

Every master, agent and the framework find the leader in ZooKeeper (``zk://``); the tests kill,
stop and partition the pieces and check that no task is lost or launched twice.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.testing.ha_cluster import HaCluster, active_agents, running_tasks
from meseta.testing.pymesos_recorder import Recorder, driver_for, task
from meseta.testing.waiting import wait_until
from meseta.testing.zookeeper import Ensemble

pytestmark = pytest.mark.timeout(300)
TASKS_PER_AGENT = 2


@pytest.fixture
def zk(tmp_path: Path) -> Iterator[Ensemble]:
    with Ensemble(tmp_path / "zk", size=3) as ensemble:
        yield ensemble


def _framework_active(state: dict[str, Any], framework_id: str) -> bool:
    return any(f["id"] == framework_id and f["active"] for f in state.get("frameworks", []))


def _launch_everywhere(recorder: Recorder, driver: Any, agents: int, launches: Path) -> set[str]:
    """TASKS_PER_AGENT sleeping tasks on each agent; each appends its id to ``launches`` when it starts."""
    launched: set[str] = set()
    seen: set[str] = set()

    def launched_on_every_agent() -> bool:
        for offer in recorder.take_offers():
            agent = offer["agent_id"]["value"]
            if agent in seen:
                driver.declineOffer(offer["id"])
                continue
            seen.add(agent)
            tasks = []
            for n in range(TASKS_PER_AGENT):
                task_id = f"t-{len(seen)}-{n}"
                tasks.append(task(task_id, offer, command={
                    "shell": True, "value": f"echo {task_id} >> {launches}; exec sleep 600"}))
                launched.add(task_id)
            driver.launchTasks(offer["id"], tasks)
        return len(seen) == agents
    wait_until(launched_on_every_agent, 30, f"offers from all {agents} agents",
               describe=lambda: f"offers came from {len(seen)} of {agents} agents")
    for task_id in launched:
        recorder.wait(lambda t=task_id: "TASK_RUNNING" in recorder.states(t), 30, f"{task_id} running")
    return launched


def _no_task_lost_or_twice(recorder: Recorder, launched: set[str], launches: Path) -> None:
    lines = launches.read_text().split()
    assert sorted(lines) == sorted(launched), "every task started exactly once"
    for task_id in launched:
        assert set(recorder.states(task_id)) <= {"TASK_STARTING", "TASK_RUNNING"}, recorder.states(task_id)


@contextmanager
def _framework_running(tmp_path: Path, zk: Ensemble) -> Iterator[tuple[HaCluster, Recorder, set[str], str]]:
    """3 masters and 3 agents following ZooKeeper, a checkpointing pymesos framework over zk://
    with TASKS_PER_AGENT tasks on each agent; yields (cluster, recorder, task ids, framework id)."""
    with HaCluster(tmp_path, zk.hosts) as cluster:
        cluster.wait(lambda s: active_agents(s) == 3, 60, "3 agents")
        recorder = Recorder()
        with driver_for(cluster.zk_url, recorder, checkpoint=True, failover_timeout=3600.0) as driver:
            launched = _launch_everywhere(recorder, driver, 3, tmp_path / "launches")
            assert recorder.framework_id is not None
            yield cluster, recorder, launched, recorder.framework_id


def test_leader_killed_five_times_loses_no_task(tmp_path: Path, zk: Ensemble) -> None:
    with _framework_running(tmp_path, zk) as (cluster, recorder, launched, framework_id):
        launches = tmp_path / "launches"
        for round_ in range(5):
            old = cluster.leader()
            assert old is not None
            cluster.kill_master(old)
            state = cluster.wait(
                lambda s, old=old: cluster.leader() not in (None, old) and active_agents(s) == 3
                and _framework_active(s, framework_id) and running_tasks(s) == launched,
                60, f"round {round_}: a new leader with every agent, the framework and the tasks")
            assert state["leader"] != f"master@127.0.0.1:{cluster.master_ports[old]}"
            cluster.start_master(old)  # back as a standby, so that three always contend
        _no_task_lost_or_twice(recorder, launched, launches)
        assert not recorder.errors


def test_stopped_leader_writes_nothing_and_steps_down(tmp_path: Path, zk: Ensemble) -> None:
    with HaCluster(tmp_path, zk.hosts) as cluster:
        cluster.wait(lambda s: active_agents(s) == 3, 60, "3 agents")
        old = cluster.leader()
        assert old is not None
        cluster.kill_master(old, signal.SIGSTOP)
        cluster.wait(lambda s: cluster.leader() not in (None, old) and active_agents(s) == 3, 60,
                     "a new leader with every agent")
        before = _registry_snapshot(cluster)
        stopped = cluster.masters[old]
        assert stopped is not None
        cluster.kill_master(old, signal.SIGCONT)
        assert stopped.wait(30) != 0, "the deposed master exits"
        assert _registry_snapshot(cluster) == before, "the deposed master wrote nothing"
        log = (tmp_path / f"master{old}.log").read_text()
        assert "master stops" in log
        state = cluster.state()
        assert state is not None and active_agents(state) == 3


def _registry_snapshot(cluster: HaCluster) -> dict[str, tuple[bytes, int]]:
    """Every registry znode's data and version."""
    out: dict[str, tuple[bytes, int]] = {}
    pending = ["/meseta/log_replicas"]
    while pending:
        path = pending.pop()
        data, stat = cluster.zk.get(path)
        out[path] = (data, stat.version)
        pending += [f"{path}/{child}" for child in cluster.zk.get_children(path)]
    return out


def test_zookeeper_leader_killed_keeps_the_cluster(tmp_path: Path, zk: Ensemble) -> None:
    with _framework_running(tmp_path, zk) as (cluster, recorder, launched, framework_id):
        launches = tmp_path / "launches"
        zk_leader = zk.leader_index()
        assert zk_leader is not None
        zk.kill(zk_leader)
        time.sleep(3 * cluster.session_timeout)  # what the masters and clients ride out
        cluster.wait(lambda s: cluster.leader() is not None and active_agents(s) == 3
                     and _framework_active(s, framework_id) and running_tasks(s) == launched,
                     60, "a leader with every agent, the framework and the tasks")
        zk.start_node(zk_leader)
        _no_task_lost_or_twice(recorder, launched, launches)


def test_standby_redirects_to_the_leader(tmp_path: Path, zk: Ensemble) -> None:
    with HaCluster(tmp_path, zk.hosts, agents=0) as cluster:
        cluster.wait(lambda s: True, 60, "a leader")
        leader = cluster.leader()
        assert leader is not None
        standby = next(i for i in range(3) if i != leader)
        base = f"http://127.0.0.1:{cluster.master_ports[standby]}"
        wait_until(lambda: httpx.get(f"{base}/version", timeout=2), 30,
                   f"an answer at {base}/version")  # a leader may be elected before every stand-by listens
        answer = httpx.post(f"{base}/api/v1/scheduler?x=1", json={"type": "SUBSCRIBE"})
        assert answer.status_code == 307
        assert answer.headers["location"] == f"//127.0.0.1:{cluster.master_ports[leader]}/api/v1/scheduler?x=1"
        redirect = httpx.get(f"{base}/master/redirect")
        assert redirect.headers["location"] == f"//127.0.0.1:{cluster.master_ports[leader]}"
        assert httpx.get(f"{base}/metrics/snapshot").json()["master/elected"] == 0
        assert httpx.get(f"{base}/version").json()["version"]
        leading = httpx.get(f"http://{cluster.leader_address()}/metrics/snapshot").json()
        assert leading["master/elected"] == 1


def test_agent_missing_after_failover_is_unreachable_then_back(tmp_path: Path, zk: Ensemble) -> None:
    with HaCluster(tmp_path, zk.hosts, master_flags=["--agent-reregister-timeout", "10"]) as cluster:
        cluster.wait(lambda s: active_agents(s) == 3, 60, "3 agents")
        recorder = Recorder()
        with driver_for(cluster.zk_url, recorder, checkpoint=True, failover_timeout=3600.0,
                        capabilities=[{"type": "PARTITION_AWARE"}]) as driver:
            offer = recorder.take_offers()[0]
            driver.launchTasks(offer["id"], [task("held", offer, command={"value": "sleep 600"})])
            recorder.wait(lambda: "TASK_RUNNING" in recorder.states("held"), 30, "held running")
            agent_id = offer["agent_id"]["value"]
            pid = _agent_pid(cluster, agent_id)
            frozen = next(i for i, port in enumerate(cluster.agent_ports) if pid.endswith(f":{port}"))
            agent = cluster.agents[frozen]
            assert agent is not None
            os.killpg(agent.pid, signal.SIGSTOP)
            try:
                old = cluster.leader()
                assert old is not None
                cluster.kill_master(old)
                cluster.wait(lambda s: cluster.leader() not in (None, old) and active_agents(s) == 2
                             and len(s.get("recovered_slaves", [])) == 1, 30, "a leader waiting for one agent")
                recorder.wait(lambda: len(recorder.reregistrations) >= 1, 8, "the framework re-subscribed")
                before = len(recorder.states("held"))
                driver.reconcileTasks([{"task_id": {"value": "held"}}])
                time.sleep(1.0)
                assert len(recorder.states("held")) == before, "no answer while the agent may still come back"
                cluster.wait(lambda s: s.get("unreachable_slaves") == 1, 30, "the agent marked unreachable")
                driver.reconcileTasks([{"task_id": {"value": "held"}}])
                # pymesos sends no agent_id, and the new master never heard of the task: UNKNOWN
                recorder.wait(lambda: recorder.states("held")[-1] == "TASK_UNKNOWN", 10, "TASK_UNKNOWN")
            finally:
                os.killpg(agent.pid, signal.SIGCONT)
            cluster.wait(lambda s: active_agents(s) == 3 and "held" in running_tasks(s), 60, "the agent back")
            driver.reconcileTasks([{"task_id": {"value": "held"}}])
            recorder.wait(lambda: recorder.states("held")[-1] == "TASK_RUNNING", 10, "RUNNING again")


def _agent_pid(cluster: HaCluster, agent_id: str) -> str:
    state = cluster.state() or {}
    return next(a["pid"] for a in state.get("slaves", []) if a["id"] == agent_id)


