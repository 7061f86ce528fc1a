"""Run-time statistics of jobs as Chronos shows them (pure).

    GET .../job/stat/<name>  {"histogram": {"75thPercentile", "95thPercentile", "98thPercentile",
                              "99thPercentile", "median", "mean", "count"}, "taskStatHistory": [...]}
    GET .../stats/<which>    [{"jobNameLabel": name, "time": seconds}], highest first

Percentiles interpolate between the sorted durations of the kept successful runs (the way a
Dropwizard histogram snapshot reads a quantile); with no run every figure is 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

QUANTILES = {"75thPercentile": 0.75, "95thPercentile": 0.95, "98thPercentile": 0.98, "99thPercentile": 0.99,
             "median": 0.5}
STAT_NAMES = (*QUANTILES, "mean")


def quantile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return 0.0
    position = q * (len(ordered) + 1)
    index = math.floor(position)
    if index < 1:
        return float(ordered[0])
    if index >= len(ordered):
        return float(ordered[-1])
    lower, upper = ordered[index - 1], ordered[index]
    return float(lower + (position - index) * (upper - lower))


def histogram(durations: Sequence[float]) -> dict[str, float | int]:
    ordered = sorted(durations)
    out: dict[str, float | int] = {name: quantile(ordered, q) for name, q in QUANTILES.items()}
    out["mean"] = sum(ordered) / len(ordered) if ordered else 0.0
    out["count"] = len(ordered)
    return out


def stat_of(durations: Sequence[float], name: str) -> float:
    """One figure (a STAT_NAMES member) of ``durations``."""
    return float(histogram(durations)[name])
