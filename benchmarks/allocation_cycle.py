"""allocation_cycle (spec/benchmarks.md A3): wall time of one full allocation cycle.

Every framework wants everything, all in one role, no filters; agents are
`cpus:24;mem:4096;disk:4096;ports:[31000-32000]` (Mesos's grid). Pure allocator, no I/O.
Then, on the cluster that cycle filled, one agent gets 1 CPU back (a task ended): the run that
follows, over every agent and over that agent alone (the master's run after a change).

    python benchmarks/allocation_cycle.py [--grid 1000x100,5000x500,10000x1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time

from meseta.alloc.allocator import Allocator
from meseta.core.resources import Resources

AGENT = Resources.parse("cpus:24;mem:4096;disk:4096;ports:[31000-32000]")
TASK = Resources.parse("cpus:1")


def one_cycle(agents: int, frameworks: int, seed: int) -> tuple[float, int, float, float]:
    """(full cycle s, offers, run after one task ended over all agents s, over its agent s)."""
    allocator = Allocator()
    for index in range(agents):
        allocator.add_agent(f"agent-{index}", AGENT)
    for index in range(frameworks):
        allocator.add_framework(f"framework-{index:05d}", ["*"])
    start = time.perf_counter()
    decisions = allocator.allocate(0.0, random.Random(seed))
    full = time.perf_counter() - start
    after: list[float] = []
    for only in (None, {decisions[0].agent_id}):
        allocator.recover(decisions[0].framework_id, "*", decisions[0].agent_id, TASK)
        start = time.perf_counter()
        (offer,) = allocator.allocate(1.0, random.Random(seed), only)
        after.append(time.perf_counter() - start)
        assert offer.agent_id == decisions[0].agent_id
    return full, len(decisions), after[0], after[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="1000x100,5000x500,10000x1000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, in-process, pure allocator")
    for point in args.grid.split(","):
        agents, frameworks = (int(x) for x in point.split("x"))
        times, offers, everyone, changed = [], 0, [], []
        for run in range(args.runs):
            seconds, offers, all_agents, one_agent = one_cycle(agents, frameworks, run)
            times.append(seconds)
            everyone.append(all_agents)
            changed.append(one_agent)
        print(f"{agents:>6} agents / {frameworks:>5} frameworks: {offers} offers; cycle "
              f"median {statistics.median(times):.3f} s, min {min(times):.3f} s, max {max(times):.3f} s; "
              f"after a task ended, median over every agent {statistics.median(everyone) * 1000:.2f} ms, "
              f"over its agent {statistics.median(changed) * 1000:.3f} ms")


if __name__ == "__main__":
    main()
