"""Agents joining, staying and leaving, as the master decides it (pure, composed into the machine).

    REGISTER -> registry write (Persist AdmitAgent) -> persisted: REGISTERED, pings start
    REREGISTER (known, or admitted before a master restart) -> REREGISTERED, tasks adopted
    stream breaks -> disconnected: no offers, its offers rescinded
    max_agent_ping_timeouts missed PONGs -> removed: tasks LOST/UNREACHABLE, FAILURE, registry
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from meseta.core.resources import Resources, parse_json
from meseta.master import validation
from meseta.master.launch import allocation_role
from meseta.master.state import (
    TERMINAL_STATES,
    AdmitAgent,
    Agent,
    CallRejected,
    CancelTimer,
    CloseAgentStream,
    Effect,
    Framework,
    Persist,
    RegistryOperation,
    RemoveAgent,
    StartTimer,
    ToAgent,
    ToFramework,
)
from meseta.master.updates import master_update

if TYPE_CHECKING:
    from meseta.master.machine import MasterMachine


def _id(value: str) -> dict[str, str]:
    return {"value": value}


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
        info = {**info, "id": _id(agent_id)}
        self.m.pending_admissions[agent_id] = (info, stream_id)
        return [Persist(AdmitAgent(agent_id, info))]

    def persisted(self, operation: RegistryOperation, now: float) -> list[Effect]:
        if isinstance(operation, AdmitAgent):
            pending = self.m.pending_admissions.pop(operation.agent_id, None)
            if pending is None:
                return []
            info, stream_id = pending
            return self._admit(operation.agent_id, info, stream_id, now, reregistered=False)
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
        known = self.m.agents.get(agent_id)
        if self.m.maintenance.is_down(info):
            raise CallRejected(403, "Agent's machine is DOWN for maintenance")
        if known is None and agent_id not in self.m.recovered_agents:
            # Removed agents (or ones this master never admitted) must start afresh.
            return [CloseAgentStream(agent_id, stream_id)]
        if known is not None:
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
            effects += [ToAgent(agent_id, {"type": "SHUTDOWN_FRAMEWORK", "framework_id": _id(fid)})
                        for fid in sorted(known.lost_frameworks)]
            known.lost_frameworks.clear()
            effects.append(StartTimer(("ping", agent_id), now + self.m.agent_ping_timeout))
            self.m.request_allocation(effects, now)
            return effects
        self.m.recovered_agents.pop(agent_id, None)
        for framework_info in frameworks:
            self._recover_framework(framework_info, now)
        effects = self._admit(agent_id, info, stream_id, now, reregistered=True, tasks=tasks, executors=executors)
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
            if task.state in TERMINAL_STATES:
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
            if task.state in TERMINAL_STATES:
                task.released = True
            else:
                used.append((framework.id, role, task.resources))
        return used

    def _registered_message(self, agent_id: str, kind: str) -> dict[str, Any]:
        return {
            "type": kind,
            kind.lower(): {
                "agent_id": _id(agent_id),
                "master_info": self.m.master_info,
                "ping_interval_seconds": self.m.agent_ping_timeout,
                "max_ping_timeouts": self.m.max_agent_ping_timeouts,
            },
        }

    def disconnected(self, agent_id: str, stream_id: str, now: float) -> list[Effect]:
        agent = self.m.agents.get(agent_id)
        if agent is None or agent.stream_id != stream_id or not agent.connected:
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
        return []

    def ping(self, agent_id: str, now: float) -> list[Effect]:
        agent = self.m.agents.get(agent_id)
        if agent is None:
            return []
        agent.missed_pings = 0 if agent.pong_seen else agent.missed_pings + 1
        if agent.missed_pings >= self.m.max_agent_ping_timeouts:
            return self.remove(agent, now, "REASON_AGENT_REMOVED", "Agent missed too many pings")
        agent.pong_seen = False
        effects: list[Effect] = [StartTimer(("ping", agent_id), now + self.m.agent_ping_timeout)]
        if agent.connected:
            effects.append(ToAgent(agent_id, {"type": "PING"}))
        return effects

    def remove(self, agent: Agent, now: float, reason: str, message: str) -> list[Effect]:
        self.m.count("slave_removals")
        effects: list[Effect] = []
        for offer_id in sorted(agent.offers):
            effects += self.m.rescind_offer(self.m.offers[offer_id], notify=True)
        for framework_id, task_id in sorted(agent.task_keys):
            framework = self.m.frameworks[framework_id]
            task = framework.tasks[task_id]
            state = "TASK_UNREACHABLE" if framework.partition_aware else "TASK_LOST"
            task.state = state
            self.m.count(state.lower())
            if framework.connected:
                effects.append(master_update(framework.id, task_id, state, reason, message, agent.id))
            self.m.complete_task(framework, task)
        for framework in self.m.frameworks.values():
            framework.executors.pop(agent.id, None)
            if framework.connected:
                effects.append(ToFramework(framework.id, {"type": "FAILURE", "failure": {"agent_id": _id(agent.id)}}))
        self.m.allocator.remove_agent(agent.id)
        del self.m.agents[agent.id]
        if agent.stream_id:
            effects.append(ToAgent(agent.id, {"type": "SHUTDOWN", "shutdown": {"message": message}}))
            effects.append(CloseAgentStream(agent.id, agent.stream_id))
        effects += [CancelTimer(("ping", agent.id)), Persist(RemoveAgent(agent.id))]
        return effects
