"""Reservations and persistent volumes as the master applies them.

Two ways in, one bookkeeping::

    ACCEPT with RESERVE | UNRESERVE | CREATE | DESTROY       (on offered resources, in order)
    RESERVE_RESOURCES | UNRESERVE_RESOURCES | CREATE_VOLUMES | DESTROY_VOLUMES   (operator API:
        the agent's offers are rescinded first, then the free resources must hold the source)
                 |
                 v
    agent.total changes; the allocator sees the new total (and, for offers, the converted
    allocation); the agent is sent CHECKPOINT_RESOURCES with every dynamic reservation and
    volume it holds, writes them under <work_dir>/meta and makes the volume directories.

A known agent that re-registers is sent the master's view again (the master is authoritative);
after a master failover the agent's checkpointed view rebuilds the master's.
"""

from __future__ import annotations

from typing import Any

from meseta.core.reservations import (
    Unavailable,
    apply_create,
    apply_destroy,
    apply_reserve,
    apply_unreserve,
    checkpointed,
)
from meseta.core.resources import ResourceError, Resources
from meseta.master.books import Books
from meseta.master.core import MasterCore
from meseta.master.effects import Effect, ToAgent
from meseta.master.offers import OfferDesk
from meseta.master.records import Agent, Framework
from meseta.master.validation import operator as ops
from meseta.master.validation import scheduler as calls
from meseta.master.validation.errors import CallRejected

OPERATOR_KINDS = {"RESERVE_RESOURCES": "RESERVE", "UNRESERVE_RESOURCES": "UNRESERVE",
                  "CREATE_VOLUMES": "CREATE", "DESTROY_VOLUMES": "DESTROY"}


def checkpoint_message(agent: Agent) -> dict[str, Any]:
    return {"type": "CHECKPOINT_RESOURCES", "resources": checkpointed(agent.total).to_json()}


def _transform(kind: str, pool: Resources, given: Resources, agent: Agent, role: str | None,
               in_use: Resources) -> Resources:
    if kind == "RESERVE":
        return apply_reserve(pool, given, role)
    if kind == "UNRESERVE":
        return apply_unreserve(pool, given, in_use)
    if kind == "CREATE":
        return apply_create(pool, given, agent.total)
    return apply_destroy(pool, given, in_use)


class ReservationOperations:
    def __init__(self, core: MasterCore, books: Books, offers: OfferDesk) -> None:
        self.core, self.books, self.offers = core, books, offers

    # ------------------------------------------------------------- offer operations
    def apply_offer_operation(self, framework: Framework, agent: Agent, role: str, pool: Resources,
                              operation: calls.OfferOperation) -> tuple[Resources, list[Effect]]:
        """One RESERVE/UNRESERVE/CREATE/DESTROY inside ACCEPT; an invalid one is dropped (the
        offered resources stay as they were), as Mesos drops operations that fail validation."""
        kind = operation.kind
        try:
            if operation.resources is None:
                raise ResourceError(operation.problem or "invalid resources")
            new_pool = _transform(kind, pool, operation.resources, agent, role, Resources())
        except ResourceError as exc:
            self.core.count("invalid_operations")
            self.core.log_problem(f"{kind} from framework {framework.id} dropped: {exc}")
            return pool, []
        self.core.count(f"messages_{kind.lower()}")
        total = agent.total - pool + new_pool
        self.core.allocator.convert_allocation(framework.id, role, agent.id, pool, new_pool, total)
        agent.total = total
        return new_pool, [ToAgent(agent.id, checkpoint_message(agent))]

    # ------------------------------------------------------------- operator calls
    def apply_operator_call(self, call: ops.AgentResources, now: float) -> list[Effect]:
        """RESERVE_RESOURCES & co.; raises CallRejected (400 unknown agent, 409 cannot apply)."""
        agent = self.books.agents.get(call.agent_id)
        if agent is None:
            raise CallRejected(400, f"No agent found with ID '{call.agent_id}'")
        if agent.drain_info is not None:
            raise CallRejected(409, f"Agent '{call.agent_id}' is draining")
        offered = sum((o.resources for o in self.books.offers.of_agent(agent.id)), Resources())
        in_use = self.core.allocator.allocated_on(agent.id) - offered
        kind = OPERATOR_KINDS[call.kind]
        try:
            if kind in ("RESERVE", "CREATE"):
                total = in_use + _transform(kind, agent.total - in_use, call.resources, agent, None, in_use)
            else:
                total = _transform(kind, agent.total, call.resources, agent, None, in_use)
        except Unavailable as exc:
            raise CallRejected(409, str(exc)) from None
        except ResourceError as exc:
            raise CallRejected(400, str(exc)) from None
        effects = self.offers.rescind_agent(agent.id)  # offered resources come back before the change
        agent.total = total
        self.core.allocator.update_agent(agent.id, total)
        effects.append(ToAgent(agent.id, checkpoint_message(agent)))
        self.core.request_allocation(effects, now)
        return effects
