"""The allocator: who is offered which agent's free resources, by hierarchical DRF.

Pure: it holds state but never reads a clock or does I/O; ``now`` and the agent shuffle come in.

One allocation cycle (``allocate``)::

    for agent in shuffled(active agents with free resources):
        for role in role_sorter (lowest weighted dominant share first):
            for framework in that role's framework_sorter:
                skip if inactive, suppressed for the role, or filtered for this agent
                offer everything on the agent that the role may use, then continue with
                whatever is left (resources reserved for other roles)

Accounting: offered and used resources both count as allocated (DRF counts offers), and are
returned with ``recover``; a decline may leave a filter that hides the same resources on that
agent from that framework and role until it expires.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from meseta.alloc.sorter import DRFSorter
from meseta.core.resources import EMPTY, Resources, to_milli

# Mesos --min_allocatable_resources default: an offer needs at least this much cpus OR mem.
MIN_CPUS_MILLI = to_milli(0.01)
MIN_MEM_MILLI = to_milli(32)
# Filters longer than a year are capped, as Mesos does (pymesos declines "forever").
MAX_REFUSE_SECONDS = 365 * 24 * 3600.0
DEFAULT_REFUSE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Allocation:
    """One decision: offer ``resources`` on ``agent_id`` to ``framework_id`` for ``role``."""

    framework_id: str
    role: str
    agent_id: str
    resources: Resources


@dataclass(slots=True)
class _Agent:
    total: Resources
    allocated: Resources = EMPTY
    active: bool = True

    def available(self) -> Resources:
        return self.total - self.allocated


@dataclass(slots=True)
class _Framework:
    roles: frozenset[str]
    suppressed: set[str] = field(default_factory=set)
    active: bool = True


@dataclass(frozen=True, slots=True)
class _Filter:
    resources: Resources
    expires: float


def effective_refuse_seconds(refuse: float | None, allocation_interval: float) -> float:
    """Mesos' rules: default 5 s, invalid -> 5 s, capped at a year, never below the interval."""
    if refuse is None or refuse != refuse or refuse < 0:
        refuse = DEFAULT_REFUSE_SECONDS
    if refuse == 0:
        return 0.0
    return max(min(refuse, MAX_REFUSE_SECONDS), allocation_interval)


def is_allocatable(resources: Resources) -> bool:
    scalars = resources.scalar_totals()
    return scalars.get("cpus", 0) >= MIN_CPUS_MILLI or scalars.get("mem", 0) >= MIN_MEM_MILLI


class Allocator:
    def __init__(self, allocation_interval: float = 1.0) -> None:
        self.allocation_interval = allocation_interval
        self._agents: dict[str, _Agent] = {}
        self._frameworks: dict[str, _Framework] = {}
        self._role_sorter = DRFSorter()
        self._framework_sorters: dict[str, DRFSorter] = {}
        self._filters: dict[tuple[str, str, str], list[_Filter]] = {}
        self._total: dict[str, int] = {}
        self._weights: dict[str, float] = {}

    # ---------------------------------------------------------------- agents
    def add_agent(self, agent_id: str, total: Resources, used: Iterable[tuple[str, str, Resources]] = ()) -> None:
        """Add an agent; ``used`` lists (framework_id, role, resources) already running there."""
        agent = _Agent(total)
        self._agents[agent_id] = agent
        self._change_total(total, +1)
        for framework_id, role, resources in used:
            self._track(agent_id, framework_id, role, resources)

    def remove_agent(self, agent_id: str) -> None:
        agent = self._agents.pop(agent_id, None)
        if agent is not None:
            self._change_total(agent.total, -1)
            for key in [k for k in self._filters if k[2] == agent_id]:
                del self._filters[key]

    def set_agent_active(self, agent_id: str, active: bool) -> None:
        if agent_id in self._agents:
            self._agents[agent_id].active = active

    def has_agent(self, agent_id: str) -> bool:
        return agent_id in self._agents

    # ---------------------------------------------------------------- frameworks
    def add_framework(self, framework_id: str, roles: Iterable[str], suppressed: Iterable[str] = ()) -> None:
        roles = frozenset(roles)
        self._frameworks[framework_id] = _Framework(roles, set(suppressed) & roles)
        for role in roles:
            self._ensure_role(role)
            self._framework_sorters[role].add(framework_id)

    def remove_framework(self, framework_id: str) -> None:
        framework = self._frameworks.pop(framework_id, None)
        if framework is None:
            return
        for role in framework.roles:
            sorter = self._framework_sorters[role]
            sorter.remove(framework_id)
            if not sorter.clients():
                del self._framework_sorters[role]
                self._role_sorter.remove(role)
        for key in [k for k in self._filters if k[0] == framework_id]:
            del self._filters[key]

    def update_framework_roles(self, framework_id: str, roles: Iterable[str]) -> None:
        framework = self._frameworks[framework_id]
        new_roles = frozenset(roles)
        for role in new_roles - framework.roles:
            self._ensure_role(role)
            self._framework_sorters[role].add(framework_id)
        for role in framework.roles - new_roles:
            self._framework_sorters[role].remove(framework_id)
        framework.roles = new_roles
        framework.suppressed &= new_roles

    def set_framework_active(self, framework_id: str, active: bool) -> None:
        if framework_id in self._frameworks:
            self._frameworks[framework_id].active = active

    def suppress(self, framework_id: str, roles: Iterable[str] = ()) -> None:
        framework = self._frameworks[framework_id]
        framework.suppressed |= set(roles or framework.roles) & framework.roles

    def revive(self, framework_id: str, roles: Iterable[str] = ()) -> None:
        framework = self._frameworks[framework_id]
        targets = set(roles or framework.roles)
        framework.suppressed -= targets
        for key in [k for k in self._filters if k[0] == framework_id and k[1] in targets]:
            del self._filters[key]

    # ---------------------------------------------------------------- accounting
    def recover(
        self,
        framework_id: str,
        role: str,
        agent_id: str,
        resources: Resources,
        refuse_seconds: float | None = 0.0,
        now: float = 0.0,
    ) -> None:
        """Return offered or used resources; with ``refuse_seconds`` > 0 also install a filter."""
        agent = self._agents.get(agent_id)
        if agent is None or resources.is_empty():
            return
        agent.allocated = agent.allocated - resources
        scalars = resources.scalar_totals()
        if role in self._role_sorter:
            self._role_sorter.unallocated(role, scalars)
            sorter = self._framework_sorters[role]
            if framework_id in sorter:
                sorter.unallocated(framework_id, scalars)
        seconds = effective_refuse_seconds(refuse_seconds, self.allocation_interval)
        if seconds > 0 and framework_id in self._frameworks:
            self._add_filter((framework_id, role, agent_id), _Filter(resources, now + seconds))

    def _add_filter(self, key: tuple[str, str, str], new: _Filter) -> None:
        """Keep only filters the new one does not dominate (covers their resources, outlives them),
        so repeated declines of the same agent do not grow the list the allocator scans."""
        kept = [f for f in self._filters.get(key, ()) if not (new.resources.contains(f.resources)
                                                           and new.expires >= f.expires)]
        kept.append(new)
        self._filters[key] = kept

    def allocated_on(self, agent_id: str) -> Resources:
        return self._agents[agent_id].allocated

    def share(self, framework_id: str, role: str) -> float:
        return self._framework_sorters[role].share(framework_id)

    # ---------------------------------------------------------------- the cycle
    def allocate(self, now: float, rng: random.Random) -> list[Allocation]:
        decisions: list[Allocation] = []
        agent_ids = [aid for aid, a in self._agents.items() if a.active]
        rng.shuffle(agent_ids)
        for agent_id in agent_ids:
            self._allocate_agent(agent_id, now, decisions)
        return decisions

    def _allocate_agent(self, agent_id: str, now: float, decisions: list[Allocation]) -> None:
        available = self._agents[agent_id].available()
        if not is_allocatable(available):
            return
        for role in self._role_sorter.sorted_clients():
            for framework_id in self._framework_sorters[role].sorted_clients():
                framework = self._frameworks[framework_id]
                if not framework.active or role in framework.suppressed:
                    continue
                offerable = available.allocatable_to(role)
                if not is_allocatable(offerable) or self._is_filtered(framework_id, role, agent_id, offerable, now):
                    continue
                self._track(agent_id, framework_id, role, offerable)
                decisions.append(Allocation(framework_id, role, agent_id, offerable))
                available = available - offerable
                if not is_allocatable(available):
                    return
                break  # this role's share changed; the next role gets what is left

    def _is_filtered(self, framework_id: str, role: str, agent_id: str, offerable: Resources, now: float) -> bool:
        filters = self._filters.get((framework_id, role, agent_id))
        if not filters:
            return False
        live = [f for f in filters if f.expires > now]
        if len(live) != len(filters):
            if live:
                self._filters[(framework_id, role, agent_id)] = live
            else:
                del self._filters[(framework_id, role, agent_id)]
        return any(f.resources.contains(offerable) for f in live)

    # ---------------------------------------------------------------- helpers
    def _ensure_role(self, role: str) -> None:
        if role not in self._framework_sorters:
            sorter = DRFSorter()
            sorter.set_total(self._total)
            self._framework_sorters[role] = sorter
            self._role_sorter.add(role, self._weights.get(role, 1.0))

    def _track(self, agent_id: str, framework_id: str, role: str, resources: Resources) -> None:
        agent = self._agents[agent_id]
        agent.allocated = agent.allocated + resources
        scalars = resources.scalar_totals()
        self._ensure_role(role)
        self._role_sorter.allocated(role, scalars)
        sorter = self._framework_sorters[role]
        if framework_id not in sorter:
            sorter.add(framework_id)
        sorter.allocated(framework_id, scalars)

    def _change_total(self, resources: Resources, sign: int) -> None:
        for name, milli in resources.scalar_totals().items():
            self._total[name] = self._total.get(name, 0) + sign * milli
        self._role_sorter.set_total(self._total)
        for sorter in self._framework_sorters.values():
            sorter.set_total(self._total)

