"""DRF sorter: orders clients (roles, or frameworks inside a role) by weighted dominant share.

Invariants:
  * ``share(c) = max over scalar names r of allocated[c][r] / total[r]``, divided by weight(c);
    names whose cluster total is zero are skipped.
  * ``sorted_clients()`` lists every client once, ascending by ``(share, name)``: the lowest
    weighted share goes first and ties break on the client name (deterministic, documented).
  * Updating one client re-positions only that client (bisect), so an allocation cycle never
    re-sorts everything per agent; a change of the cluster total re-sorts once, lazily.
  * A deactivated client (suppressed, or its framework disconnected) keeps its allocation but
    leaves the order, so a cycle never walks past it (Mesos' sorter activate/deactivate).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Collection, Iterator, Mapping
from itertools import filterfalse
from operator import itemgetter

_NAME = itemgetter(1)
_SCAN_RATIO = 16  # iter_clients_within sorts the subset itself when it is under 1/16 of the order


class DRFSorter:
    __slots__ = ("_allocated", "_entries", "_inactive", "_keys", "_names", "_stale", "_total", "_weights", "version")

    def __init__(self) -> None:
        self._allocated: dict[str, dict[str, int]] = {}
        self._weights: dict[str, float] = {}
        self._total: dict[str, int] = {}
        self._keys: dict[str, tuple[float, str]] = {}
        self._entries: list[tuple[float, str]] = []
        self._names: list[str] = []  # the names of _entries, index for index: walked in C without a getter
        self._inactive: set[str] = set()
        self._stale = False
        self.version = 0  # bumped whenever the set of clients in the order changes

    # membership
    def add(self, client: str, weight: float = 1.0) -> None:
        if client in self._allocated:
            return
        self._allocated[client] = {}
        self._weights[client] = weight
        self.version += 1
        self._insert(client)

    def remove(self, client: str) -> None:
        if client not in self._allocated:
            return
        self.version += 1
        self._discard(client)
        del self._allocated[client]
        del self._weights[client]
        self._inactive.discard(client)

    def activate(self, client: str) -> None:
        if client in self._inactive:
            self.version += 1
            self._inactive.discard(client)
            self._insert(client)

    def deactivate(self, client: str) -> None:
        if client in self._allocated and client not in self._inactive:
            self.version += 1
            self._discard(client)
            self._inactive.add(client)

    def __contains__(self, client: object) -> bool:
        return client in self._allocated

    def __len__(self) -> int:
        return len(self._allocated)

    def clients(self) -> list[str]:
        return list(self._allocated)

    # quantities
    def set_total(self, total: Mapping[str, int]) -> None:
        self._total = dict(total)
        self._stale = True

    def set_weight(self, client: str, weight: float) -> None:
        self._weights[client] = weight
        self._reposition(client)

    def allocated(self, client: str, scalars: Mapping[str, int]) -> None:
        mine = self._allocated[client]
        for name, milli in scalars.items():
            mine[name] = mine.get(name, 0) + milli
        self._reposition(client)

    def unallocated(self, client: str, scalars: Mapping[str, int]) -> None:
        mine = self._allocated[client]
        for name, milli in scalars.items():
            left = mine.get(name, 0) - milli
            if left > 0:
                mine[name] = left
            else:
                mine.pop(name, None)
        self._reposition(client)

    def allocation(self, client: str) -> dict[str, int]:
        return dict(self._allocated[client])

    def share(self, client: str) -> float:
        best = 0.0
        total, weight = self._total, self._weights[client]
        for name, milli in self._allocated[client].items():
            cluster = total.get(name, 0)
            if cluster > 0:  # one division, so equal weighted shares compare equal (tie-break)
                best = max(best, milli / (cluster * weight))
        return best

    # order
    def sorted_clients(self) -> list[str]:
        return list(self.iter_clients())

    def iter_clients(self) -> Iterator[str]:
        """The order, lazily: a caller that changes an allocation must stop iterating."""
        if self._stale:
            self._entries = sorted((self.share(c), c) for c in self._allocated if c not in self._inactive)
            self._names = [c for _, c in self._entries]
            self._keys = {c: (s, c) for s, c in self._entries}
            self._stale = False
        return iter(self._names)  # C-level, so skipping filtered clients stays cheap

    def iter_clients_except(self, skip: Collection[str]) -> Iterator[str]:
        """The order without ``skip`` (an agent's declined frameworks), skipped in C."""
        order = self.iter_clients()
        return filterfalse(skip.__contains__, order) if skip else order

    def iter_clients_within(self, subset: Collection[str]) -> Iterator[str]:
        """The order restricted to ``subset`` (quota's first stage: the roles still short of their
        guarantee): a C-level scan, or the subset's own keys sorted when it is a small part."""
        order = self.iter_clients()
        keys = self._keys
        if len(subset) * _SCAN_RATIO > len(keys):
            return filter(subset.__contains__, order)
        return map(_NAME, sorted(keys[c] for c in subset if c in keys))

    def _reposition(self, client: str) -> None:
        if self._stale:
            return
        self._discard(client)
        self._insert(client)

    def _insert(self, client: str) -> None:
        if self._stale or client in self._inactive:
            return
        key = (self.share(client), client)
        self._keys[client] = key
        index = bisect.bisect_right(self._entries, key)
        self._entries.insert(index, key)
        self._names.insert(index, client)

    def _discard(self, client: str) -> None:
        key = self._keys.pop(client, None)
        if key is None or self._stale:
            return
        index = bisect.bisect_left(self._entries, key)
        del self._entries[index]
        del self._names[index]


class RandomSorter:
    """``--*-sorter random``: a weighted random order, drawn afresh on every ``sorted_clients``.

    Each client draws ``u ** (1 / weight)`` for a uniform ``u`` and the highest draw goes first
    (weighted sampling without replacement), so a client of weight 3 leads three times as often
    as one of weight 1. Allocations are tracked only so that ``share`` can be reported.
    """

    __slots__ = ("_drf", "_rng")

    def __init__(self, seed: int = 0) -> None:
        self._drf = DRFSorter()
        self._rng = random.Random(seed)

    def add(self, client: str, weight: float = 1.0) -> None:
        self._drf.add(client, weight)

    def remove(self, client: str) -> None:
        self._drf.remove(client)

    def activate(self, client: str) -> None:
        self._drf.activate(client)

    def deactivate(self, client: str) -> None:
        self._drf.deactivate(client)

    def __contains__(self, client: object) -> bool:
        return client in self._drf

    def __len__(self) -> int:
        return len(self._drf)

    @property
    def version(self) -> int:
        return self._drf.version

    def clients(self) -> list[str]:
        return self._drf.clients()

    def set_total(self, total: Mapping[str, int]) -> None:
        self._drf.set_total(total)

    def set_weight(self, client: str, weight: float) -> None:
        self._drf.set_weight(client, weight)

    def allocated(self, client: str, scalars: Mapping[str, int]) -> None:
        self._drf.allocated(client, scalars)

    def unallocated(self, client: str, scalars: Mapping[str, int]) -> None:
        self._drf.unallocated(client, scalars)

    def allocation(self, client: str) -> dict[str, int]:
        return self._drf.allocation(client)

    def share(self, client: str) -> float:
        return self._drf.share(client)

    def iter_clients(self) -> Iterator[str]:
        return iter(self.sorted_clients())

    def iter_clients_except(self, skip: Collection[str]) -> Iterator[str]:
        return filterfalse(skip.__contains__, self.sorted_clients())

    def iter_clients_within(self, subset: Collection[str]) -> Iterator[str]:
        return filter(subset.__contains__, self.sorted_clients())


    def sorted_clients(self) -> list[str]:
        weights = self._drf._weights
        active = [c for c in self._drf.clients() if c not in self._drf._inactive]
        draws = [(self._rng.random() ** (1.0 / weights[c]), c) for c in active]
        draws.sort(reverse=True)
        return [c for _, c in draws]


Sorter = DRFSorter | RandomSorter


def make_sorter(kind: str, seed: int = 0) -> Sorter:
    """``drf`` (the default) or ``random``, as ``--role-sorter`` / ``--framework-sorter`` say."""
    if kind == "drf":
        return DRFSorter()
    if kind == "random":
        return RandomSorter(seed)
    raise ValueError(f"sorter '{kind}' is not one of drf, random")
