"""The master's decisions, dispatched: ``handle_*(record, ..., now) -> list[Effect]``, no I/O, no clock.

The actor (``meseta.master.actor``) feeds it records parsed at the edge (``meseta.master.validation``),
agent messages and timer firings, and executes the effects it returns. Every handler runs to
completion before the next starts, and raises CallRejected only before it has changed anything.

Who owns what (``docs/design.md`` draws it)::

    books      FrameworkBook, AgentBook, OfferBook: the only code that changes the soft state
    journal    what the books changed, while operator subscribers watch: take_operator_events()
    core       identity, configuration, allocator, metrics, id minting, the allocation schedule
    desks      framework_desk (subscriptions)   offer_desk (offers, DECLINE, REVIVE, SUPPRESS)
               launch_desk (ACCEPT)             task_desk (updates, kills, acks, reconciliation)
               agent_desk (registration, pings) admission / eviction / partitions (agents in, out)
               maintenance, reservations, settings (operator)
    each desk sees the books and the core (and the desks below it), never this machine

Agent lifecycle (registry first, then act; details in master/agents.py and master/partitions.py)::

    REGISTER -> (registry admits) -> REGISTERED --stream breaks--> disconnected (no offers)
       ^                                 |  max_agent_ping_timeouts missed PONGs (rate-limited)
       |                                 v
       |      (registry marks) UNREACHABLE: offers rescinded, tasks UNREACHABLE (partition-aware,
       |                                 |  kept) or LOST, FAILURE
       +--- (registry admits) <-- REREGISTER: partition-aware tasks adopted, others shut down
    recovered (admitted before a failover) --REREGISTER--> REREGISTERED
                                           --agent_reregister_timeout--> UNREACHABLE (or Abort)
    MARK_AGENT_GONE -> (registry marks) GONE: tasks GONE_BY_OPERATOR or LOST, SHUTDOWN; never back
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from meseta.alloc.allocator import Allocator
from meseta.master.admission import Admission
from meseta.master.agents import AgentLifecycle
from meseta.master.books import AgentBook, Books, FrameworkBook, OfferBook
from meseta.master.core import ALLOCATE_BATCH, Core, MasterConfig
from meseta.master.effects import (
    AdmitAgent,
    Effect,
    MarkAgentGone,
    MarkAgentUnreachable,
    OperatorEvent,
    RegistryOperation,
    SaveSetting,
    StartTimer,
)
from meseta.master.eviction import Eviction
from meseta.master.frameworks import FrameworkDesk
from meseta.master.journal import Journal
from meseta.master.launch import LaunchDesk
from meseta.master.maintenance import Maintenance
from meseta.master.offers import OfferDesk
from meseta.master.operator_views import events as operator_events
from meseta.master.partitions import MARK_TIMER, REREGISTER_TIMER, Partitions
from meseta.master.reservations import ReservationOperations
from meseta.master.schedule import MaintenanceSchedule
from meseta.master.settings import Settings
from meseta.master.tasks import TaskDesk
from meseta.master.validation import agents as agent_calls
from meseta.master.validation import operator as ops
from meseta.master.validation import scheduler as calls
from meseta.master.validation.errors import CallRejected

STORED_SETTINGS = ("weights", "quota", "maintenance")


class MasterMachine:
    def __init__(
        self,
        master_info: dict[str, Any],
        config: MasterConfig | None = None,
        *,
        admitted_agents: Mapping[str, dict[str, Any]] | None = None,
        unreachable_agents: Mapping[str, float] | None = None,
        gone_agents: Mapping[str, float] | None = None,
        settings: Mapping[str, Any] | None = None,
        weights: Mapping[str, float] | None = None,
        role_sorter: str = "drf",
        framework_sorter: str = "drf",
        seed: int = 0,
    ) -> None:
        config = config or MasterConfig()
        allocator = Allocator(config.allocation_interval, role_sorter, framework_sorter, seed)
        self.core = core = Core(master_info, config, allocator)
        self.journal = journal = Journal()
        self.books = books = Books(
            FrameworkBook(journal),
            AgentBook(admitted=dict(admitted_agents or {}), unreachable=dict(unreachable_agents or {}),
                      gone=dict(gone_agents or {}), on_active=allocator.set_agent_active, journal=journal),
            OfferBook())
        self.schedule = schedule = MaintenanceSchedule()
        self.offer_desk = offers = OfferDesk(core, books, schedule, seed)
        self.task_desk = tasks = TaskDesk(core, books)
        eviction = Eviction(core, books, offers)
        admission = Admission(core, books, tasks)
        self.partitions = partitions = Partitions(core, books, eviction)
        self.maintenance = maintenance = Maintenance(core, books, schedule, offers, eviction, partitions)
        reservations = ReservationOperations(core, books, offers)
        self.settings = Settings(core, books, offers, maintenance)
        self.agent_desk = AgentLifecycle(core, books, admission, partitions, offers, tasks, schedule)
        self.framework_desk = FrameworkDesk(core, books, offers, tasks, maintenance)
        self.launch_desk = LaunchDesk(core, books, offers, tasks, reservations)
        self.reservations = reservations
        self._load_settings(dict(settings or {}), dict(weights or {}))

    def _load_settings(self, stored: dict[str, Any], weights: dict[str, float]) -> None:
        if weights:  # --weights first; weights stored by the operator API win
            stored["weights"] = {**weights, **(stored.get("weights") or {})}
        for name in STORED_SETTINGS:
            if name in stored:
                self.settings.apply(SaveSetting(name, stored[name]), 0.0)
        self.core.reset_schedule()  # nothing is scheduled yet at start-up

    @property
    def master_info(self) -> dict[str, Any]:
        return self.core.master_info

    def handle_start(self, now: float) -> list[Effect]:
        """The master starts leading (the actor calls this once): recovered agents now have
        agent_reregister_timeout to re-register."""
        return self.partitions.start(now)

    # ================================================================ frameworks (scheduler API)
    def handle_subscribe(self, call: calls.Subscribe, stream_id: str, now: float) -> tuple[str, list[Effect]]:
        """SUBSCRIBE (new or again): (the framework's id, effects). Raises SubscribeRefused for an
        ERROR-then-close answer."""
        return self.framework_desk.subscribe(call, stream_id, now)

    def handle_framework_disconnected(self, framework_id: str, stream_id: str, now: float) -> list[Effect]:
        return self.framework_desk.disconnected(framework_id, stream_id, now)

    def check_stream(self, framework_id: str, stream_id: str | None) -> None:
        """The checks every non-SUBSCRIBE call passes first (spec 1.2); CallRejected otherwise."""
        self.framework_desk.check_stream(framework_id, stream_id)

    def handle_call(self, framework_id: str, call: calls.SchedulerCall, now: float) -> list[Effect]:
        """Any scheduler call but SUBSCRIBE, from a subscribed framework."""
        framework = self.framework_desk.connected(framework_id)
        handler = self._call_handlers.get(type(call))
        if handler is None:
            return []  # REQUEST, operation acknowledgements: nothing to do
        return handler(self, framework.id, call, now)

    def _teardown(self, framework_id: str, call: calls.Teardown, now: float) -> list[Effect]:
        self.core.count("messages_unregister_framework")
        return self.framework_desk.remove(self.books.frameworks.by_id[framework_id], now)

    def _accept(self, framework_id: str, call: calls.Accept, now: float) -> list[Effect]:
        return self.launch_desk.accept(self.books.frameworks.by_id[framework_id], call, now)

    def _decline(self, framework_id: str, call: calls.Decline, now: float) -> list[Effect]:
        return self.offer_desk.decline(self.books.frameworks.by_id[framework_id], call.offer_ids,
                                       call.refuse_seconds, now)

    def _revive(self, framework_id: str, call: calls.Revive, now: float) -> list[Effect]:
        return self.offer_desk.revive(self.books.frameworks.by_id[framework_id], call.roles, now)

    def _suppress(self, framework_id: str, call: calls.Suppress, now: float) -> list[Effect]:
        return self.offer_desk.suppress(self.books.frameworks.by_id[framework_id], call.roles)

    def _inverse_answer(self, framework_id: str, call: calls.InverseAnswer, now: float) -> list[Effect]:
        return self.maintenance.answer(framework_id, call, now)

    def _kill(self, framework_id: str, call: calls.Kill, now: float) -> list[Effect]:
        return self.task_desk.kill(self.books.frameworks.by_id[framework_id], call)

    def _shutdown(self, framework_id: str, call: calls.Shutdown, now: float) -> list[Effect]:
        return self.task_desk.shutdown(self.books.frameworks.by_id[framework_id], call)

    def _acknowledge(self, framework_id: str, call: calls.Acknowledge, now: float) -> list[Effect]:
        return self.task_desk.acknowledge(self.books.frameworks.by_id[framework_id], call)

    def _reconcile(self, framework_id: str, call: calls.Reconcile, now: float) -> list[Effect]:
        return self.task_desk.reconcile(self.books.frameworks.by_id[framework_id], call)

    def _message(self, framework_id: str, call: calls.FrameworkMessage, now: float) -> list[Effect]:
        return self.task_desk.framework_message(self.books.frameworks.by_id[framework_id], call)

    def _update_framework(self, framework_id: str, call: calls.UpdateFramework, now: float) -> list[Effect]:
        return self.framework_desk.update(framework_id, call, now)

    _call_handlers: dict[type, Callable[..., list[Effect]]] = {
        calls.Teardown: _teardown,
        calls.Accept: _accept,
        calls.Decline: _decline,
        calls.Revive: _revive,
        calls.Suppress: _suppress,
        calls.InverseAnswer: _inverse_answer,
        calls.Kill: _kill,
        calls.Shutdown: _shutdown,
        calls.Acknowledge: _acknowledge,
        calls.Reconcile: _reconcile,
        calls.FrameworkMessage: _message,
        calls.UpdateFramework: _update_framework,
    }

    # ================================================================ agents
    def handle_register_agent(self, call: agent_calls.Registration, stream_id: str,
                              now: float) -> tuple[str, list[Effect]]:
        """REGISTER: (the agent id it will have, effects: the registry write of its admission)."""
        return self.agent_desk.register(call, stream_id, now)

    def handle_reregister_agent(self, call: agent_calls.Reregistration, stream_id: str, now: float) -> list[Effect]:
        return self.agent_desk.reregister(call, stream_id, now)

    def handle_agent_disconnected(self, agent_id: str, stream_id: str, now: float) -> list[Effect]:
        return self.agent_desk.disconnected(agent_id, stream_id, now)

    def handle_agent_call(self, agent_id: str, call: agent_calls.AgentCall, now: float) -> list[Effect]:
        """A call on the agent's registered stream (the endpoint checked the stream id)."""
        if isinstance(call, agent_calls.StatusUpdate):
            effects = self.task_desk.status_update(agent_id, call, now)
            agent = self.books.agents.get(agent_id)
            framework = self.books.frameworks.get(call.framework_id)
            task = framework.tasks.get(call.task_id) if framework is not None else None
            if agent is not None and task is not None and task.agent_id == agent_id:
                effects += self.maintenance.check_drained(agent, now)
            return effects
        if isinstance(call, agent_calls.Pong):
            return self.agent_desk.pong(agent_id)
        if isinstance(call, agent_calls.ExecutorMessage):
            return self.task_desk.executor_message(agent_id, call)
        return self.task_desk.executor_exited(agent_id, call, now)

    def handle_persisted(self, operation: RegistryOperation, now: float) -> list[Effect]:
        """A registry write is done: what waited for it happens now."""
        if isinstance(operation, SaveSetting):
            return self.settings.apply(operation, now)
        if isinstance(operation, AdmitAgent):
            admitted = self.agent_desk.admitted(operation, now)
            if admitted is not None:
                return admitted
            readmission = self.partitions.take_readmission(operation)
            if readmission is None:
                return []
            parked, lost = readmission
            return self.agent_desk.readmit(parked, lost, now)
        if isinstance(operation, MarkAgentUnreachable):
            return self.partitions.on_unreachable(operation, now)
        if isinstance(operation, MarkAgentGone):
            return self.partitions.on_gone(operation, now)
        return []

    # ================================================================ operator
    def prepare_setting(self, call: ops.Setting) -> SaveSetting:
        """A settings change, checked against the state: the registry writes it, then
        ``handle_persisted`` applies it. Changes nothing."""
        return self.settings.prepare(call)

    def handle_operator_action(self, call: ops.AgentAction, now: float) -> list[Effect]:
        """The operator calls that act on agents and frameworks (MARK_AGENT_GONE acts once its
        registry write is done)."""
        if isinstance(call, ops.AgentResources):
            return self.reservations.apply_operator_call(call, now)
        if isinstance(call, ops.Drain):
            return self.maintenance.drain(call, now)
        if isinstance(call, ops.TeardownFramework):
            framework = self.books.frameworks.get(call.framework_id)
            if framework is None:
                raise CallRejected(400, f"No framework found with ID '{call.framework_id}'")
            return self.framework_desk.remove(framework, now)
        if call.kind == "DEACTIVATE_AGENT":
            return self.maintenance.deactivate(call.agent_id)
        if call.kind == "REACTIVATE_AGENT":
            return self.maintenance.reactivate(call.agent_id, now)
        return self.partitions.mark_gone(call.agent_id, now)

    # ================================================================ operator event stream
    def watch_operator_events(self, watched: bool) -> None:
        """Whether any operator subscriber listens: only then do the books note their changes."""
        self.journal.watched = watched
        if not watched:
            self.journal.take()

    def take_operator_events(self, now: float) -> list[Effect]:
        """The operator events of what changed since the last call (the actor calls this after
        every handler), in the order the changes were made."""
        if not self.journal.notes:
            return []
        return [OperatorEvent(e) for e in operator_events(self, self.journal.take(), now)]

    # ================================================================ time
    def handle_allocate(self, now: float, everyone: bool = True) -> list[Effect]:
        return self.offer_desk.allocate(now, everyone) + self.maintenance.send_inverse_offers(now)

    def handle_timer(self, key: tuple[str, ...], now: float) -> list[Effect]:
        kind = key[0]
        if kind == "allocate":
            return self.handle_allocate(now, everyone=False)
        if kind == "allocate-batch":
            return [*self.handle_allocate(now), StartTimer(ALLOCATE_BATCH, now + self.core.config.allocation_interval)]
        if kind == "ping":
            return self.agent_desk.ping(key[1], now)
        if key == MARK_TIMER:
            return self.partitions.pump(now)
        if key == REREGISTER_TIMER:
            return self.partitions.recovery_timed_out(now)
        if kind == "offer-timeout":
            return self.offer_desk.timed_out(key[1])
        if kind == "failover":
            return self.framework_desk.failover_timed_out(key[1], now)
        return []
