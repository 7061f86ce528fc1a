"""Pure renderings of the master's state for the legacy JSON endpoints (spec 3.5)."""

from __future__ import annotations

from typing import Any

from meseta.core.resources import EMPTY, Resources, attributes_summary
from meseta.master.machine import MasterMachine
from meseta.master.state import Agent, Framework, Task
from meseta.protocol.common import version_json
from meseta.protocol.task_states import ALL_STATES, TERMINAL


def task_json(task: Task) -> dict[str, Any]:
    info = task.info
    out: dict[str, Any] = {
        "id": info["task_id"]["value"],
        "name": info.get("name", ""),
        "framework_id": task.framework_id,
        "executor_id": task.executor_id,
        "slave_id": task.agent_id,
        "agent_id": task.agent_id,
        "state": task.state,
        "resources": task.resources.summary(),
        "role": task.role,
        "statuses": task.statuses,
    }
    for key in ("labels", "discovery", "container", "health_check", "user"):
        if key in info:
            out[key] = info[key]
    return out


def _framework_used(machine: MasterMachine, framework: Framework) -> Resources:
    used = EMPTY
    for task in framework.tasks.values():
        if not task.released:
            used = used + task.resources
    for executors in framework.executors.values():
        for record in executors.values():
            used = used + record.resources
    return used


def _framework_offered(machine: MasterMachine, framework: Framework) -> Resources:
    offered = EMPTY
    for offer_id in framework.offers:
        offered = offered + machine.offers[offer_id].resources
    return offered


def framework_json(machine: MasterMachine, framework: Framework) -> dict[str, Any]:
    info = framework.info
    tasks = [task_json(t) for t in framework.tasks.values()]
    out: dict[str, Any] = {
        "id": framework.id,
        "name": info.get("name", ""),
        "user": info.get("user", ""),
        "hostname": info.get("hostname", ""),
        "webui_url": info.get("webui_url", ""),
        "failover_timeout": info.get("failover_timeout", 0),
        "checkpoint": info.get("checkpoint", False),
        "principal": info.get("principal", ""),
        "capabilities": sorted(framework.capabilities),
        "active": framework.active,
        "connected": framework.connected,
        "recovered": framework.recovered,
        "registered_time": framework.registered_time,
        "unregistered_time": framework.unregistered_time or 0,
        "used_resources": _framework_used(machine, framework).summary(),
        "offered_resources": _framework_offered(machine, framework).summary(),
        "resources": (_framework_used(machine, framework) + _framework_offered(machine, framework)).summary(),
        "tasks": tasks,
        "unreachable_tasks": [task_json(t) for t in framework.unreachable_tasks.values()],
        "completed_tasks": [task_json(t) for t in framework.completed_tasks],
        "offers": [_offer_json(machine, o) for o in sorted(framework.offers) if o in machine.offers],
        "executors": [
            {**record.info, "slave_id": agent_id}
            for agent_id, executors in framework.executors.items()
            for record in executors.values()
        ],
    }
    if framework.reregistered_time is not None:
        out["reregistered_time"] = framework.reregistered_time
    if "MULTI_ROLE" in framework.capabilities:
        out["roles"] = list(framework.roles)
    else:
        out["role"] = framework.roles[0] if framework.roles else "*"
    if "labels" in info:
        out["labels"] = info["labels"]
    return out


def _offer_json(machine: MasterMachine, offer_id: str) -> dict[str, Any]:
    offer = machine.offers[offer_id]
    return {
        "id": offer.id,
        "framework_id": offer.framework_id,
        "slave_id": offer.agent_id,
        "allocation_info": {"role": offer.role},
        "resources": offer.resources.summary(),
    }


def agent_json(machine: MasterMachine, agent: Agent, full: bool = False) -> dict[str, Any]:
    allocated = machine.allocator.allocated_on(agent.id) if machine.allocator.has_agent(agent.id) else EMPTY
    offered = EMPTY
    for offer_id in agent.offers:
        offered = offered + machine.offers[offer_id].resources
    used = allocated - offered
    reserved: dict[str, Any] = {}
    for key in agent.total:
        if key.role != "*" and key.role not in reserved:
            reserved[key.role] = agent.total.reserved(key.role).summary()
    out: dict[str, Any] = {
        "id": agent.id,
        "pid": agent.pid,
        "hostname": agent.hostname,
        "port": agent.port,
        "registered_time": agent.registered_time,
        "resources": agent.total.summary(),
        "used_resources": used.summary(),
        "offered_resources": offered.summary(),
        "reserved_resources": reserved,
        "unreserved_resources": agent.total.unreserved().summary(),
        "attributes": attributes_summary(agent.info.get("attributes") or []),
        "active": agent.active,
        "connected": agent.connected,
        "deactivated": agent.deactivated,
        "version": agent.version,
        "capabilities": list(agent.capabilities),
    }
    if agent.reregistered_time is not None:
        out["reregistered_time"] = agent.reregistered_time
    if agent.drain_info is not None:
        out["drain_info"] = agent.drain_info
    if full:
        out["used_resources_full"] = used.to_json()
        out["offered_resources_full"] = offered.to_json()
        out["unreserved_resources_full"] = agent.total.unreserved().to_json()
        out["reserved_resources_full"] = {r: agent.total.reserved(r).to_json() for r in reserved}
    return out


def recovered_agents_json(machine: MasterMachine) -> list[dict[str, Any]]:
    return [
        {"id": agent_id, "hostname": info.get("hostname", ""), "port": info.get("port", 5051),
         "attributes": attributes_summary(info.get("attributes") or [])}
        for agent_id, info in machine.recovered_agents.items()
        if agent_id not in machine.agents
    ]


def state_json(machine: MasterMachine, start_time: float, flags: dict[str, str]) -> dict[str, Any]:
    info = machine.master_info
    agents = list(machine.agents.values())
    pid = info["pid"]
    return {
        **version_json(),
        "start_time": start_time,
        "elected_time": start_time,
        "id": info["id"],
        "pid": pid,
        "hostname": info["hostname"],
        "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"],
        "activated_slaves": sum(1 for a in agents if a.active),
        "deactivated_slaves": sum(1 for a in agents if not a.active),
        "unreachable_slaves": len(machine.unreachable_agents),
        "leader": pid,
        "leader_info": {k: info[k] for k in ("id", "pid", "port", "hostname") if k in info},
        "flags": flags,
        "slaves": [agent_json(machine, a) for a in agents],
        "recovered_slaves": recovered_agents_json(machine),
        "frameworks": [framework_json(machine, f) for f in machine.frameworks.values()],
        "completed_frameworks": [framework_json(machine, f) for f in machine.completed_frameworks],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    }


def metrics_json(machine: MasterMachine, uptime: float) -> dict[str, float]:
    out: dict[str, float] = {"master/elected": 1, "master/uptime_secs": uptime}
    total = EMPTY
    used = EMPTY
    for agent in machine.agents.values():
        total = total + agent.total
        if machine.allocator.has_agent(agent.id):
            used = used + machine.allocator.allocated_on(agent.id)
    for name in ("cpus", "mem", "disk", "gpus"):
        t, u = total.scalar(name), used.scalar(name)
        out[f"master/{name}_total"] = t
        out[f"master/{name}_used"] = u
        out[f"master/{name}_percent"] = u / t if t else 0.0
    agents = machine.agents.values()
    out["master/slaves_active"] = sum(1 for a in agents if a.active)
    out["master/slaves_inactive"] = sum(1 for a in agents if not a.active)
    out["master/slaves_connected"] = sum(1 for a in agents if a.connected)
    out["master/slaves_disconnected"] = sum(1 for a in agents if not a.connected)
    out["master/slaves_unreachable"] = len(machine.unreachable_agents)
    frameworks = machine.frameworks.values()
    out["master/frameworks_active"] = sum(1 for f in frameworks if f.active)
    out["master/frameworks_inactive"] = sum(1 for f in frameworks if not f.active)
    out["master/frameworks_connected"] = sum(1 for f in frameworks if f.connected)
    out["master/frameworks_disconnected"] = sum(1 for f in frameworks if not f.connected)
    out["master/outstanding_offers"] = len(machine.offers)
    states = {s: 0 for s in ALL_STATES}
    for framework in frameworks:
        for task in [*framework.tasks.values(), *framework.unreachable_tasks.values()]:
            states[task.state] = states.get(task.state, 0) + 1
    gauges = set()
    for state in ALL_STATES:  # Mesos: non-terminal states are gauges, terminal ones counters
        if state not in TERMINAL:
            gauges.add(f"master/tasks_{state.removeprefix('TASK_').lower()}")
            out[f"master/tasks_{state.removeprefix('TASK_').lower()}"] = states[state]
    for name, value in machine.metrics.items():
        if name.startswith(("messages_", "slave_", "valid_", "invalid_")):
            out[f"master/{name}"] = value
        elif name.startswith("task_") and f"master/{name.replace('task_', 'tasks_', 1)}" not in gauges:
            out[f"master/{name.replace('task_', 'tasks_', 1)}"] = value
    out["allocator/mesos/allocation_runs"] = machine.metrics.get("allocator_runs", 0)
    return out
