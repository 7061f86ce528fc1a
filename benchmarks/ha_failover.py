"""M3: end-to-end recovery after kill -9 of the leading master, with real processes.

A 3-node ZooKeeper ensemble, 3 `meseta master --zk` processes, 3 `meseta agent` processes with
checkpointed sleeping tasks, and an unmodified pymesos framework, all following the leader through
ZooKeeper. Each round kills the leader with SIGKILL and measures, from the kill:

    elected     ZooKeeper names another master (its ephemeral znode outlives us by the session timeout)
    agents      the new leader has every agent re-registered and every task back as RUNNING
    framework   pymesos has re-subscribed (reregistered() called) and the framework is active
    recovered   the latest of the three: the cluster is whole again

The killed master is started again as a stand-by before the next round.

    python benchmarks/ha_failover.py [--rounds 20] [--session-timeout 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from meseta.testing.ha_cluster import HaCluster, active_agents, running_tasks
from meseta.testing.pymesos_recorder import Recorder, driver_for, task
from meseta.testing.zookeeper import Ensemble


def launch(recorder: Recorder, driver: Any, agents: int, per_agent: int) -> set[str]:
    launched: set[str] = set()
    seen: set[str] = set()
    while len(seen) < agents:
        for offer in recorder.take_offers(60):
            if offer["agent_id"]["value"] in seen:
                driver.declineOffer(offer["id"])
                continue
            seen.add(offer["agent_id"]["value"])
            ids = [f"t-{len(seen)}-{n}" for n in range(per_agent)]
            driver.launchTasks(offer["id"], [task(i, offer, command={"value": "sleep 3600"}) for i in ids])
            launched.update(ids)
    for task_id in launched:
        recorder.wait(lambda t=task_id: "TASK_RUNNING" in recorder.states(t), 60, f"{task_id} running")
    return launched


def one_round(cluster: HaCluster, recorder: Recorder, framework_id: str, launched: set[str]) -> dict[str, float]:
    old = cluster.leader()
    assert old is not None
    reregistrations = len(recorder.reregistrations)
    start = time.monotonic()
    cluster.kill_master(old)
    marks: dict[str, float] = {}
    while len(marks) < 3:
        if time.monotonic() - start > 120:
            raise RuntimeError(f"no recovery in 120 s: {marks}")
        leader = cluster.leader()
        if "elected" not in marks and leader not in (None, old):
            marks["elected"] = time.monotonic() - start
        state = cluster.state() if leader not in (None, old) else None
        if state is not None:
            if "agents" not in marks and active_agents(state) == len(cluster.agents) \
                    and running_tasks(state) == launched:
                marks["agents"] = time.monotonic() - start
            active = any(f["id"] == framework_id and f["active"] for f in state.get("frameworks", []))
            with recorder.lock:
                back = recorder.reregistrations[reregistrations:]
            if "framework" not in marks and back and active:
                marks["framework"] = time.monotonic() - start
        time.sleep(0.02)
    marks["recovered"] = max(marks.values())
    cluster.start_master(old)
    time.sleep(1.0)  # let the restarted master join as a stand-by
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--session-timeout", type=float, default=2.0)
    parser.add_argument("--tasks-per-agent", type=int, default=3)
    args = parser.parse_args()
    print(f"# M3 failover, {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"{time.strftime('%Y-%m-%d')}; ZooKeeper session timeout {args.session_timeout:g} s, "
          f"3 masters, 3 agents, {3 * args.tasks_per_agent} tasks, pymesos over zk://")
    with tempfile.TemporaryDirectory(prefix="m3-") as tmp, Ensemble(Path(tmp) / "zk", size=3) as zk, \
            HaCluster(Path(tmp), zk.hosts, session_timeout=args.session_timeout) as cluster:
        cluster.wait(lambda s: active_agents(s) == 3, 60, "3 agents")
        recorder = Recorder()
        with driver_for(cluster.zk_url, recorder, checkpoint=True, failover_timeout=3600.0) as driver:
            launched = launch(recorder, driver, 3, args.tasks_per_agent)
            assert recorder.framework_id is not None
            rounds = []
            for n in range(args.rounds):
                marks = one_round(cluster, recorder, recorder.framework_id, launched)
                rounds.append(marks)
                print(f"round {n + 1:2d}: " + "  ".join(f"{k} {v:5.2f} s" for k, v in marks.items()), flush=True)
            lost = [t for t in launched if set(recorder.states(t)) - {"TASK_STARTING", "TASK_RUNNING"}]
    print(f"tasks lost or relaunched: {len(lost)}")
    for phase in ("elected", "agents", "framework", "recovered"):
        values = sorted(r[phase] for r in rounds)
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        print(f"{phase:10s} p50 {statistics.median(values):5.2f} s   p95 {p95:5.2f} s   max {values[-1]:5.2f} s")


if __name__ == "__main__":
    main()
