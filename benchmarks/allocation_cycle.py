"""allocation_cycle (spec/benchmarks.md A3): wall time of one full allocation cycle.

Every framework wants everything, all in one role, no filters; agents are
`cpus:24;mem:4096;disk:4096;ports:[31000-32000]` (Mesos's grid). Pure allocator, no I/O.

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


def one_cycle(agents: int, frameworks: int, seed: int) -> tuple[float, int]:
    allocator = Allocator()
    for index in range(agents):
        allocator.add_agent(f"agent-{index}", AGENT)
    for index in range(frameworks):
        allocator.add_framework(f"framework-{index:05d}", ["*"])
    start = time.perf_counter()
    decisions = allocator.allocate(0.0, random.Random(seed))
    return time.perf_counter() - start, len(decisions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="1000x100,5000x500,10000x1000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, in-process, pure allocator")
    for point in args.grid.split(","):
        agents, frameworks = (int(x) for x in point.split("x"))
        times, offers = [], 0
        for run in range(args.runs):
            seconds, offers = one_cycle(agents, frameworks, run)
            times.append(seconds)
        print(f"{agents:>6} agents / {frameworks:>5} frameworks: {offers} offers; cycle "
              f"median {statistics.median(times):.3f} s, min {min(times):.3f} s, max {max(times):.3f} s")


if __name__ == "__main__":
    main()
