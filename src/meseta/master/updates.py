"""Task status updates the master makes itself (spec 1.5, 1.8): never with a uuid, never acked.

They answer reconciliation, refuse invalid launches and report lost agents. Updates from agents
and executors are forwarded as they come and are not built here.

Explicit reconciliation of a task the master does not know, by where its agent stands
(non-PARTITION_AWARE frameworks get TASK_LOST in place of each of these states)::

    registered   TASK_GONE              "Reconciliation: Task is unknown to the agent"
    unreachable  TASK_UNREACHABLE       "Reconciliation: Task is unreachable" (+ unreachable_time)
    gone         TASK_GONE_BY_OPERATOR  "Reconciliation: Task is gone"
    unknown      TASK_UNKNOWN           "Reconciliation: Task is unknown"
    (recovered after a failover and not re-registered yet: no answer at all, decided by the caller)
"""

from __future__ import annotations

from typing import Any

from meseta.master.effects import ToFramework
from meseta.master.records import Task
from meseta.protocol.ids import id_json

UNKNOWN_TASK_ANSWERS = {
    "registered": ("TASK_GONE", "Reconciliation: Task is unknown to the agent"),
    "unreachable": ("TASK_UNREACHABLE", "Reconciliation: Task is unreachable"),
    "gone": ("TASK_GONE_BY_OPERATOR", "Reconciliation: Task is gone"),
    "unknown": ("TASK_UNKNOWN", "Reconciliation: Task is unknown"),
}


def time_info(seconds: float) -> dict[str, int]:
    """A TimeInfo, as ``unreachable_time`` carries it."""
    return {"nanoseconds": round(seconds * 1_000_000_000)}


def status(
    task_id: str,
    state: str,
    reason: str,
    message: str,
    agent_id: str | None = None,
    unreachable_time: float | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task_id": id_json(task_id),
        "state": state,
        "message": message,
        "source": "SOURCE_MASTER",
        "reason": reason,
    }
    if agent_id:
        out["agent_id"] = id_json(agent_id)
    if unreachable_time is not None:
        out["unreachable_time"] = time_info(unreachable_time)
    return out


def update_event(framework_id: str, task_status: dict[str, Any]) -> ToFramework:
    return ToFramework(framework_id, {"type": "UPDATE", "update": {"status": task_status}})


def master_update(
    framework_id: str,
    task_id: str,
    state: str,
    reason: str,
    message: str,
    agent_id: str | None = None,
    unreachable_time: float | None = None,
) -> ToFramework:
    return update_event(framework_id, status(task_id, state, reason, message, agent_id, unreachable_time))


def error_event(framework_id: str, message: str) -> ToFramework:
    return ToFramework(framework_id, {"type": "ERROR", "error": {"message": message}})


def reconcile_known(framework_id: str, task: Task) -> ToFramework:
    """The latest state of a known (or unreachable) task: status_update_state if an update is in flight;
    its health and container status (the container's id and addresses) as last reported, as Mesos does."""
    out = status(task.task_id, task.status_update_state or task.state, "REASON_RECONCILIATION",
                 "Reconciliation: Latest task state", task.agent_id, task.unreachable_time)
    if task.executor_id:
        out["executor_id"] = id_json(task.executor_id)
    latest = task.latest_status or {}
    for key in ("healthy", "container_status"):
        if key in latest:
            out[key] = latest[key]
    return update_event(framework_id, out)


def reconcile_unknown(
    framework_id: str,
    partition_aware: bool,
    task_id: str,
    agent_id: str | None,
    standing: str,
    unreachable_since: float | None = None,
) -> ToFramework:
    """An unknown task, answered by where its agent ``standing`` is (see the table above)."""
    state, message = UNKNOWN_TASK_ANSWERS[standing]
    if not partition_aware:
        state = "TASK_LOST"
    since = unreachable_since if standing == "unreachable" else None
    return update_event(framework_id, status(task_id, state, "REASON_RECONCILIATION", message, agent_id, since))
