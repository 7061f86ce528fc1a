"""Pure renderings of the master's state for the legacy JSON endpoints (spec 3.5) and the
operator API's agent list (spec 3.2): they read the books, never change them.

    state_json      /master/state          agents (active, deactivated, drain_info), frameworks,
                                           completed frameworks, recovered agents
    framework_json  /master/frameworks     agent_json  /master/slaves     task_json  /master/tasks
    agent_v1        GET_AGENTS             metrics_json  /metrics/snapshot, GET_METRICS
"""

from __future__ import annotations

from typing import Any, Protocol

from meseta.core.resources import EMPTY, Resources, attributes_summary
from meseta.master.books import Books
from meseta.master.core import Core
from meseta.master.records import Agent, Framework, Offer, Task
from meseta.protocol.common import version_json
from meseta.protocol.ids import id_json
from meseta.protocol.task_states import ALL_STATES, TERMINAL


class MasterState(Protocol):
    """What the views read: the books and the core (the machine provides both)."""

    books: Books
    core: Core


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


def framework_used(machine: MasterState, framework: Framework) -> Resources:
    used = EMPTY
    for task in framework.tasks.values():
        if not task.released:
            used = used + task.resources
    for executors in framework.executors.values():
        for record in executors.values():
            used = used + record.resources
    return used


def framework_offered(machine: MasterState, framework: Framework) -> Resources:
    offered = EMPTY
    for offer in machine.books.offers.of_framework(framework.id):
        offered = offered + offer.resources
    return offered


def framework_json(machine: MasterState, framework: Framework) -> dict[str, Any]:
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
        "used_resources": framework_used(machine, framework).summary(),
        "offered_resources": framework_offered(machine, framework).summary(),
        "resources": (framework_used(machine, framework) + framework_offered(machine, framework)).summary(),
        "tasks": tasks,
        "unreachable_tasks": [task_json(t) for t in framework.unreachable_tasks.values()],
        "completed_tasks": [task_json(t) for t in framework.completed_tasks],
        "offers": [_offer_json(o) for o in machine.books.offers.of_framework(framework.id)],
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


def _offer_json(offer: Offer) -> dict[str, Any]:
    return {
        "id": offer.id,
        "framework_id": offer.framework_id,
        "slave_id": offer.agent_id,
        "allocation_info": {"role": offer.role},
        "resources": offer.resources.summary(),
    }


def agent_json(machine: MasterState, agent: Agent, full: bool = False) -> dict[str, Any]:
    allocated, offered = allocated_offered(machine, agent)
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


def allocated_offered(machine: MasterState, agent: Agent) -> tuple[Resources, Resources]:
    allocator = machine.core.allocator
    allocated = allocator.allocated_on(agent.id) if allocator.has_agent(agent.id) else EMPTY
    offered = EMPTY
    for offer in machine.books.offers.of_agent(agent.id):
        offered = offered + offer.resources
    return allocated, offered


def agent_v1(machine: MasterState, agent: Agent) -> dict[str, Any]:
    """GetAgents.Agent (operator API)."""
    allocated, offered = allocated_offered(machine, agent)
    out: dict[str, Any] = {
        "agent_info": {**agent.info, "id": id_json(agent.id), "resources": agent.total.to_json()},
        "active": agent.active,
        "deactivated": agent.deactivated,
        "version": agent.version,
        "pid": agent.pid,
        "registered_time": nanoseconds(agent.registered_time),
        "total_resources": agent.total.to_json(),
        "allocated_resources": (allocated - offered).to_json(),
        "offered_resources": offered.to_json(),
        "capabilities": [{"type": c} for c in agent.capabilities],
    }
    if agent.reregistered_time is not None:
        out["reregistered_time"] = nanoseconds(agent.reregistered_time)
    if agent.drain_info is not None:
        out["drain_info"] = agent.drain_info
    return out


def nanoseconds(seconds: float) -> dict[str, int]:
    return {"nanoseconds": round(seconds * 1e9)}


def recovered_agents_json(machine: MasterState) -> list[dict[str, Any]]:
    return [
        {"id": agent_id, "hostname": info.get("hostname", ""), "port": info.get("port", 5051),
         "attributes": attributes_summary(info.get("attributes") or [])}
        for agent_id, info in machine.books.agents.recovered.items()
    ]


def state_json(machine: MasterState, start_time: float, flags: dict[str, str]) -> dict[str, Any]:
    info = machine.core.master_info
    agents = list(machine.books.agents)
    counts = machine.books.agents.counts()
    pid = info["pid"]
    return {
        **version_json(),
        "start_time": start_time,
        "elected_time": start_time,
        "id": info["id"],
        "pid": pid,
        "hostname": info["hostname"],
        "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"],
        "activated_slaves": counts["active"],
        "deactivated_slaves": counts["inactive"],
        "unreachable_slaves": len(machine.books.agents.unreachable),
        "leader": pid,
        "leader_info": {k: info[k] for k in ("id", "pid", "port", "hostname") if k in info},
        "flags": flags,
        "slaves": [agent_json(machine, a) for a in agents],
        "recovered_slaves": recovered_agents_json(machine),
        "frameworks": [framework_json(machine, f) for f in machine.books.frameworks],
        "completed_frameworks": [framework_json(machine, f) for f in machine.books.frameworks.completed],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    }


def metrics_json(machine: MasterState, uptime: float) -> dict[str, float]:
    out: dict[str, float] = {"master/elected": 1, "master/uptime_secs": uptime}
    total = EMPTY
    used = EMPTY
    allocator = machine.core.allocator
    for agent in machine.books.agents:
        total = total + agent.total
        if allocator.has_agent(agent.id):
            used = used + allocator.allocated_on(agent.id)
    for name in ("cpus", "mem", "disk", "gpus"):
        t, u = total.scalar(name), used.scalar(name)
        out[f"master/{name}_total"] = t
        out[f"master/{name}_used"] = u
        out[f"master/{name}_percent"] = u / t if t else 0.0
    counts = machine.books.agents.counts()
    out["master/slaves_active"] = counts["active"]
    out["master/slaves_inactive"] = counts["inactive"]
    out["master/slaves_connected"] = counts["connected"]
    out["master/slaves_disconnected"] = counts["disconnected"]
    out["master/slaves_unreachable"] = len(machine.books.agents.unreachable)
    frameworks = list(machine.books.frameworks)
    out["master/frameworks_active"] = sum(1 for f in frameworks if f.active)
    out["master/frameworks_inactive"] = sum(1 for f in frameworks if not f.active)
    out["master/frameworks_connected"] = sum(1 for f in frameworks if f.connected)
    out["master/frameworks_disconnected"] = sum(1 for f in frameworks if not f.connected)
    out["master/outstanding_offers"] = len(machine.books.offers)
    states = {s: 0 for s in ALL_STATES}
    for framework in frameworks:
        for task in [*framework.tasks.values(), *framework.unreachable_tasks.values()]:
            states[task.state] = states.get(task.state, 0) + 1
    gauges = set()
    for state in ALL_STATES:  # Mesos: non-terminal states are gauges, terminal ones counters
        if state not in TERMINAL:
            gauges.add(f"master/tasks_{state.removeprefix('TASK_').lower()}")
            out[f"master/tasks_{state.removeprefix('TASK_').lower()}"] = states[state]
    for name, value in machine.core.metrics.items():
        if name.startswith(("messages_", "slave_", "valid_", "invalid_")):
            out[f"master/{name}"] = value
        elif name.startswith("task_") and f"master/{name.replace('task_', 'tasks_', 1)}" not in gauges:
            out[f"master/{name.replace('task_', 'tasks_', 1)}"] = value
    out["allocator/mesos/allocation_runs"] = machine.core.metrics.get("allocator_runs", 0)
    return out
