"""The allocator: who is offered which agent's free resources, by hierarchical DRF.

Pure: it holds state but never reads a clock or does I/O; ``now`` and the agent shuffle come in.

One allocation cycle (``allocate``), over every agent (the batch every allocation interval) or
only the agents whose resources changed (the run soon after an event), in two stages as Mesos
runs them since 1.9::

    stage 1, only while some role's quota guarantee is unmet:
        for agent in shuffled(active agents), for role under a guarantee (role tree order):
            offer what is reserved for it plus unreserved scalars chopped to the unmet guarantee
    stage 2:
        for agent in shuffled(active agents with free resources):
            for role in the role tree (hierarchical DRF: lowest weighted share among siblings first;
                                       after each offer the walk starts again, past roles seen):
                for framework in that role's framework sorter:
                    skip if inactive, suppressed for the role, filtered for this agent, or
                    lacking the capability (GPU_RESOURCES, REVOCABLE_RESOURCES) the resources need
                    offer what the role may use on the agent, cut to its quota limit and to the
                    headroom other roles' unmet guarantees need; the next role gets the rest

Quota accounting is by top-level role: consumption = reservations (allocated or not) plus
unreserved allocations of the role and all its subroles.

Accounting: offered and used resources both count as allocated (DRF counts offers), and are
returned with ``recover``; a decline may leave a filter that hides the same resources on that
agent from that framework and role until it expires.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from meseta.alloc.filters import OfferFilters
from meseta.alloc.quota import Quota, Scalars, add_scalars, cap_scalars, top_level, unmet_guarantees
from meseta.alloc.roles import RoleTree
from meseta.alloc.sorter import Sorter, make_sorter
from meseta.core.reservations import is_revocable
from meseta.core.resources import EMPTY, UNRESERVED, Resources, to_milli

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
    gpus: bool = False
    revocable: bool = False
    _free: Resources | None = None  # total - allocated, kept until either changes

    def available(self) -> Resources:
        if self._free is None:
            self._free = self.total - self.allocated
        return self._free

    def set(self, total: Resources, allocated: Resources) -> None:
        self.total, self.allocated, self._free = total, allocated, None


@dataclass(slots=True)
class _Framework:
    roles: frozenset[str]
    suppressed: set[str] = field(default_factory=set)
    active: bool = True
    capabilities: frozenset[str] = frozenset()


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
    def __init__(
        self,
        allocation_interval: float = 1.0,
        role_sorter: str = "drf",
        framework_sorter: str = "drf",
        seed: int = 0,
    ) -> None:
        if role_sorter != framework_sorter:
            raise ValueError("--role-sorter and --framework-sorter must be equal (Mesos refuses to start otherwise)")
        make_sorter(role_sorter)  # rejects an unknown kind early
        self.allocation_interval = allocation_interval
        self._kind = framework_sorter
        self._seed = seed
        self._agents: dict[str, _Agent] = {}
        self._frameworks: dict[str, _Framework] = {}
        self._roles = RoleTree(role_sorter, seed)
        self._framework_sorters: dict[str, Sorter] = {}
        self._filters = OfferFilters()
        self._total: dict[str, int] = {}
        self._quotas: dict[str, Quota] = {}
        self._reserved: dict[str, Scalars] = {}  # top-level role -> reserved scalars on all agents
        self._allocated_unreserved: dict[str, Scalars] = {}  # top-level role -> unreserved allocated

    # ---------------------------------------------------------------- agents
    def add_agent(self, agent_id: str, total: Resources, used: Iterable[tuple[str, str, Resources]] = ()) -> None:
        """Add an agent; ``used`` lists (framework_id, role, resources) already running there."""
        agent = _Agent(total)
        self._agents[agent_id] = agent
        self._change_total(agent, total, +1)
        grouped: dict[tuple[str, str], Resources] = {}  # one bookkeeping pass per (framework, role)
        for framework_id, role, resources in used:
            key = (framework_id, role)
            grouped[key] = grouped[key] + resources if key in grouped else resources
        for (framework_id, role), resources in grouped.items():
            self._track(agent_id, framework_id, role, resources)

    def update_agent(self, agent_id: str, total: Resources) -> None:
        """The agent's total changed (reservations, volumes, revocable estimate); allocations stay."""
        agent = self._agents[agent_id]
        self._change_total(agent, agent.total, -1)
        agent.set(total, agent.allocated)
        self._change_total(agent, total, +1)

    def remove_agent(self, agent_id: str) -> None:
        agent = self._agents.pop(agent_id, None)
        if agent is not None:
            self._change_total(agent, agent.total, -1)
            self._filters.drop_agent(agent_id)

    def set_agent_active(self, agent_id: str, active: bool) -> None:
        if agent_id in self._agents:
            self._agents[agent_id].active = active

    def has_agent(self, agent_id: str) -> bool:
        return agent_id in self._agents

    def is_agent_active(self, agent_id: str) -> bool:
        agent = self._agents.get(agent_id)
        return agent is not None and agent.active

    # ---------------------------------------------------------------- frameworks
    def add_framework(
        self,
        framework_id: str,
        roles: Iterable[str],
        suppressed: Iterable[str] = (),
        capabilities: Iterable[str] = (),
    ) -> None:
        roles = frozenset(roles)
        self._frameworks[framework_id] = _Framework(roles, set(suppressed) & roles, True, frozenset(capabilities))
        for role in roles:
            self._ensure_role(role)
            self._framework_sorters[role].add(framework_id)
        self._sync_sorters(framework_id)

    def remove_framework(self, framework_id: str) -> None:
        framework = self._frameworks.pop(framework_id, None)
        if framework is None:
            return
        for role in framework.roles:
            self._framework_sorters[role].remove(framework_id)
            self._forget_role_if_idle(role)
        self._filters.drop(framework_id)

    def update_framework(self, framework_id: str, roles: Iterable[str], capabilities: Iterable[str] = ()) -> None:
        framework = self._frameworks[framework_id]
        framework.capabilities = frozenset(capabilities)
        self.update_framework_roles(framework_id, roles)

    def update_framework_roles(self, framework_id: str, roles: Iterable[str]) -> None:
        framework = self._frameworks[framework_id]
        new_roles = frozenset(roles)
        for role in new_roles - framework.roles:
            self._ensure_role(role)
            self._framework_sorters[role].add(framework_id)
        old = framework.roles - new_roles
        framework.roles = new_roles
        framework.suppressed &= new_roles
        for role in old:
            self._framework_sorters[role].remove(framework_id)
            self._forget_role_if_idle(role)
        self._sync_sorters(framework_id)

    def set_framework_active(self, framework_id: str, active: bool) -> None:
        if framework_id in self._frameworks:
            self._frameworks[framework_id].active = active
            self._sync_sorters(framework_id)

    def suppress(self, framework_id: str, roles: Iterable[str] = ()) -> None:
        framework = self._frameworks[framework_id]
        framework.suppressed |= set(roles or framework.roles) & framework.roles
        self._sync_sorters(framework_id)

    def revive(self, framework_id: str, roles: Iterable[str] = ()) -> None:
        framework = self._frameworks[framework_id]
        targets = set(roles or framework.roles)
        framework.suppressed -= targets
        self._filters.drop(framework_id, targets)
        self._sync_sorters(framework_id)

    def _sync_sorters(self, framework_id: str) -> None:
        """Only active, unsuppressed frameworks stand in a role's order (allocations stay counted)."""
        framework = self._frameworks[framework_id]
        for role in framework.roles:
            sorter = self._framework_sorters[role]
            if framework.active and role not in framework.suppressed:
                sorter.activate(framework_id)
            else:
                sorter.deactivate(framework_id)

    # ---------------------------------------------------------------- weights and quota
    def set_weight(self, role: str, weight: float) -> None:
        self._roles.set_weight(role, weight)

    def weights(self) -> dict[str, float]:
        return self._roles.weights()

    def set_quota(self, role: str, quota: Quota) -> None:
        if quota.is_empty():
            self._quotas.pop(role, None)
        else:
            self._quotas[role] = quota

    def quotas(self) -> dict[str, Quota]:
        return dict(self._quotas)

    def consumed(self, role: str) -> Scalars:
        """Quota consumption of a top-level role: its reservations plus unreserved allocations."""
        out = dict(self._reserved.get(role, {}))
        add_scalars(out, self._allocated_unreserved.get(role, {}))
        return out

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
        agent.set(agent.total, agent.allocated - resources)
        scalars = resources.scalar_totals()
        add_scalars(self._allocated_unreserved.setdefault(top_level(role), {}),
                    resources.unreserved().scalar_totals(), -1)
        if role in self._roles:
            self._roles.unallocated(role, scalars)
            sorter = self._framework_sorters[role]
            if framework_id in sorter:
                sorter.unallocated(framework_id, scalars)
            self._forget_role_if_idle(role)
        seconds = effective_refuse_seconds(refuse_seconds, self.allocation_interval)
        if seconds > 0 and framework_id in self._frameworks:
            self._filters.add(framework_id, role, agent_id, resources, now + seconds)

    def convert_allocation(
        self, framework_id: str, role: str, agent_id: str, old: Resources, new: Resources, total: Resources
    ) -> None:
        """An offer operation (RESERVE, CREATE, ...) turned allocated ``old`` into ``new`` and the
        agent's total changed accordingly."""
        self.recover(framework_id, role, agent_id, old)
        self.update_agent(agent_id, total)
        self._track(agent_id, framework_id, role, new)

    def allocated_on(self, agent_id: str) -> Resources:
        return self._agents[agent_id].allocated

    def share(self, framework_id: str, role: str) -> float:
        return self._framework_sorters[role].share(framework_id)

    def role_share(self, role: str) -> float:
        return self._roles.share(role)

    def total(self) -> Scalars:
        return dict(self._total)

    # ---------------------------------------------------------------- the cycle
    def allocate(self, now: float, rng: random.Random, agents: Collection[str] | None = None) -> list[Allocation]:
        """One cycle over every active agent, or only over ``agents`` (those whose resources
        changed since the last cycle: Mesos's allocation candidates), in a shuffled order."""
        decisions: list[Allocation] = []
        if not any(f.active and f.roles - f.suppressed for f in self._frameworks.values()):
            return decisions  # nobody to offer to (e.g. agents re-registering after a failover)
        if agents is None:
            agent_ids = [aid for aid, a in self._agents.items() if a.active]
        else:
            agent_ids = [aid for aid in sorted(agents) if aid in self._agents and self._agents[aid].active]
        rng.shuffle(agent_ids)
        if not self._quotas:
            for agent_id in agent_ids:
                self._allocate_agent(agent_id, now, decisions, None)
            return decisions
        # headroom is the whole cluster's, whichever agents are walked
        active = agent_ids if agents is None else [aid for aid, a in self._agents.items() if a.active]
        cycle = _QuotaCycle(self, active)
        if cycle.unmet:
            for agent_id in agent_ids:
                self._allocate_agent(agent_id, now, decisions, cycle, guarantees_only=True)
        for agent_id in agent_ids:
            self._allocate_agent(agent_id, now, decisions, cycle)
        return decisions

    def _allocate_agent(
        self,
        agent_id: str,
        now: float,
        decisions: list[Allocation],
        cycle: _QuotaCycle | None,
        guarantees_only: bool = False,
    ) -> None:
        """Offer one agent's free resources, one offer per role at most, lowest share first.
        After each offer the role order has changed: walk it again, past the roles seen."""
        agent = self._agents[agent_id]
        available = agent.available()
        if not is_allocatable(available):
            return
        tops = cycle.unmet if guarantees_only and cycle is not None else None
        seen: set[str] = set()
        while True:
            for role in self._roles.iter_roles(seen, tops):
                seen.add(role)
                offer = self._offer_in_role(agent_id, agent, role, available, now, cycle, guarantees_only)
                if offer is not None:
                    break
            else:
                return  # no role took anything more
            decisions.append(offer)
            if offer.resources is available:
                return  # the whole agent went in one offer
            available = available - offer.resources
            if not is_allocatable(available):
                return

    def _offer_in_role(
        self,
        agent_id: str,
        agent: _Agent,
        role: str,
        available: Resources,
        now: float,
        cycle: _QuotaCycle | None,
        guarantees_only: bool,
    ) -> Allocation | None:
        """The first framework of ``role``'s order that may take what the role may use here."""
        offerable = available.allocatable_to(role)
        if cycle is not None:
            offerable = cycle.cut(role, offerable, guarantees_only)
        if not is_allocatable(offerable):
            return None
        sorter = self._framework_sorters[role]
        if self._filters.all_blocked(agent_id, role, offerable, sorter.version, now):
            return None  # noted when every framework had declined it; nothing changed since
        blocked = self._filters.blocked(agent_id, role, offerable, now)
        candidates = 0
        # the order is lazy: it is left as soon as an allocation changes it
        for framework_id in sorter.iter_clients_except(blocked):
            candidates += 1
            framework = self._frameworks[framework_id]
            if not framework.active or role in framework.suppressed:
                continue
            if agent.gpus and "GPU_RESOURCES" not in framework.capabilities:
                continue
            mine = offerable
            if agent.revocable and "REVOCABLE_RESOURCES" not in framework.capabilities:
                mine = offerable.filter(lambda k: not is_revocable(k))
                if self._filters.is_filtered(framework_id, role, agent_id, mine, now):
                    continue
            if not is_allocatable(mine):
                continue
            if cycle is not None:
                cycle.allocated(role, mine)
            self._track(agent_id, framework_id, role, mine)
            return Allocation(framework_id, role, agent_id, mine)
        if not candidates and blocked:
            self._filters.note_all_blocked(agent_id, role, offerable, sorter.version)
        return None


    # ---------------------------------------------------------------- helpers
    def _ensure_role(self, role: str) -> None:
        if role not in self._framework_sorters:
            sorter = make_sorter(self._kind, self._seed + len(self._framework_sorters))
            sorter.set_total(self._total)
            self._framework_sorters[role] = sorter
            self._roles.add(role)

    def _forget_role_if_idle(self, role: str) -> None:
        """A role leaves the sorters once it has neither frameworks nor allocations."""
        sorter = self._framework_sorters.get(role)
        if sorter is None or sorter.clients() or self._roles_share_nonzero(role):
            return
        del self._framework_sorters[role]
        self._roles.remove(role)

    def _roles_share_nonzero(self, role: str) -> bool:
        return role in self._roles and bool(self._roles.allocation(role))

    def _track(self, agent_id: str, framework_id: str, role: str, resources: Resources) -> None:
        agent = self._agents[agent_id]
        agent.set(agent.total, agent.allocated + resources)
        scalars = resources.scalar_totals()
        add_scalars(self._allocated_unreserved.setdefault(top_level(role), {}), resources.unreserved().scalar_totals())
        self._ensure_role(role)
        self._roles.allocated(role, scalars)
        sorter = self._framework_sorters[role]
        if framework_id not in sorter:
            sorter.add(framework_id)
            if framework_id not in self._frameworks or role not in self._frameworks[framework_id].roles:
                sorter.deactivate(framework_id)  # counted, but never offered to through this role
        sorter.allocated(framework_id, scalars)

    def _change_total(self, agent: _Agent, resources: Resources, sign: int) -> None:
        add_scalars(self._total, resources.scalar_totals(), sign)
        for key, qty in resources.items():
            if key.role != UNRESERVED and isinstance(qty, int):
                add_scalars(self._reserved.setdefault(top_level(key.role), {}), {key.name: qty}, sign)
        agent.gpus = agent.total.scalar_milli("gpus") > 0
        agent.revocable = any(is_revocable(k) for k in agent.total)
        self._roles.set_total(self._total)
        for sorter in self._framework_sorters.values():
            sorter.set_total(self._total)


_NOTHING: Scalars = {}


class _QuotaCycle:
    """Per-cycle quota bookkeeping: unmet guarantees, required headroom and free unreserved."""

    def __init__(self, allocator: Allocator, agent_ids: list[str]) -> None:
        self.allocator = allocator
        self.free: Scalars = {}
        for agent_id in agent_ids:
            agent = allocator._agents[agent_id]
            add_scalars(self.free, agent.available().unreserved().scalar_totals())
        self.unmet: dict[str, Scalars] = {}
        self.required: Scalars = {}
        for role, quota in allocator._quotas.items():
            missing = unmet_guarantees(quota, allocator.consumed(role))
            if missing:
                self.unmet[role] = missing
                add_scalars(self.required, missing)

    def cut(self, role: str, offerable: Resources, guarantees_only: bool) -> Resources:
        """What ``role`` may take of ``offerable``: reserved parts whole; unreserved scalars cut to
        the quota limit, to the headroom others need and, in stage 1, to the unmet guarantee."""
        top = top_level(role)
        mine = self.unmet.get(top, _NOTHING)
        free = self.free
        # how much more unreserved of each name this role may take: what is free, less what
        # the other roles' unmet guarantees still need
        room = {name: free.get(name, 0) - need + mine.get(name, 0) for name, need in self.required.items()}
        if guarantees_only:
            for name, milli in mine.items():
                room[name] = min(room.get(name, milli), milli)
        quota = self.allocator._quotas.get(top)
        if quota is not None and quota.limits:
            consumed = self.allocator.consumed(top)
            for name, limit in quota.limits.items():
                left = limit - consumed.get(name, 0)
                room[name] = min(room.get(name, left), left)
        if not room:
            return offerable
        reserved = offerable.reserved().scalar_totals()  # never cut: they already count as consumed
        caps = {name: max(0, left) + reserved.get(name, 0) for name, left in room.items()}
        return cap_scalars(offerable, caps, keep=offerable.reserved())

    def allocated(self, role: str, resources: Resources) -> None:
        top = top_level(role)
        unreserved = resources.unreserved().scalar_totals()
        add_scalars(self.free, unreserved, -1)
        missing = self.unmet.get(top)
        if missing is None:
            return
        for name, milli in unreserved.items():
            need = missing.get(name)
            if need:  # names drop out at zero, so a cycle whose guarantees are met cuts nothing
                cover = min(milli, need)
                _take(missing, name, cover)
                _take(self.required, name, cover)
        if not missing:
            del self.unmet[top]


def _take(scalars: Scalars, name: str, milli: int) -> None:
    left = scalars[name] - milli
    if left > 0:
        scalars[name] = left
    else:
        del scalars[name]
