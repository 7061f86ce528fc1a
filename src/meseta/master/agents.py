"""Agents joining, staying and leaving, as the master decides it (pure, composed into the machine).

    REGISTER -> registry write (Persist AdmitAgent) -> persisted: REGISTERED, pings start
    REREGISTER (known, or admitted before a master restart) -> REREGISTERED, tasks adopted
    REREGISTER (unreachable) -> registry write (Persist AdmitAgent) -> persisted: readmit()
    REREGISTER (gone, or never admitted) -> SHUTDOWN, stream closed
    stream breaks -> disconnected: no offers, its offers rescinded, uncheckpointed tasks LOST
    max_agent_ping_timeouts missed PONGs -> unreachable (meseta.master.partitions)
    machine DOWN for maintenance -> removed (RemoveAgent): tasks GONE_BY_OPERATOR / LOST, SHUTDOWN

``evict`` is the one way out of ``machine.agents`` (unreachable, gone, removed): offers rescinded,
resources out of the allocator, tasks told, FAILURE to every connected framework.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from meseta.core.resources import Resources, parse_json
from meseta.master import validation
from meseta.master.launch import allocation_role
from meseta.master.partitions import Reregistration, keep_unreachable, shutdown_agent
from meseta.master.state import (
    AdmitAgent,
    Agent,
    CallRejected,
    CancelTimer,
    CloseAgentStream,
    Effect,
    Framework,
    MarkAgentGone,
    MarkAgentUnreachable,
    Persist,
    RegistryOperation,
    RemoveAgent,
    StartTimer,
    Task,
    ToAgent,
    ToFramework,
)
from meseta.master.updates import master_update
from meseta.protocol.ids import id_json
from meseta.protocol.task_states import TERMINAL

if TYPE_CHECKING:
    from meseta.master.machine import MasterMachine



class AgentLifecycle:
    """Reads and changes the machine's agents, and uses its task and offer bookkeeping."""

    def __init__(self, machine: MasterMachine) -> None:
        self.m = machine

    def register(self, info: dict[str, Any], stream_id: str, now: float) -> list[Effect]:
        if self.m.maintenance.is_down(info):
            raise CallRejected(403, "Agent's machine is DOWN for maintenance")
        self.m.count("slave_registrations")
        agent_id = f"{self.m.master_id}-S{self.m.counters['agent']}"
        self.m.counters["agent"] += 1
        info = {**info, "id": id_json(agent_id)}
        self.m.pending_admissions[agent_id] = (info, stream_id)
        return [Persist(AdmitAgent(agent_id, info))]

    def persisted(self, operation: RegistryOperation, now: float) -> list[Effect]:
        if isinstance(operation, AdmitAgent):
            pending = self.m.pending_admissions.pop(operation.agent_id, None)
            if pending is None:
                return self.m.partitions.on_readmitted(operation, now)
            info, stream_id = pending
            return self._admit(operation.agent_id, info, stream_id, now, reregistered=False)
        if isinstance(operation, MarkAgentUnreachable):
            return self.m.partitions.on_unreachable(operation, now)
        if isinstance(operation, MarkAgentGone):
            return self.m.partitions.on_gone(operation, now)
        return []

    def reregister(
        self,
        info: dict[str, Any],
        tasks: list[dict[str, Any]],
        executors: list[dict[str, Any]],
        frameworks: list[dict[str, Any]],
        stream_id: str,
        now: float,
    ) -> list[Effect]:
        agent_id = info["id"]["value"]
        self.m.count("slave_reregistrations")
        if self.m.maintenance.is_down(info):
            raise CallRejected(403, "Agent's machine is DOWN for maintenance")
        partitions = self.m.partitions
        if agent_id in self.m.gone_agents or agent_id in partitions.going:
            return shutdown_agent(agent_id, stream_id, "Agent has been marked gone")
        if agent_id in self.m.unreachable_agents or agent_id in partitions.marking:
            return partitions.reregister(Reregistration(info, tasks, executors, frameworks, stream_id), now)
        partitions.cancel(agent_id)
        known = self.m.agents.get(agent_id)
        if known is not None:
            return self._reregister_known(known, tasks, stream_id, now)
        if self.m.recovered_agents.pop(agent_id, None) is None:
            # Removed agents (or ones this master never admitted) must start afresh.
            return shutdown_agent(agent_id, stream_id, "Agent is not known to the master")
        for framework_info in frameworks:
            self._recover_framework(framework_info, now)
        return self._admit(agent_id, info, stream_id, now, reregistered=True, tasks=tasks, executors=executors)

    def _reregister_known(self, known: Agent, tasks: list[dict[str, Any]], stream_id: str, now: float) -> list[Effect]:
        agent_id = known.id
        effects: list[Effect] = []
        if known.stream_id and known.stream_id != stream_id:
            effects.append(CloseAgentStream(agent_id, known.stream_id))
        known.stream_id, known.connected, known.active = stream_id, True, True
        known.reregistered_time, known.missed_pings, known.pong_seen = now, 0, True
        self.m.refresh_agent_active(known)
        effects.append(ToAgent(agent_id, self._registered_message(agent_id, "REREGISTERED")))
        effects.append(self.m.agent_checkpoint(known))  # the master's view of reservations wins
        if known.drain_info is not None:
            effects.append(ToAgent(agent_id, {"type": "DRAIN", "drain_config": known.drain_info["config"]}))
        effects += self._lose_unreported(known, tasks)
        effects += [ToAgent(agent_id, kill) for kill in known.pending_kills.values()]
        known.pending_kills.clear()
        effects += [ToAgent(agent_id, {"type": "SHUTDOWN_FRAMEWORK", "framework_id": id_json(fid)})
                    for fid in sorted(known.lost_frameworks)]
        known.lost_frameworks.clear()
        effects.append(StartTimer(("ping", agent_id), now + self.m.agent_ping_timeout))
        self.m.request_allocation(effects, now)
        return effects

    def readmit(self, registration: Reregistration, lost: set[str], now: float) -> list[Effect]:
        """An unreachable agent is admitted again. Partition-aware frameworks keep what it reports;
        the others were told TASK_LOST (and ``lost`` lost their tasks there on a disconnect), so
        the agent shuts them down; a task id a framework has elsewhere by now is killed here."""
        agent_id = registration.agent_id
        for framework_info in registration.frameworks:
            self._recover_framework(framework_info, now)
        shut: set[str] = set(lost)
        kills: list[Effect] = []

        def kept(item: dict[str, Any]) -> bool:
            framework = self.m.frameworks.get(item["framework_id"]["value"])
            if framework is None or not framework.partition_aware or framework.id in lost:
                shut.add(item["framework_id"]["value"])
                return False
            return True

        executors = [e for e in registration.executors if kept(e)]
        tasks = []
        for reported in registration.tasks:
            if not kept(reported):
                continue
            framework_id, task_id = reported["framework_id"]["value"], reported["info"]["task_id"]["value"]
            if task_id in self.m.frameworks[framework_id].tasks:
                kills.append(ToAgent(agent_id, {"type": "KILL_TASK", "framework_id": id_json(framework_id),
                                                "task_id": id_json(task_id)}))
            else:
                tasks.append(reported)
        effects = self.m.partitions.settle_unreachable_tasks(agent_id, tasks)
        effects += self._admit(agent_id, registration.info, registration.stream_id, now, reregistered=True,
                               tasks=tasks, executors=executors)
        effects += [ToAgent(agent_id, {"type": "SHUTDOWN_FRAMEWORK", "framework_id": id_json(fid)})
                    for fid in sorted(shut)]
        effects += kills
        if not registration.connected:
            effects += self.disconnected(agent_id, registration.stream_id, now)
        return effects

    def _lose_unreported(self, agent: Agent, reported: list[dict[str, Any]]) -> list[Effect]:
        """Tasks the master has on a re-registering agent that the agent no longer knows (it
        restarted without them, or the launch never reached it) are gone: LOST, or DROPPED for
        partition-aware frameworks."""
        known = {(t["framework_id"]["value"], t["info"]["task_id"]["value"]) for t in reported}
        effects: list[Effect] = []
        for framework_id, task_id in sorted(agent.task_keys - known):
            framework = self.m.frameworks[framework_id]
            task = framework.tasks[task_id]
            if task.state in TERMINAL:
                continue
            state = "TASK_DROPPED" if framework.partition_aware else "TASK_LOST"
            self.m.release_task(task)
            task.state = state
            self.m.count(state.lower())
            effects.append(master_update(framework.id, task_id, state, "REASON_RECONCILIATION",
                                         "Task is unknown to the re-registered agent", agent.id))
            self.m.complete_task(framework, task)
        return effects

    def _recover_framework(self, info: dict[str, Any], now: float) -> None:
        framework_id = (info.get("id") or {}).get("value")
        if not framework_id or framework_id in self.m.frameworks or framework_id in self.m.removed_framework_ids:
            return
        framework = Framework(
            id=framework_id,
            info=info,
            roles=validation.framework_roles(info),
            capabilities=validation.capability_names(info),
            registered_time=now,
            recovered=True,
        )
        self.m.frameworks[framework_id] = framework
        self.m.allocator.add_framework(framework_id, framework.roles)
        self.m.allocator.set_framework_active(framework_id, False)

    def _admit(
        self,
        agent_id: str,
        info: dict[str, Any],
        stream_id: str,
        now: float,
        *,
        reregistered: bool,
        tasks: list[dict[str, Any]] = (),  # type: ignore[assignment]
        executors: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ) -> list[Effect]:
        total = parse_json(info.get("resources") or [])
        agent = Agent(
            id=agent_id,
            info=info,
            total=total,
            registered_time=now,
            version=str(info.get("version", "")),
            stream_id=stream_id,
            reregistered_time=now if reregistered else None,
        )
        self.m.agents[agent_id] = agent
        used = self._adopt_running(agent, tasks, executors)
        self.m.allocator.add_agent(agent_id, total, used)
        kind = "REREGISTERED" if reregistered else "REGISTERED"
        effects: list[Effect] = [
            ToAgent(agent_id, self._registered_message(agent_id, kind)),
            StartTimer(("ping", agent_id), now + self.m.agent_ping_timeout),
        ]
        self.m.request_allocation(effects, now)
        return effects

    def _adopt_running(
        self, agent: Agent, tasks: Iterable[dict[str, Any]], executors: Iterable[dict[str, Any]]
    ) -> list[tuple[str, str, Resources]]:
        """Rebuild tasks and executors an agent reports after a master failover."""
        used: list[tuple[str, str, Resources]] = []
        for executor in executors:
            framework = self.m.frameworks.get(executor["framework_id"]["value"])
            if framework is None:
                continue
            role = allocation_role(executor.get("resources"), framework.roles)
            self.m.add_executor(framework, agent, role, executor)
            used.append((framework.id, role, framework.executors[agent.id][executor["executor_id"]["value"]].resources))
        for reported in tasks:
            framework = self.m.frameworks.get(reported["framework_id"]["value"])
            if framework is None:
                continue
            role = allocation_role(reported.get("resources"), framework.roles)
            task = self.m.add_task(framework, agent, role, reported["info"], reported.get("executor_id", ""))
            task.state = reported.get("state", "TASK_STAGING")
            if task.state in TERMINAL:
                task.released = True
            else:
                used.append((framework.id, role, task.resources))
        return used

    def _registered_message(self, agent_id: str, kind: str) -> dict[str, Any]:
        return {
            "type": kind,
            kind.lower(): {
                "agent_id": id_json(agent_id),
                "master_info": self.m.master_info,
                "ping_interval_seconds": self.m.agent_ping_timeout,
                "max_ping_timeouts": self.m.max_agent_ping_timeouts,
            },
        }

    def disconnected(self, agent_id: str, stream_id: str, now: float) -> list[Effect]:
        agent = self.m.agents.get(agent_id)
        if agent is None:
            self.m.partitions.stream_closed(agent_id, stream_id)
            return []
        if agent.stream_id != stream_id or not agent.connected:
            return []
        agent.connected = agent.active = False
        self.m.refresh_agent_active(agent)
        effects: list[Effect] = []
        for offer_id in sorted(agent.offers):
            effects += self.m.rescind_offer(self.m.offers[offer_id], notify=True)
        return effects + self._lose_uncheckpointed(agent)

    def _lose_uncheckpointed(self, agent: Agent) -> list[Effect]:
        """Tasks of frameworks that do not checkpoint cannot survive an agent hiccup (Mesos): they
        are lost now, and the agent is told to shut those frameworks down if it comes back."""
        effects: list[Effect] = []
        for framework_id, task_id in sorted(agent.task_keys):
            framework = self.m.frameworks[framework_id]
            if framework.checkpoint:
                continue
            task = framework.tasks[task_id]
            self.m.release_task(task)
            task.state = "TASK_LOST"
            self.m.count("task_lost")
            effects.append(master_update(framework.id, task_id, "TASK_LOST", "REASON_AGENT_DISCONNECTED",
                                         "Agent disconnected", agent.id))
            self.m.complete_task(framework, task)
            agent.lost_frameworks.add(framework_id)
        for framework_id in agent.lost_frameworks:
            framework = self.m.frameworks[framework_id]
            for record in framework.executors.pop(agent.id, {}).values():
                self.m.allocator.recover(framework.id, record.role, agent.id, record.resources)
        return effects

    def pong(self, agent_id: str, now: float) -> list[Effect]:
        agent = self.m.agents.get(agent_id)
        if agent is not None:
            agent.pong_seen = True
            self.m.partitions.cancel(agent_id)
        return []

    def ping(self, agent_id: str, now: float) -> list[Effect]:
        """Pings go on while the agent waits to be marked unreachable: a PONG still saves it."""
        agent = self.m.agents.get(agent_id)
        if agent is None:
            return []
        agent.missed_pings = 0 if agent.pong_seen else agent.missed_pings + 1
        agent.pong_seen = False
        effects: list[Effect] = [StartTimer(("ping", agent_id), now + self.m.agent_ping_timeout)]
        if agent.connected:
            effects.append(ToAgent(agent_id, {"type": "PING"}))
        if agent.missed_pings >= self.m.max_agent_ping_timeouts:
            effects += self.m.partitions.schedule(agent_id, "Agent missed too many pings", now)
        return effects

    def remove(self, agent: Agent, now: float, reason: str, message: str) -> list[Effect]:
        """Out of the cluster for good without a trace (its machine is DOWN): it must start afresh."""
        effects = self.evict(agent, now, aware_state="TASK_GONE_BY_OPERATOR", reason=reason, message=message,
                             shutdown=True)
        return [*effects, Persist(RemoveAgent(agent.id))]

    def evict(self, agent: Agent, now: float, *, aware_state: str, reason: str, message: str,
              shutdown: bool) -> list[Effect]:
        """Take the agent out of the master. Its tasks become ``aware_state`` with ``reason`` for
        partition-aware frameworks (TASK_UNREACHABLE ones are kept as unreachable tasks), TASK_LOST
        with REASON_AGENT_REMOVED for the others; tasks already terminal are just completed.
        ``shutdown``: the agent is told to shut down."""
        self.m.count("slave_removals")
        effects: list[Effect] = []
        for offer_id in sorted(agent.offers):
            effects += self.m.rescind_offer(self.m.offers[offer_id], notify=True)
        for framework_id, task_id in sorted(agent.task_keys):
            framework = self.m.frameworks[framework_id]
            effects += self._evict_task(framework, framework.tasks[task_id], aware_state, reason, message, now)
        for framework in self.m.frameworks.values():
            framework.executors.pop(agent.id, None)
        effects += self.failure(agent.id)
        self.m.allocator.remove_agent(agent.id)
        del self.m.agents[agent.id]
        if agent.stream_id:
            if shutdown:
                effects.append(ToAgent(agent.id, {"type": "SHUTDOWN", "shutdown": {"message": message}}))
            effects.append(CloseAgentStream(agent.id, agent.stream_id))
        effects.append(CancelTimer(("ping", agent.id)))
        return effects

    def _evict_task(
        self, framework: Framework, task: Task, aware_state: str, reason: str, message: str, now: float
    ) -> list[Effect]:
        task.released = True  # the allocator forgets the whole agent
        if task.state in TERMINAL:  # the framework has heard the end already
            self.m.complete_task(framework, task)
            return []
        state = aware_state if framework.partition_aware else "TASK_LOST"
        since = now if aware_state == "TASK_UNREACHABLE" else None
        task.state = task.status_update_state = state
        task.status_update_uuid, task.unreachable_time = None, since
        self.m.count(state.lower())
        if state == "TASK_UNREACHABLE":
            keep_unreachable(framework, task)
        else:
            self.m.complete_task(framework, task)
        if not framework.connected:
            return []
        reason = reason if state == aware_state else "REASON_AGENT_REMOVED"  # TASK_LOST, for all causes
        return [master_update(framework.id, task.task_id, state, reason, message, task.agent_id, since)]

    def failure(self, agent_id: str) -> list[Effect]:
        """FAILURE {agent_id}: every connected framework hears the agent is lost."""
        return [ToFramework(f.id, {"type": "FAILURE", "failure": {"agent_id": id_json(agent_id)}})
                for f in self.m.frameworks.values() if f.connected]
