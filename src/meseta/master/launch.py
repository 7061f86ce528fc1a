"""Pure checks and rewrites for ACCEPT's LAUNCH and LAUNCH_GROUP operations (spec 1.6, 1.7).

``check_task`` answers what a valid task takes from the offered pool (its resources plus a new
executor's), or the problem as the message Mesos would put in TASK_ERROR.
"""

from __future__ import annotations

from typing import Any

from meseta.core.resources import EMPTY, Resources
from meseta.master import validation
from meseta.master.state import Agent, Framework
from meseta.protocol.ids import id_json


def check_task(
    framework: Framework, agent: Agent, pool: Resources, task: Any
) -> str | tuple[Resources, dict[str, Any] | None]:
    """The resources a valid task takes from the pool (with a new executor's), or the problem."""
    problem = validation.task_info_problem(task, agent.id)
    if problem:
        return problem
    task_id = task["task_id"]["value"]
    if task_id in framework.tasks:
        return f"Task has duplicate ID: {task_id}"
    resources, problem = validation.task_resources(task)
    if problem or resources is None:
        return problem or "Task uses no resources"
    executor = task.get("executor")
    needed = resources
    if executor is not None:
        executor = {**executor, "framework_id": executor.get("framework_id") or id_json(framework.id)}
        known = framework.executors.get(agent.id, {}).get(executor["executor_id"]["value"])
        if known is not None:
            if comparable(known.info) != comparable(executor):
                return "ExecutorInfo is not compatible with the ExecutorInfo of the running executor"
        else:
            try:
                needed = needed + Resources.from_json(executor.get("resources") or [])
            except ValueError as exc:
                return f"Executor has invalid resources: {exc}"
    if not pool.contains(needed):
        return f"Task uses more resources {needed.to_text()} than available {pool.to_text()}"
    return needed, executor


def group_problem(
    framework: Framework, agent: Agent, pool: Resources, executor: Any, tasks: list[Any]
) -> str | None:
    if not isinstance(executor, dict):
        return "'launch_group.executor' is required"
    if executor.get("type") not in ("DEFAULT", "CUSTOM"):
        return "'launch_group.executor.type' must be DEFAULT or CUSTOM"
    problem = validation.executor_info_problem(executor)
    if problem:
        return problem
    if not tasks:
        return "Task group is empty"
    ids = [task_id_of(t) for t in tasks]
    if len(set(ids)) != len(ids):
        return "Task group has duplicate task ids"
    needed = EMPTY
    if executor["executor_id"]["value"] not in framework.executors.get(agent.id, {}):
        try:
            needed = Resources.from_json(executor.get("resources") or [])
        except ValueError as exc:
            return f"Executor has invalid resources: {exc}"
    for task in tasks:
        if isinstance(task, dict) and task.get("executor") is not None:
            return f"Task '{task_id_of(task)}' in a task group must not set 'executor'"
        checked = check_task(framework, agent, pool, {**task, "executor": executor} if isinstance(
            task, dict) and task.get("command") is None else task)
        if isinstance(checked, str):
            return checked
        resources, _ = validation.task_resources(task)
        needed = needed + (resources or EMPTY)
    if not pool.contains(needed):
        return f"Task group uses more resources {needed.to_text()} than available {pool.to_text()}"
    return None

def launched_tasks(operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for op in operations:
        if not isinstance(op, dict):
            continue
        if op.get("type") == "LAUNCH":
            tasks += (op.get("launch") or {}).get("task_infos") or []
        elif op.get("type") == "LAUNCH_GROUP":
            tasks += ((op.get("launch_group") or {}).get("task_group") or {}).get("tasks") or []
    return [t for t in tasks if isinstance(t, dict)]


def task_id_of(task: Any) -> str:
    if isinstance(task, dict) and isinstance(task.get("task_id"), dict):
        return str(task["task_id"].get("value", ""))
    return ""


def with_allocation(info: dict[str, Any], role: str) -> dict[str, Any]:
    """Inject the offer's allocation_info into the resources, as the master does."""
    out = dict(info)
    if "resources" in out:
        out["resources"] = [{**r, "allocation_info": {"role": role}} for r in out["resources"] or []]
    return out


def allocation_role(resources: Any, roles: tuple[str, ...]) -> str:
    for item in resources or []:
        role = (item.get("allocation_info") or {}).get("role")
        if role:
            return str(role)
    return roles[0] if roles else "*"


def comparable(executor: dict[str, Any]) -> dict[str, Any]:
    ignore = {"framework_id", "resources"}
    return {k: v for k, v in executor.items() if k not in ignore}
