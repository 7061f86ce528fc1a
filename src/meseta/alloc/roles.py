"""Hierarchical role ordering: fair shares between sibling roles, walking the role tree.

Roles ``eng/web``, ``eng/db`` and ``ads`` with frameworks, and ``eng`` with frameworks of its own::

    ""  (root sorter)      clients: "eng", "ads"
    "eng"                  clients: "eng/web", "eng/db", "eng/."   ("eng/." = eng's own frameworks)
    "eng/web"              clients: "eng/web/."
    "ads"                  clients: "ads/."

Every node has a sorter over its children; a child's allocation is the sum over its subtree,
and its weight is the weight of its role name. ``sorted_roles`` walks the tree depth first,
children in sorter order, and yields a role when it reaches its ``<role>/.`` leaf. With flat
roles this is one sorter level deep, and each allocation updates two sorters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

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
        return list(self._walk(""))

    def _walk(self, path: str) -> Iterator[str]:
        for client in self._nodes[path].sorted_clients():
            if client.endswith(LEAF):
                yield client[: -len(LEAF)]
            else:
                yield from self._walk(client)

    def _node(self, path: str) -> Sorter:
        node = self._nodes.get(path)
        if node is None:
            node = self._nodes[path] = make_sorter(self._kind, self._seed + len(self._nodes))
            node.set_total(self._total)
        return node
