"""Executor calls (``POST /api/v1/executor``, spec 2.1) parsed at the edge into typed records.

Every field is checked before the agent looks at the call: types (a state is a ``TaskState``
name, never a list), finite numbers, valid Unicode, bounded nesting and size (all of them, free-form
members such as ``check_status`` included, by ``decode_typed`` on the whole body), base64 for
``data`` and ``uuid`` (16 bytes). What the agent forwards is re-encoded from the record, so only known
fields travel on to the master::

    decode_call(body) -> ExecutorCall | CallInvalid(400, naming the field)
        SUBSCRIBE  subscribe.unacknowledged_tasks[] (TaskInfo), unacknowledged_updates[] {status}
        UPDATE     update.status (TaskStatus)
        MESSAGE    message.data (base64)
        HEARTBEAT  -

Whether the executor may make the call (it is known, subscribed, and speaks for its own tasks)
is the machine's to decide (``AgentMachine.executor_for_call``, ``handle_executor_update``).
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import msgspec

from meseta.protocol.json_edge import JsonRejected, decode_typed
from meseta.protocol.messages import Int64
from meseta.protocol.task_states import TaskState

CALL_TYPES = ("SUBSCRIBE", "UPDATE", "MESSAGE", "HEARTBEAT")
# An update travels on to the master inside a call of its own: keep it well under the master's
# 16 MiB body limit, so that no update the agent accepted can be refused there for its size.
MAX_CALL_BYTES = 4 * 1024 * 1024
REASONS = frozenset("REASON_" + name for name in (  # TaskStatus.Reason, the names of spec 1
    "COMMAND_EXECUTOR_FAILED", "CONTAINER_LAUNCH_FAILED", "CONTAINER_LIMITATION",
    "CONTAINER_LIMITATION_DISK", "CONTAINER_LIMITATION_MEMORY", "CONTAINER_PREEMPTED", "CONTAINER_UPDATE_FAILED",
    "MAX_COMPLETION_TIME_REACHED", "EXECUTOR_REGISTRATION_TIMEOUT", "EXECUTOR_REREGISTRATION_TIMEOUT",
    "EXECUTOR_TERMINATED", "EXECUTOR_UNREGISTERED", "FRAMEWORK_REMOVED", "GC_ERROR", "INVALID_FRAMEWORKID",
    "INVALID_OFFERS", "IO_SWITCHBOARD_EXITED", "MASTER_DISCONNECTED", "RECONCILIATION", "RESOURCES_UNKNOWN",
    "AGENT_DISCONNECTED", "AGENT_DRAINING", "AGENT_REMOVED", "AGENT_REMOVED_BY_OPERATOR", "AGENT_REREGISTERED",
    "AGENT_RESTARTED", "AGENT_UNKNOWN", "TASK_KILLED_DURING_LAUNCH", "TASK_CHECK_STATUS_UPDATED",
    "TASK_HEALTH_CHECK_STATUS_UPDATED", "TASK_GROUP_INVALID", "TASK_GROUP_UNAUTHORIZED", "TASK_INVALID",
    "TASK_UNAUTHORIZED", "TASK_UNKNOWN",
))
SOURCES = ("SOURCE_MASTER", "SOURCE_AGENT", "SOURCE_EXECUTOR")
WHAT = "executor::Call"


class CallInvalid(JsonRejected):
    """The call cannot be used (400); the message names the field."""


class Id(msgspec.Struct, frozen=True):
    value: str


class Label(msgspec.Struct, frozen=True, omit_defaults=True):
    key: str
    value: str | None = None


class Labels(msgspec.Struct, frozen=True, omit_defaults=True):
    labels: list[Label] = []


class TimeInfo(msgspec.Struct, frozen=True):
    nanoseconds: Int64  # the proto's width, as the master parses it


class TaskStatus(msgspec.Struct, frozen=True, omit_defaults=True):
    """``mesos.v1.TaskStatus`` as an executor may send it."""

    task_id: Id
    state: TaskState
    uuid: str
    source: str | None = None
    message: str | None = None
    reason: str | None = None
    data: str | None = None
    agent_id: Id | None = None
    executor_id: Id | None = None
    timestamp: float | None = None
    healthy: bool | None = None
    labels: Labels | None = None
    check_status: dict[str, Any] | None = None
    container_status: dict[str, Any] | None = None
    unreachable_time: TimeInfo | None = None
    limitation: dict[str, Any] | None = None


class Update(msgspec.Struct, frozen=True):
    status: TaskStatus


class Subscribe(msgspec.Struct, frozen=True):
    unacknowledged_tasks: list[dict[str, Any]] = []
    unacknowledged_updates: list[Update] = []


class Message(msgspec.Struct, frozen=True):
    data: str


class ExecutorCall(msgspec.Struct, frozen=True):
    type: str
    framework_id: Id
    executor_id: Id
    subscribe: Subscribe | None = None
    update: Update | None = None
    message: Message | None = None


def decode_call(body: bytes) -> ExecutorCall:
    """The call, every field checked; CallInvalid (400) naming the first problem."""
    try:
        call = decode_typed(body, ExecutorCall, WHAT)
    except JsonRejected as exc:
        raise CallInvalid(exc.message) from None
    if call.type not in CALL_TYPES:
        raise CallInvalid(f"Failed to validate {WHAT}: unknown call type '{call.type}'")
    if call.type == "UPDATE":
        if call.update is None:
            raise CallInvalid(f"Failed to validate {WHAT}: Expecting 'update' to be present")
        _check_status(call.update.status, "update.status")
    elif call.type == "MESSAGE":
        if call.message is None:
            raise CallInvalid(f"Failed to validate {WHAT}: Expecting 'message.data' to be present")
        _check_base64(call.message.data, "message.data")
    elif call.type == "SUBSCRIBE" and call.subscribe is not None:
        for index, update in enumerate(call.subscribe.unacknowledged_updates):
            _check_status(update.status, f"subscribe.unacknowledged_updates[{index}].status")
    return call


def status_json(status: TaskStatus) -> dict[str, Any]:
    """The status as it travels on: known fields only, an unknown ``reason`` dropped (as Mesos
    drops an unknown name in an optional enum)."""
    if status.reason is not None and status.reason not in REASONS:
        status = msgspec.structs.replace(status, reason=None)
    if status.source is not None and status.source not in SOURCES:
        status = msgspec.structs.replace(status, source=None)
    out: dict[str, Any] = msgspec.to_builtins(status)
    return out


def _check_status(status: TaskStatus, where: str) -> None:
    problem = uuid_problem(status.uuid)
    if problem is not None:
        raise CallInvalid(f"Failed to validate {WHAT}: '{where}.uuid' {problem}")
    if status.data is not None:
        _check_base64(status.data, f"{where}.data")
    if status.timestamp is not None and not math.isfinite(status.timestamp):  # "NaN" as a string, decoded laxly
        raise CallInvalid(f"Failed to validate {WHAT}: '{where}.timestamp' must be a finite number")


def uuid_problem(value: str) -> str | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64"
    return None if len(raw) == 16 else f"must decode to 16 bytes, got {len(raw)}"


def _check_base64(value: str, where: str) -> None:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CallInvalid(f"Failed to validate {WHAT}: '{where}' is not valid base64") from None
