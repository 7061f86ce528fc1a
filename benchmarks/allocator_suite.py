"""Allocator benchmarks A3-A7 of spec/benchmarks.md, side by side in one run (pure allocator,
virtual time, in-process; A6 drives the real MasterActor on an asyncio loop).

    A3  one allocation cycle, every framework wanting everything, one role, no filters
        (agents cpus:24;mem:4096;disk:4096;ports:[31000-32000]); plus how it grows with agents
        at a fixed 100 frameworks and with frameworks at a fixed 1,000 agents
    A4  decline storm (DeclineOffers): every offer declined with refuse = 365 days, 2F rounds
        (--storm-rounds caps them); per-round cycle time against the unfiltered A3 cycle, and
        how it grows with the filters already made
    A5  99 % of frameworks suppressed: cycle time against A3 and against a cluster of only the
        unsuppressed 1 % (the same offers: what the suppressed frameworks themselves cost)
    A6  F revives enqueued at once on a live master: allocation runs and wall time
    A7  large and small quota (LargeAndSmallQuota): 30/300/3,000 agents of cpus:2;mem:2048;disk:2048,
        as many roles with one framework each, every role with a guarantee of half an agent
        (small) or two agents (large): cycle time with quota against the same cluster without

    python benchmarks/allocator_suite.py [--only A3,A4] [--runs 5] [--storm-rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from meseta.alloc.allocator import Allocator
from meseta.alloc.quota import Quota
from meseta.core.resources import Resources
from meseta.master.actor import MasterActor
from meseta.master.core import MasterConfig
from meseta.master.effects import Persist
from meseta.master.machine import MasterMachine
from meseta.master.registry.storage import MemoryStorage
from meseta.master.validation.agents import parse_stream_call
from meseta.master.validation.scheduler import parse_call
from meseta.protocol.scheduler_calls import decode_call

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
    print("A4 decline storm: each round, allocate() then decline every offer for a year, 2F rounds "
          "(must: every round <= 2x A3; aim <= 1x)")
    for agents, frameworks in GRID[1:]:
        allocator = cluster(agents, frameworks)
        rounds = 2 * frameworks if max_rounds <= 0 else min(2 * frameworks, max_rounds)
        times, filtered, marks = [], 0, []
        for round_index in range(rounds):
            now = float(round_index)
            start = time.perf_counter()
            decisions = allocator.allocate(now, random.Random(round_index))
            times.append(time.perf_counter() - start)
            for d in decisions:
                allocator.recover(d.framework_id, d.role, d.agent_id, d.resources, YEAR, now)
            if round_index % max(1, frameworks // 5) == 0 or not decisions:
                marks.append(f"{filtered}: {times[-1]:.3f} s")
            filtered += len(decisions)
            if not decisions:
                break  # every agent is filtered for every framework: the later rounds are all alike
        a3 = baseline.get((agents, frameworks)) or statistics.median(a3_cycle(agents, frameworks, 1))
        worst = max(times)
        print(f"  {agents} agents / {frameworks} frameworks: {len(times)} rounds, {filtered} filters; "
              f"round {stats(times)}; A3 {a3:.3f} s; worst / A3 = {worst / a3:.2f}, p50 / A3 = "
              f"{statistics.median(times) / a3:.2f}")
        print(f"    round time by filters already made: {'; '.join(marks)}")


def _suppressed_cluster(agents: int, frameworks: int) -> Allocator:
    allocator = cluster(agents, frameworks)
    for index in range(frameworks):
        if index % 100:
            allocator.suppress(f"framework-{index:05d}")
    return allocator


def run_a5(baseline: dict[tuple[int, int], float], runs: int) -> None:
    print("A5 99 % of frameworks suppressed (spec: must <= 20 % of A3, aim <= 5 %); beside it the same "
          "cluster holding only the unsuppressed 1 %, which makes the same offers")
    for agents, frameworks in GRID:
        times, alone = [], []
        for run in range(runs):
            allocator = _suppressed_cluster(agents, frameworks)
            times.append(timed(lambda a=allocator, r=run: a.allocate(0.0, random.Random(r))))  # type: ignore[misc]
            few = cluster(agents, frameworks // 100)
            alone.append(timed(lambda a=few, r=run: a.allocate(0.0, random.Random(r))))  # type: ignore[misc]
        a3 = baseline.get((agents, frameworks)) or statistics.median(a3_cycle(agents, frameworks, 1))
        p50 = statistics.median(times)
        print(f"  {agents} agents / {frameworks} frameworks: {stats(times)}; {100 * p50 / a3:.1f} % of A3; "
              f"only the 1 %: {statistics.median(alone):.3f} s (suppressed ones add "
              f"{100 * (p50 / statistics.median(alone) - 1):+.1f} %)")


async def _revive_storm(frameworks: int, agents: int) -> tuple[int, float]:
    machine = MasterMachine({"id": "bench", "hostname": "localhost", "port": 5050},
                            MasterConfig(allocation_interval=1.0))
    actor = MasterActor(machine, MemoryStorage())
    for index in range(agents):
        info = {"hostname": f"h{index}", "port": 5051, "resources": AGENT.to_json()}
        _, effects = machine.handle_register_agent(parse_stream_call({"type": "REGISTER", "agent_info": info}),
                                                   f"a{index}", 0.0)
        for effect in effects:
            if isinstance(effect, Persist):
                machine.handle_persisted(effect.operation, 0.0)
    ids = []
    for index in range(frameworks):
        subscribe = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": f"f{index}"}}}
        framework_id, _ = machine.handle_subscribe(_record(subscribe), f"s{index}", 0.0)
        ids.append(framework_id)
        machine.handle_call(framework_id, _record({"type": "SUPPRESS", "framework_id": {"value": framework_id}}), 0.0)
    machine.handle_allocate(0.0)  # the set-up's own pending run (its timer was never started)
    metrics = machine.core.metrics
    before = metrics.get("allocator_runs", 0)
    start = time.perf_counter()
    for framework_id in ids:  # all enqueued in one loop turn, as a burst of HTTP calls would be
        revive = _record({"type": "REVIVE", "framework_id": {"value": framework_id}})
        actor.run(machine.handle_call, framework_id, revive)
    while metrics.get("allocator_runs", 0) == before:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.2)  # anything else queued would run now
    runs = metrics.get("allocator_runs", 0) - before
    await actor.stop()
    return runs, elapsed


def _record(body: dict[str, Any]) -> Any:
    """A scheduler call as the master's edge makes it from the wire."""
    return parse_call(decode_call(json.dumps(body).encode()))


def run_a6() -> None:
    print("A6 event batching: F revives at once (must <= 2 runs for F = 1,000, aim 1)")
    for frameworks in (100, 1000):
        runs, elapsed = asyncio.run(_revive_storm(frameworks, 1000))
        print(f"  {frameworks} revives, 1,000 agents: {runs} allocation run(s), first offers after {elapsed:.3f} s")


QUOTA_AGENT = Resources.parse("cpus:2;mem:2048;disk:2048")
SMALL_QUOTA = Resources.parse("cpus:1;mem:1024;disk:1024").scalar_totals()  # half an agent
LARGE_QUOTA = Resources.parse("cpus:4;mem:4096;disk:4096").scalar_totals()  # two agents
QUOTA_GRID = ((25, 5), (250, 50), (2500, 500))  # (small, large) quota roles, as Mesos's grid


def _quota_cluster(small: int, large: int, with_quota: bool) -> Allocator:
    """LargeAndSmallQuota: one framework per role, small/5 + large*5 agents of cpus:2;mem:2048."""
    allocator = Allocator()
    for index in range(small // 5 + large * 5):
        allocator.add_agent(f"agent-{index:05d}", QUOTA_AGENT)
    roles = [(f"small-{i:04d}", SMALL_QUOTA) for i in range(small)]
    roles += [(f"large-{i:04d}", LARGE_QUOTA) for i in range(large)]
    for role, guarantee in roles:
        allocator.add_framework(f"framework-{role}", [role])
        if with_quota:
            allocator.set_quota(role, Quota(dict(guarantee), {}))
    return allocator


def _whole_agent_quota_cluster(roles: int, with_quota: bool) -> Allocator:
    """NonQuotaVsQuota: 2 agents and 2 frameworks per role, quota of exactly 2 agents, so that the
    cycle makes the same allocations with and without quota (no agent is chopped)."""
    allocator = Allocator()
    for index in range(2 * roles):
        allocator.add_agent(f"agent-{index:05d}", QUOTA_AGENT)
    guarantee = {name: 2 * milli for name, milli in QUOTA_AGENT.scalar_totals().items()}
    for index in range(roles):
        role = f"role-{index:04d}"
        for framework in range(2):
            allocator.add_framework(f"framework-{index:04d}-{framework}", [role])
        if with_quota:
            allocator.set_quota(role, Quota(dict(guarantee), {}))
    return allocator


def _quota_ratio(make: Callable[[bool], Allocator], runs: int) -> tuple[float, float, int, int]:
    plain: list[float] = []
    quota: list[float] = []
    offers = [0, 0]
    for run in range(runs):
        for with_quota, times in ((False, plain), (True, quota)):
            allocator = make(with_quota)
            start = time.perf_counter()
            offers[with_quota] = len(allocator.allocate(0.0, random.Random(run)))
            times.append(time.perf_counter() - start)
    return statistics.median(plain), statistics.median(quota), offers[0], offers[1]


def run_a7(runs: int) -> None:
    print("A7 quota: one cycle with quota vs the same cluster without (must <= 2x, aim <= 1.3x)")
    print("  NonQuotaVsQuota (the same allocations either way):")
    for roles in (10, 100, 1000):
        plain, quota, n_plain, n_quota = _quota_ratio(partial(_whole_agent_quota_cluster, roles), runs)
        print(f"    {2 * roles} agents, {roles} roles, {2 * roles} frameworks: without quota {plain:.4f} s "
              f"({n_plain} offers), with quota {quota:.4f} s ({n_quota} offers), ratio {quota / plain:.2f}")
    print("  LargeAndSmallQuota (quota chops agents, so it makes more offers than the plain cycle):")
    for small, large in QUOTA_GRID:
        plain, quota, n_plain, n_quota = _quota_ratio(partial(_quota_cluster, small, large), runs)
        print(f"    {small // 5 + large * 5} agents, {small + large} roles: without quota {plain:.4f} s "
              f"({n_plain} offers), with quota {quota:.4f} s ({n_quota} offers), ratio {quota / plain:.2f}, "
              f"per offer {(quota / n_quota) / (plain / n_plain):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="A3,A4,A5,A6,A7")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--storm-rounds", type=int, default=0, help="cap on A4 rounds; 0: 2F, as Mesos")
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
