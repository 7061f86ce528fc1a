"""M3: end-to-end recovery after kill -9 of the leading master, with real processes.

A 3-node ZooKeeper ensemble, 3 `meseta master --zk` processes, 50 `meseta agent` processes and 5
unmodified pymesos frameworks with 500 checkpointed sleeping tasks, all following the leader through
ZooKeeper (spec M3). Each round kills the leader with SIGKILL and measures, from the kill:

    elected     ZooKeeper names another master (its ephemeral znode outlives us by the session timeout)
    agents      the new leader has every agent re-registered and every task back as RUNNING
    framework   every pymesos framework has re-subscribed (reregistered() called) and is active
    recovered   the latest of the three: the cluster is whole again

The killed master is started again as a stand-by before the next round.

    python benchmarks/ha_failover.py [--rounds 20] [--session-timeout 2] [--agents 50] [--frameworks 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from meseta.testing.ha_cluster import HaCluster, active_agents, running_tasks
from meseta.testing.pymesos_recorder import Recorder, driver_for, scalar, task
from meseta.testing.waiting import wait_until
from meseta.testing.zookeeper import Ensemble


def launch(recorder: Recorder, driver: Any, prefix: str, count: int) -> set[str]:
    """``count`` sleeping tasks, as many per offer as fit (0.1 cpus, 32 MB each)."""
    launched: set[str] = set()
    while len(launched) < count:
        for offer in recorder.take_offers(60):
            cpus = scalar(offer, "cpus")
            fit = min(count - len(launched), int(cpus / 0.1 + 1e-9), 10)
            ids = [f"{prefix}-{len(launched) + n}" for n in range(fit)]
            if not ids:
                driver.declineOffer(offer["id"])
                continue
            driver.launchTasks(offer["id"], [task(i, offer, command={"value": "sleep 3600"}) for i in ids])
            launched.update(ids)
    recorder.wait(lambda: all("TASK_RUNNING" in recorder.states(t) for t in launched), 120, f"{prefix} running")
    return launched


def one_round(cluster: HaCluster, frameworks: list[tuple[Recorder, str]], launched: set[str]) -> dict[str, float]:
    old = cluster.leader()
    assert old is not None
    seen = [len(recorder.reregistrations) for recorder, _ in frameworks]
    start = time.monotonic()
    cluster.kill_master(old)
    marks: dict[str, float] = {}

    def recovered() -> bool:
        """Marks when a new leader is elected, has every agent and task, and every framework back."""
        leader = cluster.leader()
        if "elected" not in marks and leader not in (None, old):
            marks["elected"] = time.monotonic() - start
        state = cluster.state() if leader not in (None, old) else None
        if state is not None:
            if "agents" not in marks and active_agents(state) == len(cluster.agents) \
                    and running_tasks(state) == launched:
                marks["agents"] = time.monotonic() - start
            active = {f["id"] for f in state.get("frameworks", []) if f["active"]}
            back = all(len(r.reregistrations) > n for (r, _), n in zip(frameworks, seen, strict=True))
            if "framework" not in marks and back and all(fid in active for _, fid in frameworks):
                marks["framework"] = time.monotonic() - start
        return len(marks) == 3
    wait_until(recovered, 120, "a recovery", interval=0.02, describe=lambda: marks)
    marks["recovered"] = max(marks.values())
    cluster.start_master(old)
    time.sleep(1.0)  # let the restarted master join as a stand-by
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--session-timeout", type=float, default=2.0)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--frameworks", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=500)
    args = parser.parse_args()
    print(f"# M3 failover, {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"{time.strftime('%Y-%m-%d')}; ZooKeeper session timeout {args.session_timeout:g} s, 3 masters, "
          f"{args.agents} agents, {args.frameworks} pymesos frameworks over zk://, {args.tasks} tasks")
    with tempfile.TemporaryDirectory(prefix="m3-") as tmp, Ensemble(Path(tmp) / "zk", size=3) as zk, \
            HaCluster(Path(tmp), zk.hosts, agents=args.agents, session_timeout=args.session_timeout) as cluster, \
            contextlib.ExitStack() as drivers:
        cluster.wait(lambda s: active_agents(s) == args.agents, 180, f"{args.agents} agents")
        frameworks: list[tuple[Recorder, str]] = []
        launched: set[str] = set()
        for k in range(args.frameworks):
            recorder = Recorder()
            driver = drivers.enter_context(driver_for(cluster.zk_url, recorder, name=f"m3-{k}", checkpoint=True,
                                                      failover_timeout=3600.0))
            launched |= launch(recorder, driver, f"f{k}", args.tasks // args.frameworks)
            assert recorder.framework_id is not None
            frameworks.append((recorder, recorder.framework_id))
        rounds = []
        for n in range(args.rounds):
            marks = one_round(cluster, frameworks, launched)
            rounds.append(marks)
            print(f"round {n + 1:2d}: " + "  ".join(f"{k} {v:5.2f} s" for k, v in marks.items()), flush=True)
        lost = [t for r, _ in frameworks for t in launched
                if set(r.states(t)) - {"TASK_STARTING", "TASK_RUNNING"}]
    print(f"tasks lost or relaunched: {len(lost)}")
    for phase in ("elected", "agents", "framework", "recovered"):
        values = sorted(r[phase] for r in rounds)
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        print(f"{phase:10s} p50 {statistics.median(values):5.2f} s   p95 {p95:5.2f} s   max {values[-1]:5.2f} s")

if __name__ == "__main__":
    main()
