"""Reservations and persistent volumes as the master applies them (pure, composed into the machine).

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

from typing import TYPE_CHECKING, Any

from meseta.core.reservations import (
    Unavailable,
    apply_create,
    apply_destroy,
    apply_reserve,
    apply_unreserve,
    checkpointed,
)
from meseta.core.resources import ResourceError, Resources, parse_json
from meseta.master.state import Agent, CallRejected, Effect, Framework, ToAgent

if TYPE_CHECKING:
    from meseta.master.machine import MasterMachine

OFFER_OPERATIONS = ("RESERVE", "UNRESERVE", "CREATE", "DESTROY")
OPERATOR_CALLS = ("RESERVE_RESOURCES", "UNRESERVE_RESOURCES", "CREATE_VOLUMES", "DESTROY_VOLUMES")


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
    def __init__(self, machine: MasterMachine) -> None:
        self.m = machine

    # ------------------------------------------------------------- offer operations
    def apply_offer_operation(
        self, framework: Framework, agent: Agent, role: str, pool: Resources, operation: dict[str, Any]
    ) -> tuple[Resources, list[Effect]]:
        """One RESERVE/UNRESERVE/CREATE/DESTROY inside ACCEPT; an invalid one is dropped (the
        offered resources stay as they were), as Mesos drops operations that fail validation."""
        kind = str(operation.get("type"))
        body = operation.get(kind.lower()) or {}
        field = "volumes" if kind in ("CREATE", "DESTROY") else "resources"
        try:
            given = parse_json(body.get(field) or [])
            new_pool = _transform(kind, pool, given, agent, role, Resources())
        except (ResourceError, AttributeError, TypeError) as exc:
            self.m.count("invalid_operations")
            self.m.log_problem(f"{kind} from framework {framework.id} dropped: {exc}")
            return pool, []
        self.m.count(f"messages_{kind.lower()}")
        total = agent.total - pool + new_pool
        self.m.allocator.convert_allocation(framework.id, role, agent.id, pool, new_pool, total)
        agent.total = total
        return new_pool, [ToAgent(agent.id, checkpoint_message(agent))]

    # ------------------------------------------------------------- operator calls
    def apply_operator_call(self, kind: str, agent_id: str, given_json: Any, now: float) -> list[Effect]:
        """RESERVE_RESOURCES & co.; raises CallRejected (400 bad input, 409 cannot apply)."""
        agent = self.m.agents.get(agent_id)
        if agent is None:
            raise CallRejected(400, f"No agent found with ID '{agent_id}'")
        if agent.drain_info is not None:
            raise CallRejected(409, f"Agent '{agent_id}' is draining")
        if not isinstance(given_json, list):
            raise CallRejected(400, "'resources' (or 'volumes') must be a list of Resource objects")
        try:
            given = parse_json(given_json)
        except ResourceError as exc:
            raise CallRejected(400, str(exc)) from None
        offered = sum((self.m.offers[o].resources for o in agent.offers), Resources())
        in_use = self.m.allocator.allocated_on(agent.id) - offered
        offer_kind = {"RESERVE_RESOURCES": "RESERVE", "UNRESERVE_RESOURCES": "UNRESERVE",
                      "CREATE_VOLUMES": "CREATE", "DESTROY_VOLUMES": "DESTROY"}[kind]
        try:
            if offer_kind in ("RESERVE", "CREATE"):
                total = in_use + _transform(offer_kind, agent.total - in_use, given, agent, None, in_use)
            else:
                total = _transform(offer_kind, agent.total, given, agent, None, in_use)
        except Unavailable as exc:
            raise CallRejected(409, str(exc)) from None
        except ResourceError as exc:
            raise CallRejected(400, str(exc)) from None
        effects: list[Effect] = []
        for offer_id in sorted(agent.offers):  # offered resources come back before the change
            effects += self.m.rescind_offer(self.m.offers[offer_id], notify=True)
        agent.total = total
        self.m.allocator.update_agent(agent.id, total)
        effects.append(ToAgent(agent.id, checkpoint_message(agent)))
        self.m.request_allocation(effects, now)
        return effects
