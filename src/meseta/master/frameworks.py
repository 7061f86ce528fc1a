"""Frameworks subscribing, failing over, updating and leaving (spec 1.3).

    SUBSCRIBE without id -> new framework (ACTIVE), SUBSCRIBED; with a known id -> resubscribed:
        the old stream gets ERROR "Framework failed over" and closes, its offers are rescinded;
        with an unknown id (a master failover) -> added under that id; removed id -> refused
    stream breaks -> DISCONNECTED: no offers, failover timer (FrameworkInfo.failover_timeout)
    failover timer fires while DISCONNECTED, TEARDOWN (scheduler or operator) -> removed:
        offers rescinded, every task killed (TASK_KILLED recorded), executors' resources back,
        SHUTDOWN_FRAMEWORK to its agents, COMPLETED
"""

from __future__ import annotations

from meseta.master.books import Books
from meseta.master.core import MasterCore
from meseta.master.effects import CancelTimer, CloseFrameworkStream, Effect, StartTimer, ToAgent, ToFramework
from meseta.master.maintenance import Maintenance
from meseta.master.offers import OfferDesk
from meseta.master.records import HEARTBEAT_INTERVAL_SECONDS, Framework
from meseta.master.tasks import TaskDesk
from meseta.master.updates import error_event
from meseta.master.validation import scheduler as calls
from meseta.master.validation.errors import CallRejected, SubscribeRefused
from meseta.master.validation.frameworks import FrameworkInfo
from meseta.protocol.ids import id_json
from meseta.protocol.task_states import TERMINAL

FROZEN_FIELDS = ("principal", "user", "checkpoint")  # UPDATE_FRAMEWORK may not change these


class FrameworkDesk:
    def __init__(self, core: MasterCore, books: Books, offers: OfferDesk, tasks: TaskDesk,
                 maintenance: Maintenance) -> None:
        self.core, self.books, self.offers, self.tasks, self.maintenance = core, books, offers, tasks, maintenance

    # ------------------------------------------------------------- the checks every call passes
    def connected(self, framework_id: str) -> Framework:
        framework = self.books.frameworks.get(framework_id)
        if framework is None:
            raise CallRejected(400, "Framework cannot be found")
        if not framework.connected:
            raise CallRejected(403, "Framework is not subscribed")
        return framework

    def check_stream(self, framework_id: str, stream_id: str | None) -> Framework:
        """The checks every non-SUBSCRIBE call passes first (spec 1.2, in order)."""
        framework = self.connected(framework_id)
        if stream_id is None:
            raise CallRejected(400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
        if stream_id != framework.stream_id:
            raise CallRejected(400, f"The stream ID '{stream_id}' included in this request didn't match "
                               f"the stream ID currently associated with framework ID {framework_id}")
        return framework

    # ------------------------------------------------------------- subscribing
    def subscribe(self, call: calls.Subscribe, stream_id: str, now: float) -> tuple[str, list[Effect]]:
        """SUBSCRIBE (new or again): (the framework's id, effects). Raises SubscribeRefused for an
        ERROR-then-close answer (before anything changes)."""
        if call.info is None:
            raise SubscribeRefused(call.refusal or "Invalid FrameworkInfo")
        if call.framework_id in self.books.frameworks.removed_ids:
            raise SubscribeRefused("Framework has been removed")
        existing = self.books.frameworks.get(call.framework_id) if call.framework_id is not None else None
        if existing is not None and call.info.principal != existing.info.get("principal") and not existing.recovered:
            raise SubscribeRefused("Changing the framework's principal is not allowed")
        self.core.count("messages_register_framework")
        if existing is None:  # new, or an unknown id (a master failover): rebuilt from what it says
            framework_id = call.framework_id or self.core.next_id("framework")
            return framework_id, self._add(call.info, stream_id, call.suppressed_roles, now, framework_id)
        return existing.id, self._resubscribe(existing, call.info, stream_id, call.suppressed_roles, now)

    def _add(self, info: FrameworkInfo, stream_id: str, suppressed: frozenset[str], now: float,
             framework_id: str) -> list[Effect]:
        framework = Framework(id=framework_id, info=info.with_id(framework_id), roles=info.roles,
                              capabilities=info.capabilities, registered_time=now,
                              failover_timeout=info.failover_timeout, stream_id=stream_id)
        self.books.frameworks.add(framework)
        self.core.allocator.add_framework(framework_id, framework.roles, suppressed, framework.capabilities)
        effects: list[Effect] = [self._subscribed(framework), CancelTimer(("failover", framework_id))]
        self.core.request_allocation(effects, now)
        return effects

    def _resubscribe(self, framework: Framework, info: FrameworkInfo, stream_id: str, suppressed: frozenset[str],
                     now: float) -> list[Effect]:
        old = framework.info
        effects: list[Effect] = []
        if framework.stream_id is not None and framework.connected:
            effects.append(error_event(framework.id, "Framework failed over"))
            effects.append(CloseFrameworkStream(framework.id, framework.stream_id))
        effects += self.offers.rescind_framework(framework, notify=False)
        kept = {} if framework.recovered else {k: old[k] for k in ("user", "checkpoint") if old.get(k) is not None}
        self._set_info(framework, {**info.with_id(framework.id), **kept}, info)
        self.books.frameworks.resubscribed(framework, stream_id, now)
        allocator = self.core.allocator
        allocator.set_framework_active(framework.id, True)
        allocator.revive(framework.id, set(framework.roles) - suppressed)
        if suppressed:
            allocator.suppress(framework.id, suppressed)
        effects += [self._subscribed(framework), CancelTimer(("failover", framework.id))]
        self.core.request_allocation(effects, now)
        return effects

    def _set_info(self, framework: Framework, raw: dict[str, object], info: FrameworkInfo) -> None:
        self.books.frameworks.set_info(framework, dict(raw), info.roles, info.capabilities, info.failover_timeout)
        self.core.allocator.update_framework(framework.id, framework.roles, framework.capabilities)

    def _subscribed(self, framework: Framework) -> ToFramework:
        return ToFramework(framework.id, {"type": "SUBSCRIBED", "subscribed": {
            "framework_id": id_json(framework.id),
            "heartbeat_interval_seconds": HEARTBEAT_INTERVAL_SECONDS,
            "master_info": self.core.master_info,
        }})

    def update(self, framework_id: str, call: calls.UpdateFramework, now: float) -> list[Effect]:
        framework = self.connected(framework_id)
        if call.info.id != framework_id:
            raise CallRejected(400, "'framework_info.id' must equal 'framework_id'")
        for frozen in FROZEN_FIELDS:
            if call.info.raw.get(frozen) != framework.info.get(frozen):
                raise CallRejected(400, f"Updating 'framework_info.{frozen}' is not supported")
        self._set_info(framework, call.info.raw, call.info)
        suppressed = call.suppressed_roles
        self.core.allocator.revive(framework.id, set(framework.roles) - suppressed)
        if suppressed:
            self.core.allocator.suppress(framework.id, suppressed & set(framework.roles))
        effects = self.offers.rescind_framework(
            framework, notify=True, only=lambda o: o.role not in framework.roles or o.role in suppressed)
        self.core.request_allocation(effects, now)
        return effects

    # ------------------------------------------------------------- leaving
    def disconnected(self, framework_id: str, stream_id: str, now: float) -> list[Effect]:
        framework = self.books.frameworks.get(framework_id)
        if framework is None or framework.stream_id != stream_id or not framework.connected:
            return []
        self.books.frameworks.disconnected(framework, now)
        self.core.allocator.set_framework_active(framework_id, False)
        effects = self.offers.rescind_framework(framework, notify=False)
        effects.append(StartTimer(("failover", framework_id), now + framework.failover_timeout))
        return effects

    def failover_timed_out(self, framework_id: str, now: float) -> list[Effect]:
        framework = self.books.frameworks.get(framework_id)
        if framework is None or framework.connected:
            return []
        return self.remove(framework, now)

    def remove(self, framework: Framework, now: float) -> list[Effect]:
        effects: list[Effect] = self.offers.rescind_framework(framework, notify=False)
        if framework.stream_id is not None and framework.connected:
            effects.append(CloseFrameworkStream(framework.id, framework.stream_id))
        frameworks = self.books.frameworks
        agent_ids = {t.agent_id for t in framework.tasks.values()} | set(framework.executors)
        for agent_id in sorted(agent_ids):
            if self.books.agents.get(agent_id) is not None:
                effects.append(ToAgent(agent_id, {"type": "SHUTDOWN_FRAMEWORK", "framework_id": id_json(framework.id)}))
        for task in list(framework.tasks.values()):
            self.tasks.release(task)
            if task.state not in TERMINAL:
                frameworks.set_state(task, "TASK_KILLED", update_state=task.status_update_state,
                                     uuid=task.status_update_uuid,
                                     why=("REASON_FRAMEWORK_REMOVED", f"Framework {framework.id} removed"))
            self.tasks.complete(framework, task)
        for agent_id, executors in framework.executors.items():
            for record in executors.values():
                self.core.allocator.recover(framework.id, record.role, agent_id, record.resources)
        self.core.allocator.remove_framework(framework.id)
        self.maintenance.forget_framework(framework.id)
        frameworks.complete(framework, now)
        effects.append(CancelTimer(("failover", framework.id)))
        self.core.request_allocation(effects, now)
        return effects
