"""Allocator benchmarks A3-A7 of spec/benchmarks.md, side by side in one run (pure allocator,
virtual time, in-process; A6 drives the real MasterActor on an asyncio loop).

    A3  one allocation cycle, every framework wanting everything, one role, no filters
        (agents cpus:24;mem:4096;disk:4096;ports:[31000-32000]); plus how it grows with agents
        at a fixed 100 frameworks and with frameworks at a fixed 1,000 agents
    A4  decline storm (DeclineOffers): every offer declined with refuse = 365 days, 2F rounds
        (--storm-rounds caps them); per-round cycle time against the unfiltered A3 cycle
    A5  99 % of frameworks suppressed: cycle time against A3
    A6  F revives enqueued at once on a live master: allocation runs and wall time
    A7  large and small quota (LargeAndSmallQuota-like): 30/300/3,000 agents, one framework per
        role, a tenth of the roles with quota (half large: 3 agents' worth, half small: 1/3):
        cycle time with quota against the same cluster without it

    python benchmarks/allocator_suite.py [--only A3,A4] [--runs 5] [--storm-rounds 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import time
from collections.abc import Callable

from meseta.alloc.allocator import Allocator
from meseta.alloc.quota import Quota
from meseta.core.resources import Resources, to_milli
from meseta.master.actor import MasterActor
from meseta.master.machine import MasterMachine
from meseta.master.registry.storage import MemoryStorage
from meseta.master.state import Persist

AGENT = Resources.parse("cpus:24;mem:4096;disk:4096;ports:[31000-32000]")
GRID = ((1000, 100), (5000, 500), (10000, 1000))
YEAR = 365 * 24 * 3600.0


def cluster(agents: int, frameworks: int, roles: Callable[[int], str] = lambda i: "*") -> Allocator:
    allocator = Allocator()
    for index in range(agents):
        allocator.add_agent(f"agent-{index:05d}", AGENT)
    for index in range(frameworks):
        allocator.add_framework(f"framework-{index:05d}", [roles(index)])
    return allocator


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stats(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(times):.3f} s, p95 {p95:.3f} s, max {max(times):.3f} s"


def a3_cycle(agents: int, frameworks: int, runs: int) -> list[float]:
    times = []
    for run in range(runs):
        allocator = cluster(agents, frameworks)
        times.append(timed(lambda a=allocator, r=run: a.allocate(0.0, random.Random(r))))  # type: ignore[misc]
    return times


def run_a3(runs: int) -> dict[tuple[int, int], float]:
    print("A3 allocation cycle (must 0.5 / 3 / 8 s; aim 0.1 / 0.5 / 1.5 s; Mesos 1.8 ~1.1 s at 10k/1k)")
    medians = {}
    for agents, frameworks in GRID:
        times = a3_cycle(agents, frameworks, runs)
        medians[(agents, frameworks)] = statistics.median(times)
        print(f"  {agents:>6} agents / {frameworks:>5} frameworks: {stats(times)}")
    print("A3 growth with agents (100 frameworks) and with frameworks (1,000 agents), median of runs")
    for agents in (1000, 2000, 5000, 10000, 20000):
        print(f"  agents {agents:>6}: {statistics.median(a3_cycle(agents, 100, runs)):.3f} s")
    for frameworks in (10, 100, 1000, 2000, 5000):
        print(f"  frameworks {frameworks:>5}: {statistics.median(a3_cycle(1000, frameworks, runs)):.3f} s")
    return medians


def run_a4(baseline: dict[tuple[int, int], float], max_rounds: int) -> None:
    print("A4 decline storm: each round, allocate() then decline everything for a year")
    for agents, frameworks in GRID[1:]:
        allocator = cluster(agents, frameworks)
        rounds = min(2 * frameworks, max_rounds)
        times, filtered = [], 0
        for round_index in range(rounds):
            now = float(round_index)
            start = time.perf_counter()
            decisions = allocator.allocate(now, random.Random(round_index))
            times.append(time.perf_counter() - start)
            for d in decisions:
                allocator.recover(d.framework_id, d.role, d.agent_id, d.resources, YEAR, now)
            filtered += len(decisions)
            if not decisions:
                break
        a3 = baseline.get((agents, frameworks)) or statistics.median(a3_cycle(agents, frameworks, 1))
        worst = max(times)
        print(f"  {agents} agents / {frameworks} frameworks: {len(times)} rounds, {filtered} filters; "
              f"round {stats(times)}; worst / A3 = {worst / a3:.2f} (must <= 2, aim <= 1); "
              f"first / last round {times[0]:.3f} / {times[-1]:.3f} s")


def run_a5(baseline: dict[tuple[int, int], float], runs: int) -> None:
    print("A5 99 % of frameworks suppressed (must <= 20 % of A3, aim <= 5 %)")
    for agents, frameworks in GRID:
        times = []
        for run in range(runs):
            allocator = cluster(agents, frameworks)
            for index in range(frameworks):
                if index % 100:
                    allocator.suppress(f"framework-{index:05d}")
            times.append(timed(lambda a=allocator, r=run: a.allocate(0.0, random.Random(r))))  # type: ignore[misc]
        a3 = baseline.get((agents, frameworks)) or statistics.median(a3_cycle(agents, frameworks, 1))
        print(f"  {agents} agents / {frameworks} frameworks: {stats(times)}; "
              f"{100 * statistics.median(times) / a3:.1f} % of A3")


async def _revive_storm(frameworks: int, agents: int) -> tuple[int, float]:
    machine = MasterMachine({"id": "bench", "hostname": "localhost", "port": 5050}, allocation_interval=1.0)
    actor = MasterActor(machine, MemoryStorage())
    for index in range(agents):
        info = {"hostname": f"h{index}", "port": 5051, "resources": AGENT.to_json()}
        for effect in machine.handle_register_agent(info, f"a{index}", 0.0):
            if isinstance(effect, Persist):
                machine.handle_persisted(effect.operation, 0.0)
    ids = []
    for index in range(frameworks):
        effects = machine.handle_subscribe({"user": "u", "name": f"f{index}"}, None, f"s{index}", [], 0.0)
        ids.append(effects[0].event["subscribed"]["framework_id"]["value"])  # type: ignore[union-attr]
        machine.handle_suppress(ids[-1], [], 0.0)
    before = machine.metrics.get("allocator_runs", 0)
    start = time.perf_counter()
    for framework_id in ids:  # all enqueued in one loop turn, as a burst of HTTP calls would be
        actor.run(machine.handle_revive, framework_id, [])
    while machine.metrics.get("allocator_runs", 0) == before:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.2)  # anything else queued would run now
    runs = machine.metrics.get("allocator_runs", 0) - before
    await actor.stop()
    return runs, elapsed


def run_a6() -> None:
    print("A6 event batching: F revives at once (must <= 2 runs for F = 1,000, aim 1)")
    for frameworks in (100, 1000):
        runs, elapsed = asyncio.run(_revive_storm(frameworks, 1000))
        print(f"  {frameworks} revives, 1,000 agents: {runs} allocation run(s), first offers after {elapsed:.3f} s")


def _quota_cluster(agents: int, with_quota: bool) -> Allocator:
    roles = max(2, agents // 3)
    allocator = cluster(agents, roles, roles=lambda i: f"role-{i:05d}")
    per_agent = AGENT.scalar_totals()
    for index in range(0, roles, 10):  # a tenth of the roles carry quota
        size = 3.0 if (index // 10) % 2 == 0 else 1 / 3
        guarantee = {name: round(milli * size) for name, milli in per_agent.items() if name != "ports"}
        if with_quota:
            allocator.set_quota(f"role-{index:05d}", Quota(guarantee, {}))
    return allocator


def run_a7(runs: int) -> None:
    print("A7 large and small quota: one cycle with quota vs without (must <= 2x, aim <= 1.3x)")
    for agents in (30, 300, 3000):
        plain, quota = [], []
        for run in range(runs):
            a = _quota_cluster(agents, False)
            plain.append(timed(lambda a=a, r=run: a.allocate(0.0, random.Random(r))))  # type: ignore[misc]
            q = _quota_cluster(agents, True)
            quota.append(timed(lambda q=q, r=run: q.allocate(0.0, random.Random(r))))  # type: ignore[misc]
        ratio = statistics.median(quota) / statistics.median(plain)
        print(f"  {agents} agents, {max(2, agents // 3)} roles: without quota {statistics.median(plain):.4f} s, "
              f"with quota {statistics.median(quota):.4f} s, ratio {ratio:.2f}")
    _ = to_milli  # quantities above are in thousandths already


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="A3,A4,A5,A6,A7")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--storm-rounds", type=int, default=1000)
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    print(f"machine: {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}, "
          f"in-process, virtual time, {args.runs} runs per point")
    baseline = run_a3(args.runs) if "A3" in wanted else {}
    if "A4" in wanted:
        run_a4(baseline, args.storm_rounds)
    if "A5" in wanted:
        run_a5(baseline, args.runs)
    if "A6" in wanted:
        run_a6()
    if "A7" in wanted:
        run_a7(args.runs)


if __name__ == "__main__":
    main()
