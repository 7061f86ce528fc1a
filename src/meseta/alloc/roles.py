"""Hierarchical role ordering: fair shares between sibling roles, walking the role tree.

Roles ``eng/web``, ``eng/db`` and ``ads`` with frameworks, and ``eng`` with frameworks of its own::

    ""  (root sorter)      clients: "eng", "ads"
    "eng"                  clients: "eng/web", "eng/db", "eng/."   ("eng/." = eng's own frameworks)
    "eng/web"              clients: "eng/web/."
    "ads"                  clients: "ads/."

Every node has a sorter over its children; a child's allocation is the sum over its subtree,
and its weight is the weight of its role name. ``iter_roles`` walks the tree depth first,
children in sorter order, and yields a role when it reaches its ``<role>/.`` leaf; a role whose
node holds only its own leaf (every flat role) is yielded without descending. The walk is lazy
and reads the sorters live, so an allocation cycle pays only for the roles it visits: after an
allocation it stops and walks again, past the roles it has already seen on that agent.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable, Iterator, Mapping

from meseta.alloc.sorter import Sorter, make_sorter

LEAF = "/."


def _chain(role: str) -> list[str]:
    """``a/b/c`` -> ``["a", "a/b", "a/b/c"]``."""
    parts = role.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


class RoleTree:
    __slots__ = ("_kind", "_nodes", "_roles", "_seed", "_total", "_weights")

    def __init__(self, kind: str = "drf", seed: int = 0) -> None:
        self._kind = kind
        self._seed = seed
        self._nodes: dict[str, Sorter] = {"": make_sorter(kind, seed)}
        self._roles: set[str] = set()
        self._weights: dict[str, float] = {}
        self._total: dict[str, int] = {}

    def __contains__(self, role: object) -> bool:
        return role in self._roles

    def roles(self) -> set[str]:
        return set(self._roles)

    def add(self, role: str) -> None:
        if role in self._roles:
            return
        self._roles.add(role)
        for path in _chain(role):
            self._node(_parent(path)).add(path, self._weights.get(path, 1.0))
            self._node(path)
        self._nodes[role].add(role + LEAF, self._weights.get(role, 1.0))

    def remove(self, role: str) -> None:
        """Forget a role (callers remove a role only once nothing is allocated to it)."""
        if role not in self._roles:
            return
        self._roles.discard(role)
        self._nodes[role].remove(role + LEAF)
        for path in reversed(_chain(role)):
            if self._nodes[path].clients():
                break
            del self._nodes[path]
            self._nodes[_parent(path)].remove(path)

    def set_weight(self, role: str, weight: float) -> None:
        self._weights[role] = weight
        parent = self._nodes.get(_parent(role))
        if parent is not None and role in parent:
            parent.set_weight(role, weight)
        node = self._nodes.get(role)
        if node is not None and role + LEAF in node:
            node.set_weight(role + LEAF, weight)

    def weight(self, role: str) -> float:
        return self._weights.get(role, 1.0)

    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def set_total(self, total: Mapping[str, int]) -> None:
        self._total = dict(total)
        for sorter in self._nodes.values():
            sorter.set_total(self._total)

    def allocated(self, role: str, scalars: Mapping[str, int]) -> None:
        for path in _chain(role):
            self._nodes[_parent(path)].allocated(path, scalars)
        self._nodes[role].allocated(role + LEAF, scalars)

    def unallocated(self, role: str, scalars: Mapping[str, int]) -> None:
        for path in _chain(role):
            self._nodes[_parent(path)].unallocated(path, scalars)
        self._nodes[role].unallocated(role + LEAF, scalars)

    def share(self, role: str) -> float:
        """The role's weighted dominant share among its siblings (its whole subtree counts)."""
        return self._nodes[_parent(role)].share(role)

    def allocation(self, role: str) -> dict[str, int]:
        return self._nodes[role].allocation(role + LEAF)

    def sorted_roles(self) -> list[str]:
        return list(self.iter_roles())

    def iter_roles(self, skip: Container[str] = frozenset(), tops: Collection[str] | None = None) -> Iterator[str]:
        """Roles in hierarchical DRF order, without ``skip`` and, given ``tops``, only those under
        these top-level roles. Lazy over live sorters: stop iterating once an allocation changes."""
        root = self._nodes[""]
        level = root.iter_clients() if tops is None else root.iter_clients_within(tops)
        return self._descend(level, skip)

    def _descend(self, paths: Iterable[str], skip: Container[str]) -> Iterator[str]:
        nodes, roles = self._nodes, self._roles
        for path in paths:
            if path.endswith(LEAF):
                role = path[: -len(LEAF)]
                if role not in skip:
                    yield role
                continue
            node = nodes[path]
            if path in roles and len(node) == 1:  # only its own leaf below it
                if path not in skip:
                    yield path
            else:
                yield from self._descend(node.iter_clients(), skip)

    def _node(self, path: str) -> Sorter:
        node = self._nodes.get(path)
        if node is None:
            node = self._nodes[path] = make_sorter(self._kind, self._seed + len(self._nodes))
            node.set_total(self._total)
        return node
