"""Decline filters: framework F refused resources R on agent A for role X until time T.

Layout, grouped so that one agent's check costs one ``contains`` per distinct declined bag,
however many frameworks declined it (a decline storm leaves one bag and many frameworks)::

    _by_slot:      (agent_id, role) -> {R: _Group(frameworks={framework_id: expires}, earliest)}
    _by_framework: framework_id -> {(agent_id, role): None}  (revive and removal drop filters)

Garbage collection: the indexes hold millions of entries in a decline storm. Each slot's tuple is
made once (``_slots``) and dicts, not sets, hold them: a dict of untracked keys leaves the garbage
collector's care, where a fresh tuple per filter, or a set, makes every full pass walk them all.

Lifecycle of one filter::

    add(F, X, A, R, T) --> live (hides any offer R covers from F, on A, for X) --> expires at T,
                                                                             or dropped by revive

A new filter replaces the framework's older ones on the same slot that it dominates (covers
their resources and outlives them), so repeated declines do not grow what the allocator scans.

An idle role whose frameworks have all declined an agent is noted (``note_all_blocked``, stamped
with the sorter's membership version): until a filter of the slot changes or expires, or the
role's frameworks change, ``all_blocked`` answers in O(1) and the cycle walks nobody.

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
    __slots__ = ("_all_blocked", "_by_framework", "_by_slot", "_slots")

    def __init__(self) -> None:
        self._by_slot: dict[Slot, dict[Resources, _Group]] = {}
        self._by_framework: dict[str, dict[Slot, None]] = {}
        self._slots: dict[Slot, Slot] = {}  # the one tuple of each slot in _by_slot
        # slot -> (offerable, stamp, valid until): every framework in the order was blocked
        self._all_blocked: dict[Slot, tuple[Resources, int, float]] = {}

    def __len__(self) -> int:
        return sum(len(g.frameworks) for groups in self._by_slot.values() for g in groups.values())

    def add(self, framework_id: str, role: str, agent_id: str, resources: Resources, expires: float) -> None:
        slot = self._slots.setdefault((agent_id, role), (agent_id, role))
        self._all_blocked.pop(slot, None)
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
        self._by_framework.setdefault(framework_id, {})[slot] = None

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

    def note_all_blocked(self, agent_id: str, role: str, offerable: Resources, stamp: int) -> None:
        """Every framework the role's order held at ``stamp`` is blocked from ``offerable`` here."""
        groups = self._by_slot.get((agent_id, role))
        if groups:
            until = min(group.earliest for group in groups.values())
            self._all_blocked[(agent_id, role)] = (offerable, stamp, until)

    def all_blocked(self, agent_id: str, role: str, offerable: Resources, stamp: int, now: float) -> bool:
        noted = self._all_blocked.get((agent_id, role))
        return noted is not None and noted[1] == stamp and now < noted[2] and noted[0].contains(offerable)

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
            del slots[slot]
            self._all_blocked.pop(slot, None)
            groups = self._by_slot.get(slot, {})
            for declined in [d for d, g in groups.items() if framework_id in g.frameworks]:
                del groups[declined].frameworks[framework_id]
                if not groups[declined].frameworks:
                    del groups[declined]
            if not groups:
                self._by_slot.pop(slot, None)
                self._slots.pop(slot, None)
        if not slots:
            del self._by_framework[framework_id]

    def drop_agent(self, agent_id: str) -> None:
        for slot in [s for s in self._by_slot if s[0] == agent_id]:
            self._all_blocked.pop(slot, None)
            self._slots.pop(slot, None)
            for group in self._by_slot.pop(slot).values():
                for framework_id in group.frameworks:
                    self._by_framework.get(framework_id, {}).pop(slot, None)

    def _expire(self, agent_id: str, role: str, declined: Resources, group: _Group, now: float) -> None:
        slot = (agent_id, role)
        self._all_blocked.pop(slot, None)
        frameworks = group.frameworks
        for framework_id in [f for f, expires in frameworks.items() if expires <= now]:
            del frameworks[framework_id]
            if not any(framework_id in g.frameworks for g in self._by_slot[slot].values()):
                self._by_framework[framework_id].pop(slot, None)
        group.earliest = min(frameworks.values(), default=float("inf"))
        if not frameworks:
            del self._by_slot[slot][declined]
