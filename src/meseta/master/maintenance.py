"""Maintenance and draining as the master decides them.

Machine modes (maintenance primitives, keyed by ``{hostname, ip}``)::

    UP --(in a schedule window)--> DRAINING --START_MAINTENANCE--> DOWN --STOP_MAINTENANCE--> UP
           offers carry ``unavailability``;      agents removed,          (and out of the
           frameworks with tasks there get       cannot register          schedule)
           INVERSE_OFFERS, answered with ACCEPT_/DECLINE_INVERSE_OFFERS

Agent draining (DRAIN_AGENT)::

    active --DRAIN_AGENT--> DRAINING (no offers; the agent kills every task, grace capped by
    max_grace_period, reason REASON_AGENT_DRAINING) --last task ends--> DRAINED
    --mark_gone--> MARK_AGENT_GONE (meseta.master.partitions);  REACTIVATE_AGENT ends either state.

Schedule and DOWN machines are operator settings (persisted as ``maintenance``); drain state
is soft and lives on the agent record.
"""

from __future__ import annotations

from typing import Any

from meseta.master.books import Books
from meseta.master.core import MasterCore
from meseta.master.effects import Effect, SaveSetting, ToAgent, ToFramework
from meseta.master.eviction import Eviction
from meseta.master.offers import OfferDesk
from meseta.master.partitions import Partitions
from meseta.master.records import Agent, AgentMode, InverseOffer
from meseta.master.schedule import MaintenanceSchedule
from meseta.master.validation import operator as ops
from meseta.master.validation import scheduler as calls
from meseta.master.validation.errors import CallRejected
from meseta.master.validation.fields import NANOS
from meseta.protocol.ids import id_json

DEFAULT_DECLINE_SECONDS = 5.0  # an inverse offer declined without filters is asked again after this


class Maintenance:
    def __init__(self, core: MasterCore, books: Books, schedule: MaintenanceSchedule, offers: OfferDesk,
                 eviction: Eviction, partitions: Partitions) -> None:
        self.core, self.books, self.schedule = core, books, schedule
        self.offers, self.eviction, self.partitions = offers, eviction, partitions

    # ------------------------------------------------------------- settings (two phases, see settings.py)
    def prepare(self, call: ops.Schedule | ops.Machines) -> SaveSetting:
        """The registry value for a schedule change, checked against the current schedule."""
        schedule = self.schedule
        if isinstance(call, ops.Schedule):
            scheduled = {k for w in call.windows for k in w.machines}
            for key in schedule.down:
                if key not in scheduled:
                    raise CallRejected(400, f"machine {ops.machine_json(key)} is DOWN and must stay in the schedule")
            return SaveSetting("maintenance", schedule.setting_value(call.windows))
        keys = set(call.machines)
        if call.kind == "START_MAINTENANCE":
            for key in sorted(keys - schedule.scheduled()):
                raise CallRejected(400, f"machine {ops.machine_json(key)} is not in the maintenance schedule")
            return SaveSetting("maintenance", schedule.setting_value(down=schedule.down | keys))
        for key in sorted(keys - schedule.down):
            raise CallRejected(400, f"machine {ops.machine_json(key)} is not DOWN")
        windows = tuple(ops.Window(tuple(k for k in w.machines if k not in keys), w.start_ns, w.duration_ns)
                        for w in schedule.windows)
        return SaveSetting("maintenance", schedule.setting_value(tuple(w for w in windows if w.machines),
                                                                 schedule.down - keys))

    def apply(self, value: dict[str, Any], now: float) -> list[Effect]:
        """Install a persisted schedule: newly DOWN agents go, DRAINING ones get inverse offers."""
        windows = ops.parse_schedule(value.get("schedule") or {})
        down = frozenset(ops.machine_key(m, "down") for m in value.get("down") or [])
        newly_down = self.schedule.install(windows, down)
        effects: list[Effect] = []
        for agent in list(self.books.agents):
            if self.schedule.machine_of(agent) in newly_down:
                effects += self.eviction.remove(agent, now, "REASON_AGENT_REMOVED",
                                                "Agent's machine is DOWN for maintenance")
        for inverse in list(self.books.offers.inverse.values()):  # machines no longer draining
            holder = self.books.agents.get(inverse.agent_id)
            if holder is None or self.schedule.window_of(holder) is None:
                self.books.offers.remove_inverse(inverse.id)
                effects.append(ToFramework(inverse.framework_id, {
                    "type": "RESCIND_INVERSE_OFFER",
                    "rescind_inverse_offer": {"inverse_offer_id": id_json(inverse.id)}}))
        effects += self.send_inverse_offers(now)
        self.core.request_allocation(effects, now)
        return effects

    # ------------------------------------------------------------- inverse offers
    def send_inverse_offers(self, now: float) -> list[Effect]:
        """One outstanding inverse offer per (framework, draining agent the framework uses)."""
        if not self.schedule.windows:
            return []  # no maintenance scheduled: nothing to walk (this runs after every allocation)
        outstanding = {(i.framework_id, i.agent_id) for i in self.books.offers.inverse.values()}
        effects: list[Effect] = []
        for agent in self.books.agents:
            window = self.schedule.window_of(agent)
            if window is None:
                continue
            key = self.schedule.machine_of(agent)
            for framework_id in sorted(self.books.frameworks.users_of(agent.id)):
                framework = self.books.frameworks.get(framework_id)
                answered = self.schedule.answer_of(key, framework_id)
                if (framework is None or not framework.connected or (framework_id, agent.id) in outstanding
                        or (answered and answered.get("until", 0) > now)):
                    continue
                inverse = InverseOffer(self.core.next_id("inverse"), framework_id, agent.id)
                self.books.offers.add_inverse(inverse)
                effects.append(ToFramework(framework_id, {"type": "INVERSE_OFFERS", "inverse_offers": {
                    "inverse_offers": [{
                        "id": id_json(inverse.id),
                        "url": {"scheme": "http", "address": {"hostname": agent.hostname, "ip": agent.hostname,
                                                              "port": agent.port}, "path": "/slave(1)"},
                        "framework_id": id_json(framework_id),
                        "agent_id": id_json(agent.id),
                        "unavailability": window.unavailability(),
                        "resources": [],
                    }]}}))
        return effects

    def answer(self, framework_id: str, call: calls.InverseAnswer, now: float) -> list[Effect]:
        for inverse_id in call.inverse_offer_ids:
            inverse = self.books.offers.inverse.get(inverse_id)
            if inverse is None or inverse.framework_id != framework_id:
                continue
            self.books.offers.remove_inverse(inverse_id)
            agent = self.books.agents.get(inverse.agent_id)
            key = self.schedule.machine_of(agent) if agent is not None else None
            if key is None:
                continue
            refuse = call.refuse_seconds
            seconds = DEFAULT_DECLINE_SECONDS if refuse is None else max(refuse, self.core.config.allocation_interval)
            self.schedule.record_answer(key, framework_id, {
                "status": "ACCEPT" if call.accept else "DECLINE",
                "framework_id": id_json(framework_id),
                "timestamp": {"nanoseconds": round(now * NANOS)},
                "until": float("inf") if call.accept else now + seconds,
            })
        return []

    def forget_framework(self, framework_id: str) -> None:
        for inverse in self.books.offers.inverse_of_framework(framework_id):
            self.books.offers.remove_inverse(inverse.id)

    # ------------------------------------------------------------- draining, deactivation
    def drain(self, call: ops.Drain, now: float) -> list[Effect]:
        agent = self._agent(call.agent_id)
        config: dict[str, Any] = {"mark_gone": call.mark_gone}
        if call.max_grace_seconds is not None:
            config["max_grace_period"] = {"nanoseconds": round(call.max_grace_seconds * NANOS)}
        self.books.agents.set_mode(agent, AgentMode.DRAINING, config)
        effects = self.offers.rescind_agent(agent.id)
        effects.append(ToAgent(agent.id, {"type": "DRAIN", "drain_config": config}))
        return effects + self.check_drained(agent, now)

    def check_drained(self, agent: Agent, now: float) -> list[Effect]:
        """DRAINING -> DRAINED once nothing runs there; with mark_gone the agent then goes."""
        if agent.mode is not AgentMode.DRAINING:
            return []
        if any(not task.released for task in self.books.frameworks.tasks_on(agent.id)):
            return []
        self.books.agents.set_mode(agent, AgentMode.DRAINED)
        if (agent.drain_config or {}).get("mark_gone"):
            return self.partitions.mark_gone(agent.id, now)
        return []

    def reactivate(self, agent_id: str, now: float) -> list[Effect]:
        agent = self._agent(agent_id)
        self.books.agents.set_mode(agent, AgentMode.ACTIVE)
        effects: list[Effect] = [ToAgent(agent.id, {"type": "DRAIN", "drain_config": None})]
        self.core.request_allocation(effects, now)
        return effects

    def deactivate(self, agent_id: str) -> list[Effect]:
        agent = self._agent(agent_id)
        if agent.mode is AgentMode.ACTIVE:
            self.books.agents.set_mode(agent, AgentMode.DEACTIVATED)
        return self.offers.rescind_agent(agent.id)

    def _agent(self, agent_id: str) -> Agent:
        agent = self.books.agents.get(agent_id)
        if agent is None:
            raise CallRejected(400, f"No agent found with ID '{agent_id}'")
        return agent
