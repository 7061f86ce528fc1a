"""Decline filters: framework F refused resources R on agent A for role X until time T.

Layout, grouped so that one agent's check costs one ``contains`` per distinct declined bag,
however many frameworks declined it (a decline storm leaves one bag and many frameworks)::

    _by_slot:      (agent_id, role) -> {R: _Group(frameworks={framework_id: expires}, earliest)}
    _by_framework: framework_id -> {(agent_id, role)}        (revive and removal drop filters)

Lifecycle of one filter::

    add(F, X, A, R, T) --> live (hides any offer R covers from F, on A, for X) --> expires at T,
                                                                             or dropped by revive

A new filter replaces the framework's older ones on the same slot that it dominates (covers
their resources and outlives them), so repeated declines do not grow what the allocator scans.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from meseta.core.resources import Resources

Slot = tuple[str, str]  # (agent_id, role)
_NONE: frozenset[str] = frozenset()


class _Group:
    """The frameworks that declined one bag of resources; ``earliest`` <= every expiry in it."""

    __slots__ = ("earliest", "frameworks")

    def __init__(self) -> None:
        self.frameworks: dict[str, float] = {}
        self.earliest = float("inf")


class OfferFilters:
    __slots__ = ("_by_framework", "_by_slot")

    def __init__(self) -> None:
        self._by_slot: dict[Slot, dict[Resources, _Group]] = {}
        self._by_framework: dict[str, set[Slot]] = {}

    def __len__(self) -> int:
        return sum(len(g.frameworks) for groups in self._by_slot.values() for g in groups.values())

    def add(self, framework_id: str, role: str, agent_id: str, resources: Resources, expires: float) -> None:
        slot = (agent_id, role)
        groups = self._by_slot.setdefault(slot, {})
        for declined, older in list(groups.items()):
            old = older.frameworks.get(framework_id)
            if old is not None and old <= expires and resources.contains(declined):
                del older.frameworks[framework_id]
                if not older.frameworks:
                    del groups[declined]
        group = groups.get(resources)
        if group is None:
            group = groups[resources] = _Group()
        group.frameworks[framework_id] = max(expires, group.frameworks.get(framework_id, expires))
        group.earliest = min(group.earliest, expires)
        self._by_framework.setdefault(framework_id, set()).add(slot)

    def blocked(self, agent_id: str, role: str, offerable: Resources, now: float) -> Collection[str]:
        """The frameworks a live filter hides ``offerable`` from (on this agent, for this role)."""
        groups = self._by_slot.get((agent_id, role))
        if not groups:
            return _NONE
        found: list[dict[str, float]] = []
        for declined, group in list(groups.items()):
            if declined.contains(offerable):
                if group.earliest <= now:
                    self._expire(agent_id, role, declined, group, now)
                if group.frameworks:
                    found.append(group.frameworks)
        if not found:
            return _NONE
        if len(found) == 1:
            return found[0]
        return set().union(*found)

    def is_filtered(self, framework_id: str, role: str, agent_id: str, offerable: Resources, now: float) -> bool:
        groups = self._by_slot.get((agent_id, role), {})
        return any(
            group.frameworks.get(framework_id, now) > now and declined.contains(offerable)
            for declined, group in groups.items()
        )

    def drop(self, framework_id: str, roles: Iterable[str] | None = None) -> None:
        """Revive (for ``roles``, or all of them) or removal: the framework's filters go."""
        slots = self._by_framework.get(framework_id)
        if not slots:
            return
        wanted = None if roles is None else set(roles)
        for slot in [s for s in slots if wanted is None or s[1] in wanted]:
            slots.discard(slot)
            groups = self._by_slot[slot]
            for declined in [d for d, g in groups.items() if framework_id in g.frameworks]:
                del groups[declined].frameworks[framework_id]
                if not groups[declined].frameworks:
                    del groups[declined]
            if not groups:
                del self._by_slot[slot]
        if not slots:
            del self._by_framework[framework_id]

    def drop_agent(self, agent_id: str) -> None:
        for slot in [s for s in self._by_slot if s[0] == agent_id]:
            for group in self._by_slot.pop(slot).values():
                for framework_id in group.frameworks:
                    self._by_framework.get(framework_id, set()).discard(slot)

    def _expire(self, agent_id: str, role: str, declined: Resources, group: _Group, now: float) -> None:
        slot = (agent_id, role)
        frameworks = group.frameworks
        for framework_id in [f for f, expires in frameworks.items() if expires <= now]:
            del frameworks[framework_id]
            if not any(framework_id in g.frameworks for g in self._by_slot[slot].values()):
                self._by_framework[framework_id].discard(slot)
        group.earliest = min(frameworks.values(), default=float("inf"))
        if not frameworks:
            del self._by_slot[slot][declined]
