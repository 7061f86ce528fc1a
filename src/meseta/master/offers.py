"""Offers: made from the allocator's decisions, rescinded, declined; REVIVE and SUPPRESS.

    allocation run -> Allocation(framework, agent, role, resources) -> Offer filed in the OfferBook
        -> OFFERS event (one per framework per run); with --offer-timeout, a timer per offer
    an offer leaves the book by exactly one way:
        ACCEPT (meseta.master.launch)       its resources go to tasks, the rest back (filtered)
        DECLINE                              back to the allocator with the framework's filter
        rescind (agent gone, framework gone, timeout, quota, reservation change)
                                             back unfiltered; RESCIND tells the framework
"""

from __future__ import annotations

import random
from typing import Any

from meseta.alloc.allocator import Allocation
from meseta.master.books import Books
from meseta.master.core import MasterCore
from meseta.master.effects import Effect, StartTimer, ToFramework
from meseta.master.records import Framework, Offer
from meseta.master.schedule import MaintenanceSchedule
from meseta.protocol.ids import id_json


class OfferDesk:
    def __init__(self, core: MasterCore, books: Books, schedule: MaintenanceSchedule, seed: int = 0) -> None:
        self.core, self.books, self.schedule = core, books, schedule
        self._rng = random.Random(seed)

    # ------------------------------------------------------------- making offers
    def allocate(self, now: float, everyone: bool = True) -> list[Effect]:
        """One allocation run, of every agent or (``everyone`` False) of those whose resources
        changed since the last run: every decision becomes an offer; OFFERS per framework."""
        agents = None if everyone else self.core.allocation_candidates()
        self.core.allocation_ran()
        if agents is not None and not agents:
            return []  # a run of all agents came first
        by_framework: dict[str, list[dict[str, Any]]] = {}
        for decision in self.core.allocator.allocate(now, self._rng, agents):
            by_framework.setdefault(decision.framework_id, []).append(self._make(decision))
        effects: list[Effect] = []
        timeout = self.core.config.offer_timeout
        for framework_id, offers in by_framework.items():
            effects.append(ToFramework(framework_id, {"type": "OFFERS", "offers": {"offers": offers}}))
            if timeout is not None:
                effects += [StartTimer(("offer-timeout", o["id"]["value"]), now + timeout) for o in offers]
        return effects

    def _make(self, decision: Allocation) -> dict[str, Any]:
        offer = Offer(self.core.next_id("offer"), decision.framework_id, decision.agent_id, decision.role,
                      decision.resources)
        self.books.offers.add(offer)
        return self.offer_json(offer)

    def offer_json(self, offer: Offer) -> dict[str, Any]:
        agent = self.books.agents.registered[offer.agent_id]
        framework = self.books.frameworks.by_id[offer.framework_id]
        executors = framework.executors.get(offer.agent_id, {})
        out: dict[str, Any] = {
            "id": id_json(offer.id),
            "framework_id": id_json(offer.framework_id),
            "agent_id": id_json(offer.agent_id),
            "hostname": agent.hostname,
            "url": {
                "scheme": "http",
                "address": {"hostname": agent.hostname, "ip": agent.hostname, "port": agent.port},
                "path": "/slave(1)",
            },
            "resources": offer.resources.to_json(allocation_role=offer.role),
            "allocation_info": {"role": offer.role},
        }
        if agent.info.get("attributes"):
            out["attributes"] = agent.info["attributes"]
        if executors:
            out["executor_ids"] = [id_json(e) for e in sorted(executors)]
        window = self.schedule.window_of(agent)
        if window is not None:
            out["unavailability"] = window.unavailability()
        return out

    # ------------------------------------------------------------- taking offers back
    def take(self, offer: Offer) -> None:
        """Out of the book: its resources are the caller's to place (ACCEPT, DECLINE)."""
        self.books.offers.remove(offer)

    def rescind(self, offer: Offer, notify: bool) -> list[Effect]:
        self.books.offers.remove(offer)
        self.core.allocator.recover(offer.framework_id, offer.role, offer.agent_id, offer.resources)
        if not notify:
            return []
        return [ToFramework(offer.framework_id, {"type": "RESCIND", "rescind": {"offer_id": id_json(offer.id)}})]

    def rescind_agent(self, agent_id: str) -> list[Effect]:
        """Every offer on the agent, each framework told."""
        effects: list[Effect] = []
        for offer in self.books.offers.of_agent(agent_id):
            effects += self.rescind(offer, notify=True)
        return effects

    def rescind_framework(self, framework: Framework, notify: bool, only: Any = None) -> list[Effect]:
        effects: list[Effect] = []
        for offer in self.books.offers.of_framework(framework.id):
            if only is None or only(offer):
                effects += self.rescind(offer, notify)
        return effects

    def timed_out(self, offer_id: str) -> list[Effect]:
        offer = self.books.offers.get(offer_id)
        return self.rescind(offer, notify=True) if offer is not None else []

    # ------------------------------------------------------------- framework calls
    def decline(self, framework: Framework, offer_ids: tuple[str, ...], refuse: float | None,
                now: float) -> list[Effect]:
        self.core.count("messages_decline_offers")
        effects: list[Effect] = []
        for offer_id in offer_ids:
            offer = self.books.offers.get(offer_id)
            if offer is not None and offer.framework_id == framework.id:
                self.take(offer)
                self.core.allocator.recover(framework.id, offer.role, offer.agent_id, offer.resources, refuse, now)
                self.core.request_allocation(effects, now, offer.agent_id)
        return effects

    def revive(self, framework: Framework, roles: tuple[str, ...], now: float) -> list[Effect]:
        self.core.count("messages_revive_offers")
        if roles and not set(roles) & set(framework.roles):
            return []  # only roles this framework does not have: nothing to revive
        self.core.allocator.revive(framework.id, [r for r in roles if r in framework.roles])
        effects: list[Effect] = []
        self.core.request_allocation(effects, now)
        return effects

    def suppress(self, framework: Framework, roles: tuple[str, ...]) -> list[Effect]:
        self.core.count("messages_suppress_offers")
        if roles and not set(roles) & set(framework.roles):
            return []
        self.core.allocator.suppress(framework.id, [r for r in roles if r in framework.roles])
        return []
