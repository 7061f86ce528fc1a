"""Quota arithmetic on scalar maps (name -> thousandths): guarantees, limits and headroom.

A role's quota (top-level roles only, as in Mesos)::

    Quota(guarantees={"cpus": 4000}, limits={"cpus": 8000, "mem": 8192000})

    consumption(role)   reservations of the role and its subroles (allocated or not)
                        + unreserved resources allocated to them (offered or in use)
    unmet(role)         max(0, guarantee - consumption), per name
    required headroom   sum of unmet over all roles: unreserved free resources held back
    allowance(role, n)  min(limit - consumption, free - (required - unmet(role)))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from meseta.core.resources import Quantity, ResourceKey, Resources

Scalars: TypeAlias = dict[str, int]


@dataclass(frozen=True, slots=True)
class Quota:
    guarantees: Mapping[str, int] = field(default_factory=dict)
    limits: Mapping[str, int] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not self.guarantees and not self.limits


def top_level(role: str) -> str:
    return role.partition("/")[0]


def add_scalars(into: Scalars, scalars: Mapping[str, int], sign: int = 1) -> None:
    for name, milli in scalars.items():
        left = into.get(name, 0) + sign * milli
        if left:
            into[name] = left
        else:
            into.pop(name, None)


def unmet_guarantees(quota: Quota, consumed: Mapping[str, int]) -> Scalars:
    return {n: g - consumed.get(n, 0) for n, g in quota.guarantees.items() if g > consumed.get(n, 0)}


def cap_scalars(resources: Resources, caps: Mapping[str, int], keep: Iterable[ResourceKey] = ()) -> Resources:
    """Cut scalar items so that the total per name stays within ``caps`` (names not in ``caps``
    are untouched; items in ``keep`` are never cut, and count first)."""
    totals = resources.scalar_totals()
    if all(totals.get(name, 0) <= cap for name, cap in caps.items()):
        return resources  # nothing to cut
    kept = set(keep)
    room = dict(caps)
    items: dict[ResourceKey, Quantity] = {}
    for key in sorted(resources, key=lambda k: k not in kept):
        qty = resources[key]
        if isinstance(qty, int) and key.name in room:
            if key in kept:
                room[key.name] -= qty
            else:
                qty = max(0, min(qty, room[key.name]))
                room[key.name] -= qty
        items[key] = qty
    return Resources(items)
