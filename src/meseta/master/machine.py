"""The master's decisions: ``handle_*(..., now) -> list[Effect]``, no I/O, no clock.

The actor (``meseta.master.actor``) feeds it HTTP calls, agent messages and timer firings,
and executes the effects it returns. Every handler runs to completion before the next starts.

Framework lifecycle::

    SUBSCRIBE -> connected+active --stream breaks--> disconnected --failover_timeout--> removed
                       ^                                  |
                       +------- SUBSCRIBE with id --------+          TEARDOWN -> removed

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

import random
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from meseta.alloc.allocator import Allocation, Allocator
from meseta.core.resources import EMPTY, Resources
from meseta.master import validation
from meseta.master.agents import AgentLifecycle
from meseta.master.launch import (
    check_task,
    group_problem,
    launched_tasks,
    task_id_of,
    with_allocation,
)
from meseta.master.maintenance import MaintenanceControl
from meseta.master.maintenance import duration_seconds as validation_duration
from meseta.master.operator import OperatorSettings
from meseta.master.partitions import MARK_TIMER, REREGISTER_TIMER, Partitions
from meseta.master.reservations import OFFER_OPERATIONS, ReservationOperations, checkpoint_message
from meseta.master.state import (
    HEARTBEAT_INTERVAL_SECONDS,
    MAX_COMPLETED_FRAMEWORKS,
    Agent,
    CallRejected,
    CancelTimer,
    CloseFrameworkStream,
    Effect,
    ExecutorRecord,
    Framework,
    Offer,
    RegistryOperation,
    SaveSetting,
    StartTimer,
    SubscribeRefused,
    Task,
    ToAgent,
    ToFramework,
)
from meseta.master.updates import error_event, master_update, reconcile_known, reconcile_unknown
from meseta.protocol.ids import id_json
from meseta.protocol.task_states import TERMINAL

ALLOCATE_NOW = ("allocate",)  # an allocation soon after something changed (coalesced)
ALLOCATE_BATCH = ("allocate-batch",)  # and one every allocation_interval, as Mesos batches them



class MasterMachine:
    def __init__(
        self,
        master_info: dict[str, Any],
        *,
        allocation_interval: float = 1.0,
        agent_ping_timeout: float = 15.0,
        max_agent_ping_timeouts: int = 5,
        admitted_agents: Mapping[str, dict[str, Any]] | None = None,
        settings: Mapping[str, Any] | None = None,
        weights: Mapping[str, float] | None = None,
        role_sorter: str = "drf",
        framework_sorter: str = "drf",
        offer_timeout: float | None = None,
        seed: int = 0,
        agent_reregister_timeout: float = 600.0,
        recovery_agent_removal_limit: float = 1.0,
        agent_removal_rate_limit: tuple[int, float] | None = None,
        unreachable_agents: Mapping[str, float] | None = None,
        gone_agents: Mapping[str, float] | None = None,
    ) -> None:
        self.master_info = master_info
        self.master_id: str = master_info["id"]
        self.allocation_interval = allocation_interval
        self.agent_ping_timeout = agent_ping_timeout
        self.max_agent_ping_timeouts = max_agent_ping_timeouts
        self.allocator = Allocator(allocation_interval, role_sorter, framework_sorter, seed)
        self.offer_timeout = offer_timeout
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: deque[Framework] = deque(maxlen=MAX_COMPLETED_FRAMEWORKS)
        self.removed_framework_ids: set[str] = set()
        self.agents: dict[str, Agent] = {}
        self.gone_agents: dict[str, float] = dict(gone_agents or {})  # never admitted again
        self.unreachable_agents: dict[str, float] = {
            a: t for a, t in (unreachable_agents or {}).items() if a not in self.gone_agents}
        # admitted in the registry, not re-registered with this master yet
        self.recovered_agents: dict[str, dict[str, Any]] = {
            a: info for a, info in (admitted_agents or {}).items()
            if a not in self.gone_agents and a not in self.unreachable_agents}
        self.pending_admissions: dict[str, tuple[dict[str, Any], str]] = {}
        self.offers: dict[str, Offer] = {}
        self.metrics: dict[str, int] = {}
        self._rng = random.Random(seed)
        self.agent_lifecycle = AgentLifecycle(self)
        self.partitions = Partitions(self, agent_reregister_timeout, recovery_agent_removal_limit,
                                     agent_removal_rate_limit)
        self.reservations = ReservationOperations(self)
        self.maintenance = MaintenanceControl(self)
        self.settings = OperatorSettings(self)
        self.problems: deque[str] = deque(maxlen=100)  # recent dropped operations, for operators
        self.counters = {"framework": 0, "offer": 0, "agent": 0}
        self._allocation_pending = False
        self._batching = False
        stored = dict(settings or {})
        if weights:  # --weights first; weights stored by the operator API win
            stored["weights"] = {**weights, **(stored.get("weights") or {})}
        for name in ("weights", "quota", "maintenance"):
            if name in stored:
                self.settings.apply(SaveSetting(name, stored[name]), 0.0)
        self._allocation_pending = self._batching = False  # nothing is scheduled yet at start-up

    def handle_start(self, now: float) -> list[Effect]:
        """The master starts leading (the actor calls this once): recovered agents now have
        agent_reregister_timeout to re-register."""
        return self.partitions.start(now)

    # ================================================================ frameworks

    def handle_subscribe(
        self,
        framework_info: dict[str, Any],
        framework_id: str | None,
        stream_id: str,
        suppressed_roles: Iterable[str],
        now: float,
    ) -> list[Effect]:
        """SUBSCRIBE (new or re-subscribe). Raises SubscribeRefused for an ERROR-then-close answer."""
        problem = validation.framework_info_problem(framework_info)
        if problem:
            raise SubscribeRefused(problem)
        self.count("messages_register_framework")
        if framework_id is None:
            return self._add_framework(framework_info, stream_id, suppressed_roles, now)
        if framework_id in self.removed_framework_ids:
            raise SubscribeRefused("Framework has been removed")
        existing = self.frameworks.get(framework_id)
        if existing is None:  # unknown id: a master failover, so rebuild it from what it says
            return self._add_framework(framework_info, stream_id, suppressed_roles, now, framework_id)
        return self._resubscribe(existing, framework_info, stream_id, suppressed_roles, now)

    def _add_framework(
        self,
        info: dict[str, Any],
        stream_id: str,
        suppressed: Iterable[str],
        now: float,
        framework_id: str | None = None,
    ) -> list[Effect]:
        if framework_id is None:
            framework_id = f"{self.master_id}-{self.counters['framework']:04d}"
            self.counters["framework"] += 1
        info = {**info, "id": id_json(framework_id)}
        framework = Framework(
            id=framework_id,
            info=info,
            roles=validation.framework_roles(info),
            capabilities=validation.capability_names(info),
            registered_time=now,
            stream_id=stream_id,
            connected=True,
            active=True,
        )
        self.frameworks[framework_id] = framework
        self.allocator.add_framework(framework_id, framework.roles, suppressed, framework.capabilities)
        effects: list[Effect] = [self._subscribed(framework), CancelTimer(("failover", framework_id))]
        self.request_allocation(effects, now)
        return effects

    def _resubscribe(
        self, framework: Framework, info: dict[str, Any], stream_id: str, suppressed: Iterable[str], now: float
    ) -> list[Effect]:
        old = framework.info
        if info.get("principal") != old.get("principal") and not framework.recovered:
            raise SubscribeRefused("Changing the framework's principal is not allowed")
        effects: list[Effect] = []
        if framework.stream_id is not None and framework.connected:
            effects.append(error_event(framework.id, "Framework failed over"))
            effects.append(CloseFrameworkStream(framework.id, framework.stream_id))
        effects += self._rescind_framework_offers(framework, notify=False)
        keep = {"user": old.get("user"), "checkpoint": old.get("checkpoint")} if not framework.recovered else {}
        framework.info = {**info, **{k: v for k, v in keep.items() if v is not None}, "id": id_json(framework.id)}
        self._apply_roles(framework)
        framework.stream_id, framework.connected, framework.active = stream_id, True, True
        framework.recovered = False
        framework.reregistered_time = now
        self.allocator.set_framework_active(framework.id, True)
        suppressed = set(suppressed)
        self.allocator.revive(framework.id, set(framework.roles) - suppressed)
        if suppressed:
            self.allocator.suppress(framework.id, suppressed)
        effects += [self._subscribed(framework), CancelTimer(("failover", framework.id))]
        self.request_allocation(effects, now)
        return effects

    def _apply_roles(self, framework: Framework) -> None:
        framework.roles = validation.framework_roles(framework.info)
        framework.capabilities = validation.capability_names(framework.info)
        self.allocator.update_framework(framework.id, framework.roles, framework.capabilities)

    def _subscribed(self, framework: Framework) -> ToFramework:
        return ToFramework(
            framework.id,
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": id_json(framework.id),
                    "heartbeat_interval_seconds": HEARTBEAT_INTERVAL_SECONDS,
                    "master_info": self.master_info,
                },
            },
        )

    def handle_framework_disconnected(self, framework_id: str, stream_id: str, now: float) -> list[Effect]:
        framework = self.frameworks.get(framework_id)
        if framework is None or framework.stream_id != stream_id or not framework.connected:
            return []
        framework.connected = framework.active = False
        framework.unregistered_time = now
        self.allocator.set_framework_active(framework_id, False)
        effects = self._rescind_framework_offers(framework, notify=False)
        timeout = float(framework.info.get("failover_timeout", 0) or 0)
        effects.append(StartTimer(("failover", framework_id), now + timeout))
        return effects

    def handle_teardown(self, framework_id: str, now: float) -> list[Effect]:
        framework = self._connected_framework(framework_id)
        self.count("messages_unregister_framework")
        return self._remove_framework(framework, now)

    def _remove_framework(self, framework: Framework, now: float) -> list[Effect]:
        effects: list[Effect] = self._rescind_framework_offers(framework, notify=False)
        if framework.stream_id is not None and framework.connected:
            effects.append(CloseFrameworkStream(framework.id, framework.stream_id))
        agent_ids = {t.agent_id for t in framework.tasks.values()} | set(framework.executors)
        for agent_id in agent_ids:
            if agent_id in self.agents:
                effects.append(ToAgent(agent_id, {"type": "SHUTDOWN_FRAMEWORK", "framework_id": id_json(framework.id)}))
        for task in list(framework.tasks.values()):
            self.release_task(task)
            if task.state not in TERMINAL:
                task.state = "TASK_KILLED"
            self.complete_task(framework, task)
        for agent_id, executors in framework.executors.items():
            for record in executors.values():
                self.allocator.recover(framework.id, record.role, agent_id, record.resources)
        framework.executors.clear()
        framework.connected = framework.active = False
        framework.unregistered_time = now
        self.allocator.remove_framework(framework.id)
        self.maintenance.forget_framework(framework.id)
        del self.frameworks[framework.id]
        self.completed_frameworks.append(framework)
        self.removed_framework_ids.add(framework.id)
        effects.append(CancelTimer(("failover", framework.id)))
        self.request_allocation(effects, now)
        return effects

    def handle_update_framework(
        self, framework_id: str, info: dict[str, Any], suppressed: Iterable[str], now: float
    ) -> list[Effect]:
        framework = self._connected_framework(framework_id)
        problem = validation.framework_info_problem(info)
        if problem:
            raise CallRejected(400, problem)
        if (info.get("id") or {}).get("value") != framework_id:
            raise CallRejected(400, "'framework_info.id' must equal 'framework_id'")
        for frozen in ("principal", "user", "checkpoint"):
            if info.get(frozen) != framework.info.get(frozen):
                raise CallRejected(400, f"Updating 'framework_info.{frozen}' is not supported")
        framework.info = dict(info)
        self._apply_roles(framework)
        suppressed = set(suppressed)
        self.allocator.revive(framework.id, set(framework.roles) - suppressed)
        if suppressed:
            self.allocator.suppress(framework.id, suppressed & set(framework.roles))
        effects = self._rescind_framework_offers(
            framework, notify=True, only=lambda o: o.role not in framework.roles or o.role in suppressed
        )
        self.request_allocation(effects, now)
        return effects

    def _connected_framework(self, framework_id: str) -> Framework:
        framework = self.frameworks.get(framework_id)
        if framework is None:
            raise CallRejected(400, "Framework cannot be found")
        if not framework.connected:
            raise CallRejected(403, "Framework is not subscribed")
        return framework

    def check_stream(self, framework_id: str, stream_id: str | None) -> Framework:
        """The checks every non-SUBSCRIBE call passes first (spec 1.2, in order)."""
        framework = self._connected_framework(framework_id)
        if stream_id is None:
            raise CallRejected(400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
        if stream_id != framework.stream_id:
            raise CallRejected(400, f"The stream ID '{stream_id}' included in this request didn't match "
                               f"the stream ID currently associated with framework ID {framework_id}")
        return framework

    # ================================================================ offers

    def handle_allocate(self, now: float) -> list[Effect]:
        self._allocation_pending = False
        self.count("allocator_runs")
        effects: list[Effect] = []
        by_framework: dict[str, list[dict[str, Any]]] = {}
        for decision in self.allocator.allocate(now, self._rng):
            by_framework.setdefault(decision.framework_id, []).append(self._make_offer(decision))
        for framework_id, offers in by_framework.items():
            effects.append(ToFramework(framework_id, {"type": "OFFERS", "offers": {"offers": offers}}))
            if self.offer_timeout is not None:
                effects += [StartTimer(("offer-timeout", o["id"]["value"]), now + self.offer_timeout) for o in offers]
        return effects + self.maintenance.send_inverse_offers(now)

    def _make_offer(self, decision: Allocation) -> dict[str, Any]:
        offer_id = f"{self.master_id}-O{self.counters['offer']}"
        self.counters["offer"] += 1
        offer = Offer(offer_id, decision.framework_id, decision.agent_id, decision.role, decision.resources)
        self.offers[offer_id] = offer
        framework, agent = self.frameworks[decision.framework_id], self.agents[decision.agent_id]
        framework.offers.add(offer_id)
        agent.offers.add(offer_id)
        return self.offer_json(offer)

    def offer_json(self, offer: Offer) -> dict[str, Any]:
        agent = self.agents[offer.agent_id]
        executors = self.frameworks[offer.framework_id].executors.get(offer.agent_id, {})
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
        window = self.maintenance.window_of(agent)
        if window is not None:
            out["unavailability"] = window.unavailability()
        return out

    def _remove_offer(self, offer: Offer) -> None:
        self.offers.pop(offer.id, None)
        if offer.framework_id in self.frameworks:
            self.frameworks[offer.framework_id].offers.discard(offer.id)
        if offer.agent_id in self.agents:
            self.agents[offer.agent_id].offers.discard(offer.id)

    def rescind_offer(self, offer: Offer, notify: bool) -> list[Effect]:
        self._remove_offer(offer)
        self.allocator.recover(offer.framework_id, offer.role, offer.agent_id, offer.resources)
        if not notify:
            return []
        return [ToFramework(offer.framework_id, {"type": "RESCIND", "rescind": {"offer_id": id_json(offer.id)}})]

    def _rescind_framework_offers(self, framework: Framework, notify: bool, only: Any = None) -> list[Effect]:
        effects: list[Effect] = []
        for offer_id in sorted(framework.offers):
            offer = self.offers[offer_id]
            if only is None or only(offer):
                effects += self.rescind_offer(offer, notify)
        return effects

    def handle_decline(self, framework_id: str, offer_ids: list[str], refuse: float | None, now: float) -> list[Effect]:
        framework = self._connected_framework(framework_id)
        self.count("messages_decline_offers")
        for offer_id in offer_ids:
            offer = self.offers.get(offer_id)
            if offer is not None and offer.framework_id == framework.id:
                self._remove_offer(offer)
                self.allocator.recover(framework.id, offer.role, offer.agent_id, offer.resources, refuse, now)
        effects: list[Effect] = []
        self.request_allocation(effects, now)
        return effects

    def handle_revive(self, framework_id: str, roles: list[str], now: float) -> list[Effect]:
        framework = self._connected_framework(framework_id)
        self.count("messages_revive_offers")
        if roles and not set(roles) & set(framework.roles):
            return []  # only roles this framework does not have: nothing to revive
        self.allocator.revive(framework.id, [r for r in roles if r in framework.roles])
        effects: list[Effect] = []
        self.request_allocation(effects, now)
        return effects

    def handle_suppress(self, framework_id: str, roles: list[str], now: float) -> list[Effect]:
        framework = self._connected_framework(framework_id)
        self.count("messages_suppress_offers")
        if roles and not set(roles) & set(framework.roles):
            return []
        self.allocator.suppress(framework.id, [r for r in roles if r in framework.roles])
        return []

    def request_allocation(self, effects: list[Effect], now: float) -> None:
        if not self._allocation_pending:
            self._allocation_pending = True
            effects.append(StartTimer(ALLOCATE_NOW, now))
        if not self._batching:  # from the first change on, allocate every interval (expired filters)
            self._batching = True
            effects.append(StartTimer(ALLOCATE_BATCH, now + self.allocation_interval))

    # ================================================================ ACCEPT

    def handle_accept(
        self,
        framework_id: str,
        offer_ids: list[str],
        operations: list[dict[str, Any]],
        refuse: float | None,
        now: float,
    ) -> list[Effect]:
        framework = self._connected_framework(framework_id)
        self.count("messages_accept_offers")
        effects: list[Effect] = []
        offers, problem = self._validate_offers(framework, offer_ids)
        if problem is not None:
            for offer in offers:
                effects += self.rescind_offer(offer, notify=False)
            effects += self._drop_operations(framework, operations, f"Task launched with invalid offers: {problem}")
            self.request_allocation(effects, now)
            return effects
        agent = self.agents[offers[0].agent_id]
        role = offers[0].role
        pool = EMPTY
        for offer in offers:
            pool = pool + offer.resources
            self._remove_offer(offer)
        for operation in operations:
            pool, more = self._apply_operation(framework, agent, role, pool, operation, now)
            effects += more
        self.allocator.recover(framework.id, role, agent.id, pool, refuse, now)
        self.request_allocation(effects, now)
        return effects

    def _validate_offers(self, framework: Framework, offer_ids: list[str]) -> tuple[list[Offer], str | None]:
        found = [self.offers[o] for o in dict.fromkeys(offer_ids) if o in self.offers]
        mine = [o for o in found if o.framework_id == framework.id]
        if not offer_ids:
            return mine, "No offers specified"
        if len(set(offer_ids)) != len(offer_ids):
            return mine, "Duplicate offer ids"
        for offer_id in offer_ids:
            offer = self.offers.get(offer_id)
            if offer is None:
                return mine, f"Offer {offer_id} is no longer valid"
            if offer.framework_id != framework.id:
                return mine, f"Offer {offer_id} has invalid framework"
        if len({o.agent_id for o in mine}) > 1:
            return mine, "Aggregated offers must belong to one single agent"
        if len({o.role for o in mine}) > 1:
            return mine, "Aggregated offers must be allocated to the same role"
        return mine, None

    def _drop_operations(self, framework: Framework, operations: list[dict[str, Any]], message: str) -> list[Effect]:
        state = "TASK_DROPPED" if framework.partition_aware else "TASK_LOST"
        effects: list[Effect] = []
        for task in launched_tasks(operations):
            task_id = (task.get("task_id") or {}).get("value", "")
            effects.append(master_update(framework.id, str(task_id), state, "REASON_INVALID_OFFERS", message))
        return effects

    def _apply_operation(
        self, framework: Framework, agent: Agent, role: str, pool: Resources, operation: dict[str, Any], now: float
    ) -> tuple[Resources, list[Effect]]:
        kind = operation.get("type")
        if kind == "LAUNCH":
            effects: list[Effect] = []
            for task in (operation.get("launch") or {}).get("task_infos") or []:
                pool, more = self._launch_task(framework, agent, role, pool, task, now)
                effects += more
            return pool, effects
        if kind == "LAUNCH_GROUP":
            return self._launch_group(framework, agent, role, pool, operation.get("launch_group") or {}, now)
        if kind in OFFER_OPERATIONS:
            return self.reservations.apply_offer_operation(framework, agent, role, pool, operation)
        self.log_problem(f"operation type '{kind}' from framework {framework.id} is not supported; dropped")
        return pool, []

    def _launch_task(
        self, framework: Framework, agent: Agent, role: str, pool: Resources, task: dict[str, Any], now: float
    ) -> tuple[Resources, list[Effect]]:
        self.count("messages_launch_tasks")
        checked = check_task(framework, agent, pool, task)
        if isinstance(checked, str):
            task_id = str(((task.get("task_id") or {}) if isinstance(task, dict) else {}).get("value", ""))
            return pool, [master_update(framework.id, task_id, "TASK_ERROR", "REASON_TASK_INVALID", checked)]
        needed, executor = checked
        task = with_allocation(task, role)
        executor_id = ""
        if executor is not None:
            executor_id = executor["executor_id"]["value"]
            task["executor"] = executor
            self.add_executor(framework, agent, role, executor)
        self.add_task(framework, agent, role, task, executor_id)
        message = {"type": "RUN_TASK", "framework_info": framework.info, "task": task}
        return pool - needed, [ToAgent(agent.id, message)]

    def _launch_group(
        self, framework: Framework, agent: Agent, role: str, pool: Resources, group: dict[str, Any], now: float
    ) -> tuple[Resources, list[Effect]]:
        self.count("messages_launch_tasks")
        tasks = list((group.get("task_group") or {}).get("tasks") or [])
        executor = group.get("executor")
        problem = group_problem(framework, agent, pool, executor, tasks)
        if problem:
            effects: list[Effect] = [
                master_update(framework.id, task_id_of(t), "TASK_ERROR", "REASON_TASK_GROUP_INVALID", problem)
                for t in tasks
            ]
            return pool, effects
        assert isinstance(executor, dict)
        executor = with_allocation({**executor, "framework_id": id_json(framework.id)}, role)
        executor_id = executor["executor_id"]["value"]
        if executor_id not in framework.executors.get(agent.id, {}):
            pool = pool - Resources.from_json(executor.get("resources") or [])
            self.add_executor(framework, agent, role, executor)
        launched = []
        for raw in tasks:
            task = with_allocation(raw, role)
            pool = pool - Resources.from_json(task.get("resources") or [])
            self.add_task(framework, agent, role, task, executor_id)
            launched.append(task)
        message = {
            "type": "RUN_TASK_GROUP",
            "framework_info": framework.info,
            "executor": executor,
            "task_group": {"tasks": launched},
        }
        return pool, [ToAgent(agent.id, message)]

    def add_executor(self, framework: Framework, agent: Agent, role: str, executor: dict[str, Any]) -> None:
        executor_id = executor["executor_id"]["value"]
        per_agent = framework.executors.setdefault(agent.id, {})
        if executor_id not in per_agent:
            resources = Resources.from_json(executor.get("resources") or [])
            per_agent[executor_id] = ExecutorRecord(executor, resources, role)

    def add_task(
        self, framework: Framework, agent: Agent, role: str, info: dict[str, Any], executor_id: str
    ) -> Task:
        resources = Resources.from_json(info.get("resources") or [])
        task = Task(info, framework.id, agent.id, executor_id, role, resources)
        framework.tasks[task.task_id] = task
        agent.task_keys.add((framework.id, task.task_id))
        self.count("tasks_staging")
        return task

    # ================================================================ tasks

    def handle_kill(self, framework_id: str, task_id: str, kill_policy: Any, now: float) -> list[Effect]:
        framework = self._connected_framework(framework_id)
        self.count("messages_kill_task")
        task = framework.tasks.get(task_id)
        if task is None:
            return self._reconcile_unknown(framework, task_id, None)
        agent = self.agents.get(task.agent_id)
        if agent is None:
            return []
        message: dict[str, Any] = {"type": "KILL_TASK", "framework_id": id_json(framework.id),
                                   "task_id": id_json(task_id)}
        if kill_policy is not None:
            message["kill_policy"] = kill_policy
        if not agent.connected:  # Mesos retries the kill when the agent re-registers
            agent.pending_kills[(framework.id, task_id)] = message
            return []
        return [ToAgent(agent.id, message)]

    def handle_shutdown(self, framework_id: str, executor_id: str, agent_id: str, now: float) -> list[Effect]:
        framework = self._connected_framework(framework_id)
        if agent_id not in self.agents:
            return []
        message = {"type": "SHUTDOWN_EXECUTOR", "framework_id": id_json(framework.id),
                   "executor_id": id_json(executor_id)}
        return [ToAgent(agent_id, message)]

    def handle_acknowledge(self, framework_id: str, agent_id: str, task_id: str, uuid: str, now: float) -> list[Effect]:
        framework = self._connected_framework(framework_id)
        self.count("messages_status_update_acknowledgement")
        task = framework.tasks.get(task_id)
        if task is not None and task.status_update_uuid == uuid and task.status_update_state in TERMINAL:
            self.complete_task(framework, task)
        if agent_id not in self.agents:
            return []
        message = {
            "type": "ACKNOWLEDGE",
            "framework_id": id_json(framework.id),
            "task_id": id_json(task_id),
            "uuid": uuid,
        }
        return [ToAgent(agent_id, message)]

    def handle_reconcile(self, framework_id: str, tasks: list[tuple[str, str | None]], now: float) -> list[Effect]:
        framework = self._connected_framework(framework_id)
        self.count("messages_reconcile_tasks")
        if not tasks:
            known = [*framework.tasks.values(), *framework.unreachable_tasks.values()]
            return [reconcile_known(framework.id, t) for t in known]
        effects: list[Effect] = []
        for task_id, agent_id in tasks:
            task = framework.tasks.get(task_id)
            if task is not None:
                effects.append(reconcile_known(framework.id, task))
            else:
                effects += self._reconcile_unknown(framework, task_id, agent_id)
        return effects

    def _reconcile_unknown(self, framework: Framework, task_id: str, agent_id: str | None) -> list[Effect]:
        unreachable = framework.unreachable_tasks.get(task_id)
        if unreachable is not None:
            return [reconcile_known(framework.id, unreachable)]
        standing = self.partitions.standing(agent_id)
        if standing is None:
            return []  # its agent may still re-register after a master failover: say nothing yet
        since = self.unreachable_agents.get(agent_id) if agent_id is not None else None
        return [reconcile_unknown(framework.id, framework.partition_aware, task_id, agent_id, standing, since)]

    def handle_framework_message(
        self, framework_id: str, agent_id: str, executor_id: str, data: str, now: float
    ) -> list[Effect]:
        framework = self._connected_framework(framework_id)
        self.count("messages_framework_to_executor")
        if agent_id not in self.agents:
            return []
        message = {
            "type": "FRAMEWORK_MESSAGE",
            "framework_id": id_json(framework.id),
            "executor_id": id_json(executor_id),
            "data": data,
        }
        return [ToAgent(agent_id, message)]

    # ================================================================ status updates from agents

    def handle_status_update(self, agent_id: str, update: dict[str, Any], now: float) -> list[Effect]:
        """An update forwarded by an agent's status update manager (carries a uuid)."""
        status = update["status"]
        framework_id = update["framework_id"]["value"]
        framework = self.frameworks.get(framework_id)
        if framework is None or agent_id not in self.agents:
            self.count("invalid_status_updates")
            return []
        self.count("valid_status_updates")
        task = framework.tasks.get(status["task_id"]["value"])
        effects: list[Effect] = []
        if task is not None:
            effects += self._apply_status(framework, task, status, update.get("latest_state"), now)
            effects += self.maintenance.check_drained(self.agents[agent_id], now)
        if framework.connected:
            status = {**status, "agent_id": id_json(agent_id)}
            effects.append(ToFramework(framework.id, {"type": "UPDATE", "update": {"status": status}}))
        return effects

    def _apply_status(
        self, framework: Framework, task: Task, status: dict[str, Any], latest: str | None, now: float
    ) -> list[Effect]:
        previous = task.state
        task.state = latest or status["state"]
        task.status_update_state = status["state"]
        task.status_update_uuid = status.get("uuid")
        task.latest_status = status
        entry = {"state": status["state"], "timestamp": status.get("timestamp", now)}
        if "healthy" in status:
            entry["healthy"] = status["healthy"]
        task.statuses.append(entry)
        if previous != task.state:
            self.count(task.state.lower())
        effects: list[Effect] = []
        if task.state in TERMINAL and not task.released:
            self.release_task(task)
            self.request_allocation(effects, now)
        return effects

    def release_task(self, task: Task) -> None:
        if not task.released:
            task.released = True
            self.allocator.recover(task.framework_id, task.role, task.agent_id, task.resources)

    def complete_task(self, framework: Framework, task: Task) -> None:
        framework.tasks.pop(task.task_id, None)
        framework.completed_tasks.append(task)
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.task_keys.discard((framework.id, task.task_id))

    def handle_executor_message(
        self, agent_id: str, framework_id: str, executor_id: str, data: str, now: float
    ) -> list[Effect]:
        framework = self.frameworks.get(framework_id)
        self.count("messages_executor_to_framework")
        if framework is None or not framework.connected:
            return []
        payload = {"agent_id": id_json(agent_id), "executor_id": id_json(executor_id), "data": data}
        return [ToFramework(framework_id, {"type": "MESSAGE", "message": payload})]

    def handle_executor_exited(
        self, agent_id: str, framework_id: str, executor_id: str, status: int, custom: bool, now: float
    ) -> list[Effect]:
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return []
        record = framework.executors.get(agent_id, {}).pop(executor_id, None)
        effects: list[Effect] = []
        if record is not None:
            self.allocator.recover(framework_id, record.role, agent_id, record.resources)
            self.request_allocation(effects, now)
        if custom and framework.connected:
            failure = {"agent_id": id_json(agent_id), "executor_id": id_json(executor_id), "status": status}
            effects.append(ToFramework(framework_id, {"type": "FAILURE", "failure": failure}))
        return effects

    # ================================================================ agents (master/agents.py)

    def handle_register_agent(self, info: dict[str, Any], stream_id: str, now: float) -> list[Effect]:
        return self.agent_lifecycle.register(info, stream_id, now)

    def handle_persisted(self, operation: RegistryOperation, now: float) -> list[Effect]:
        if isinstance(operation, SaveSetting):
            return self.settings.apply(operation, now)
        return self.agent_lifecycle.persisted(operation, now)

    def handle_reregister_agent(
        self,
        info: dict[str, Any],
        tasks: list[dict[str, Any]],
        executors: list[dict[str, Any]],
        frameworks: list[dict[str, Any]],
        stream_id: str,
        now: float,
    ) -> list[Effect]:
        return self.agent_lifecycle.reregister(info, tasks, executors, frameworks, stream_id, now)

    def handle_agent_disconnected(self, agent_id: str, stream_id: str, now: float) -> list[Effect]:
        return self.agent_lifecycle.disconnected(agent_id, stream_id, now)

    def handle_pong(self, agent_id: str, now: float) -> list[Effect]:
        return self.agent_lifecycle.pong(agent_id, now)

    # ================================================================ timers

    def handle_timer(self, key: tuple[str, ...], now: float) -> list[Effect]:
        kind = key[0]
        if kind == "allocate":
            return self.handle_allocate(now)
        if kind == "allocate-batch":
            return [*self.handle_allocate(now), StartTimer(ALLOCATE_BATCH, now + self.allocation_interval)]
        if kind == "ping":
            return self.agent_lifecycle.ping(key[1], now)
        if key == MARK_TIMER:
            return self.partitions.pump(now)
        if key == REREGISTER_TIMER:
            return self.partitions.recovery_timed_out(now)
        if kind == "offer-timeout":
            offer = self.offers.get(key[1])
            return self.rescind_offer(offer, notify=True) if offer is not None else []
        if kind == "failover":
            framework = self.frameworks.get(key[1])
            if framework is not None and not framework.connected:
                return self._remove_framework(framework, now)
        return []

    # ================================================================ helpers

    def count(self, name: str) -> None:
        self.metrics[name] = self.metrics.get(name, 0) + 1

    def log_problem(self, message: str) -> None:
        self.problems.append(message)

    def refresh_agent_active(self, agent: Agent) -> None:
        """Offers come from an agent only while it is connected and not deactivated or draining."""
        self.allocator.set_agent_active(agent.id, agent.connected and not agent.deactivated)

    # ================================================================ operator calls (master/operator.py,
    # master/reservations.py, master/maintenance.py)

    def handle_operator_call(self, kind: str, payload: dict[str, Any], now: float) -> list[Effect]:
        """The operator calls that act on agents and frameworks (MARK_AGENT_GONE acts once its registry
        write is done); CallRejected on bad input."""
        agent_id = str(((payload.get("agent_id") or {}) if isinstance(payload, dict) else {}).get("value", ""))
        if kind in ("RESERVE_RESOURCES", "UNRESERVE_RESOURCES"):
            return self.reservations.apply_operator_call(kind, agent_id, payload.get("resources"), now)
        if kind in ("CREATE_VOLUMES", "DESTROY_VOLUMES"):
            return self.reservations.apply_operator_call(kind, agent_id, payload.get("volumes"), now)
        if kind == "DRAIN_AGENT":
            grace = payload.get("max_grace_period")
            seconds = None if grace is None else validation_duration(grace, "drain_agent.max_grace_period")
            mark_gone = payload.get("mark_gone", False)
            if not isinstance(mark_gone, bool):
                raise CallRejected(400, "drain_agent.mark_gone must be a boolean")
            return self.maintenance.drain(agent_id, seconds, mark_gone, now)
        if kind == "DEACTIVATE_AGENT":
            return self.maintenance.deactivate(agent_id)
        if kind == "REACTIVATE_AGENT":
            return self.maintenance.reactivate(agent_id, now)
        if kind == "MARK_AGENT_GONE":
            return self.partitions.mark_gone(agent_id, now)
        if kind == "TEARDOWN":
            framework_id = str(((payload.get("framework_id") or {})).get("value", ""))
            framework = self.frameworks.get(framework_id)
            if framework is None:
                raise CallRejected(400, f"No framework found with ID '{framework_id}'")
            return self._remove_framework(framework, now)
        raise CallRejected(501, f"Operator call '{kind}' is not implemented")

    def handle_inverse_offer_answer(
        self, framework_id: str, ids: list[str], accept: bool, refuse: float | None, now: float
    ) -> list[Effect]:
        framework = self._connected_framework(framework_id)
        self.maintenance.answer(framework.id, ids, accept, refuse, now)
        return []

    def agent_checkpoint(self, agent: Agent) -> ToAgent:
        return ToAgent(agent.id, checkpoint_message(agent))


