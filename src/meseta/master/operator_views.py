"""Pure v1 renderings of the master's state for the operator API (spec 3.2, 3.3): GET_STATE,
GET_TASKS, GET_FRAMEWORKS, GET_EXECUTORS, and the events of the operator stream.

    get_state       {get_tasks, get_executors, get_frameworks, get_agents}
    get_tasks       {tasks, unreachable_tasks, completed_tasks}           each a v1 Task
    get_frameworks  {frameworks, completed_frameworks}                    GetFrameworks.Framework
    get_executors   {executors: [{executor_info, agent_id}]}
    event(note)     {"type": KIND, "<kind>": {...}}                       one journal note

v1 Task::

    {name, task_id{value}, framework_id{value}, executor_id{value}?, agent_id{value}, state,
     resources[], statuses[{task_id, state, timestamp, agent_id, healthy?, container_status?}],
     status_update_state?, status_update_uuid?, labels?, discovery?, container?, health_check?,
     user?, kill_policy?, limits?}
"""

from __future__ import annotations

from typing import Any

from meseta.master.journal import Note
from meseta.master.records import Framework, Task
from meseta.master.views import MasterState, agent_v1, framework_offered, framework_used, nanoseconds
from meseta.protocol.ids import id_json

TASK_INFO_FIELDS = ("labels", "discovery", "container", "health_check", "user", "kill_policy", "limits")


def task_v1(task: Task, state: str | None = None, statuses: int | None = None) -> dict[str, Any]:
    """The task as it is, or as it was when it had ``state`` and its first ``statuses`` statuses."""
    info = task.info
    agent_id, task_id = id_json(task.agent_id), id_json(task.task_id)
    history = task.statuses if statuses is None else task.statuses[:statuses]
    out: dict[str, Any] = {
        "name": info.get("name", ""),
        "task_id": task_id,
        "framework_id": id_json(task.framework_id),
        "agent_id": agent_id,
        "state": state or task.state,
        "resources": task.resources.to_json(allocation_role=task.role),
        "statuses": [{"task_id": task_id, "agent_id": agent_id, **entry} for entry in history],
    }
    if task.executor_id:
        out["executor_id"] = id_json(task.executor_id)
    if statuses is None and task.status_update_state is not None:
        out["status_update_state"] = task.status_update_state
        if task.status_update_uuid is not None:
            out["status_update_uuid"] = task.status_update_uuid
    for key in TASK_INFO_FIELDS:
        if key in info:
            out[key] = info[key]
    return out


def framework_v1(machine: MasterState, framework: Framework) -> dict[str, Any]:
    """GetFrameworks.Framework."""
    offers = machine.books.offers.of_framework(framework.id)
    out: dict[str, Any] = {
        "framework_info": {**framework.info, "id": id_json(framework.id)},
        "active": framework.active,
        "connected": framework.connected,
        "recovered": framework.recovered,
        "registered_time": nanoseconds(framework.registered_time),
        "offers": [{"id": id_json(o.id), "framework_id": id_json(o.framework_id), "agent_id": id_json(o.agent_id),
                    "resources": o.resources.to_json(allocation_role=o.role), "allocation_info": {"role": o.role}}
                   for o in offers],
        "inverse_offers": [{"id": id_json(i.id), "framework_id": id_json(i.framework_id),
                            "agent_id": id_json(i.agent_id)}
                           for i in machine.books.offers.inverse_of_framework(framework.id)],
        "allocated_resources": framework_used(machine, framework).to_json(),
        "offered_resources": framework_offered(machine, framework).to_json(),
    }
    if framework.reregistered_time is not None:
        out["reregistered_time"] = nanoseconds(framework.reregistered_time)
    if framework.unregistered_time is not None:
        out["unregistered_time"] = nanoseconds(framework.unregistered_time)
    return out


def _all_frameworks(machine: MasterState) -> list[Framework]:
    return [*machine.books.frameworks, *machine.books.frameworks.completed]


def get_tasks(machine: MasterState) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    unreachable: list[dict[str, Any]] = []
    completed: list[dict[str, Any]] = []
    for framework in _all_frameworks(machine):
        tasks += [task_v1(t) for t in framework.tasks.values()]
        unreachable += [task_v1(t) for t in framework.unreachable_tasks.values()]
        completed += [task_v1(t) for t in framework.completed_tasks]
    return {"tasks": tasks, "unreachable_tasks": unreachable, "completed_tasks": completed}


def get_frameworks(machine: MasterState) -> dict[str, Any]:
    return {"frameworks": [framework_v1(machine, f) for f in machine.books.frameworks],
            "completed_frameworks": [framework_v1(machine, f) for f in machine.books.frameworks.completed]}


def get_executors(machine: MasterState) -> dict[str, Any]:
    return {"executors": [
        {"executor_info": {"framework_id": id_json(framework.id), **record.info}, "agent_id": id_json(agent_id)}
        for framework in machine.books.frameworks
        for agent_id, executors in framework.executors.items()
        for record in executors.values()
    ]}


def get_agents(machine: MasterState) -> dict[str, Any]:
    return {"agents": [agent_v1(machine, a) for a in machine.books.agents],
            "recovered_agents": [{**info, "id": id_json(aid)} for aid, info in machine.books.agents.recovered.items()]}


def get_state(machine: MasterState) -> dict[str, Any]:
    return {"get_tasks": get_tasks(machine), "get_executors": get_executors(machine),
            "get_frameworks": get_frameworks(machine), "get_agents": get_agents(machine)}


def _master_status(task: Task, note: Note, now: float) -> dict[str, Any]:
    """The status of a state the master decided (lost, killed, gone...)."""
    out: dict[str, Any] = {"task_id": id_json(task.task_id), "state": note.state, "source": "SOURCE_MASTER",
                           "agent_id": id_json(task.agent_id), "timestamp": now}
    reason, message = note.why
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    if task.unreachable_time is not None:
        out["unreachable_time"] = nanoseconds(task.unreachable_time)
    if task.executor_id:
        out["executor_id"] = id_json(task.executor_id)
    return out


def event(machine: MasterState, note: Note, now: float) -> dict[str, Any]:
    """The operator event of one journal note (spec 3.3)."""
    kind = note.kind
    payload: dict[str, Any]
    if kind == "TASK_ADDED":
        payload = {"task": task_v1(note.subject, note.state, note.statuses)}
    elif kind == "TASK_UPDATED":
        task: Task = note.subject
        payload = {"framework_id": id_json(task.framework_id),
                   "status": note.status or _master_status(task, note, now), "state": note.state}
    elif kind == "AGENT_ADDED":
        payload = {"agent": agent_v1(machine, note.subject)}
    elif kind == "AGENT_REMOVED":
        payload = {"agent_id": id_json(note.subject)}
    elif kind == "FRAMEWORK_REMOVED":
        payload = {"framework_info": {**note.subject.info, "id": id_json(note.subject.id)}}
    else:  # FRAMEWORK_ADDED, FRAMEWORK_UPDATED
        payload = {"framework": framework_v1(machine, note.subject)}
    return {"type": kind, kind.lower(): payload}


def events(machine: MasterState, notes: list[Note], now: float) -> list[dict[str, Any]]:
    """The events of a handler's notes, in order; a framework rendered once already in this batch
    (as it is now) is not sent again as FRAMEWORK_UPDATED."""
    out: list[dict[str, Any]] = []
    shown: set[str] = set()
    for note in notes:
        if note.kind in ("FRAMEWORK_ADDED", "FRAMEWORK_UPDATED"):
            if note.kind == "FRAMEWORK_UPDATED" and note.subject.id in shown:
                continue
            shown.add(note.subject.id)
        out.append(event(machine, note, now))
    return out
