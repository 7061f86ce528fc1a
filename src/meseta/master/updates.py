"""Task status updates the master makes itself (spec 1.5, 1.8): never with a uuid, never acked.

They answer reconciliation, refuse invalid launches and report lost agents. Updates from agents
and executors are forwarded as they come and are not built here.
"""

from __future__ import annotations

from typing import Any

from meseta.master.state import Task, ToFramework


def _id(value: str) -> dict[str, str]:
    return {"value": value}


def status(task_id: str, state: str, reason: str, message: str, agent_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task_id": _id(task_id),
        "state": state,
        "message": message,
        "source": "SOURCE_MASTER",
        "reason": reason,
    }
    if agent_id:
        out["agent_id"] = _id(agent_id)
    return out


def update_event(framework_id: str, task_status: dict[str, Any]) -> ToFramework:
    return ToFramework(framework_id, {"type": "UPDATE", "update": {"status": task_status}})


def master_update(
    framework_id: str, task_id: str, state: str, reason: str, message: str, agent_id: str | None = None
) -> ToFramework:
    return update_event(framework_id, status(task_id, state, reason, message, agent_id))


def error_event(framework_id: str, message: str) -> ToFramework:
    return ToFramework(framework_id, {"type": "ERROR", "error": {"message": message}})


def reconcile_known(framework_id: str, task: Task) -> ToFramework:
    """The latest state of a known task: status_update_state if an update is in flight."""
    out = status(task.task_id, task.status_update_state or task.state, "REASON_RECONCILIATION",
                 "Reconciliation: Latest task state", task.agent_id)
    if task.executor_id:
        out["executor_id"] = _id(task.executor_id)
    if task.latest_status and "healthy" in task.latest_status:
        out["healthy"] = task.latest_status["healthy"]
    return update_event(framework_id, out)


def reconcile_unknown(
    framework_id: str, partition_aware: bool, task_id: str, agent_id: str | None, agent_known: bool
) -> ToFramework:
    """An unknown task: GONE if its agent is here, UNKNOWN otherwise; LOST for older frameworks."""
    if agent_known:
        state, message = "TASK_GONE", "Reconciliation: Task is unknown to the agent"
    else:
        state, message = "TASK_UNKNOWN", "Reconciliation: Task is unknown"
    if not partition_aware:
        state = "TASK_LOST"
    return update_event(framework_id, status(task_id, state, "REASON_RECONCILIATION", message, agent_id))
