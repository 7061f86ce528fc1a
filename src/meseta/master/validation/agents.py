"""The agent protocol at the master's edge (``meseta.protocol.agent_wire``): what an agent sends
becomes frozen records, every field checked, before the master acts on it::

    POST /internal/agent       REGISTER    -> Registration(info, total)
                               REREGISTER  -> Reregistration(agent_id, info, total, frameworks,
                                                             executors, tasks)
    POST /internal/agent/call  STATUS_UPDATE -> StatusUpdate      PONG -> Pong
                               EXECUTOR_MESSAGE -> ExecutorMessage  EXECUTOR_EXITED -> ExecutorExited

A problem raises CallRejected(400) naming the field; the agent's stream or call changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meseta.core.resources import Resources
from meseta.master.validation.errors import invalid
from meseta.master.validation.fields import base64_bytes, checked_id, raw_id, resources, structured, uuid_bytes
from meseta.master.validation.frameworks import FrameworkInfo, parse_framework_info
from meseta.protocol import messages
from meseta.protocol.task_states import TaskState

MAX_REPORTED = 1_000_000  # tasks or executors one agent may report: far beyond any real machine
MAX_HOSTNAME = 255  # a DNS name is at most 253 characters


@dataclass(frozen=True, slots=True)
class Registration:
    info: dict[str, Any]
    total: Resources


@dataclass(frozen=True, slots=True)
class ReportedExecutor:
    framework_id: str
    executor_id: str
    info: dict[str, Any]
    resources: Resources


@dataclass(frozen=True, slots=True)
class ReportedTask:
    framework_id: str
    task_id: str
    info: dict[str, Any]
    state: str
    executor_id: str  # "" for a command task
    resources: Resources


@dataclass(frozen=True, slots=True)
class Reregistration:
    agent_id: str
    info: dict[str, Any]
    total: Resources
    frameworks: tuple[FrameworkInfo, ...]
    executors: tuple[ReportedExecutor, ...]
    tasks: tuple[ReportedTask, ...]


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    framework_id: str
    task_id: str
    state: str
    uuid: str | None
    status: dict[str, Any]  # the TaskStatus as the executor sent it, forwarded to the framework
    latest_state: str | None  # the task's latest state at the agent (may be past this update's)


@dataclass(frozen=True, slots=True)
class Pong:
    pass


@dataclass(frozen=True, slots=True)
class ExecutorMessage:
    framework_id: str
    executor_id: str
    data: str


@dataclass(frozen=True, slots=True)
class ExecutorExited:
    framework_id: str
    executor_id: str
    status: int
    custom: bool


AgentCall = StatusUpdate | Pong | ExecutorMessage | ExecutorExited


def parse_stream_call(body: Any) -> Registration | Reregistration:
    if not isinstance(body, dict):
        raise invalid("the agent's call must be an object")
    kind = body.get("type")
    info, total = _agent_info(body.get("agent_info"))
    if kind == "REGISTER":
        return Registration(info, total)
    if kind != "REREGISTER":
        raise invalid(f"Unknown agent stream call '{kind}'")
    agent_id = raw_id(info.get("id"), "agent_info.id")
    frameworks = tuple(parse_framework_info(f, f"frameworks[{i}]") for i, f in enumerate(_list(body, "frameworks")))
    executors = tuple(_executor(e, f"executor_infos[{i}]") for i, e in enumerate(_list(body, "executor_infos")))
    tasks = tuple(_task(t, f"tasks[{i}]") for i, t in enumerate(_list(body, "tasks")))
    return Reregistration(agent_id, info, total, frameworks, executors, tasks)


def _agent_info(raw: Any) -> tuple[dict[str, Any], Resources]:
    """The AgentInfo the master keeps (and the registry stores), rebuilt from its checked parts:
    hostname, port (default 5051) and attributes in their canonical forms; unset (null) members
    dropped, the rest (resources included, once they parse) as sent."""
    typed = structured(raw, messages.AgentInfo, "agent_info")
    hostname = typed.hostname
    if not hostname or len(hostname) > MAX_HOSTNAME:
        raise invalid(f"'agent_info.hostname' is required, at most {MAX_HOSTNAME} characters")
    port = 5051 if typed.port is None else typed.port
    if port > 65535:
        raise invalid(f"'agent_info.port' must be a port number, got {port}")
    assert isinstance(raw, dict)
    total = resources(raw.get("resources"), "agent_info.resources")
    info = {k: v for k, v in raw.items() if v is not None}
    info.update(hostname=hostname, port=port)
    if typed.attributes:
        info["attributes"] = [_attribute(a, f"agent_info.attributes[{i}]") for i, a in enumerate(typed.attributes)]
    return info, total


def _attribute(attribute: messages.Attribute, where: str) -> dict[str, Any]:
    """An Attribute with its name and the value its type says (Mesos requires both)."""
    if not attribute.name:
        raise invalid(f"'{where}.name' is required")
    kind = attribute.type or "TEXT"
    value: dict[str, Any] | None = None
    if kind == "SCALAR" and attribute.scalar is not None and attribute.scalar.value is not None:
        value = {"scalar": {"value": attribute.scalar.value}}
    elif kind == "RANGES" and attribute.ranges is not None:
        pairs = [(r.begin, r.end) for r in attribute.ranges.range]
        if all(b is not None and e is not None and b <= e for b, e in pairs):
            value = {"ranges": {"range": [{"begin": b, "end": e} for b, e in pairs]}}
    elif kind == "SET" and attribute.set is not None:
        value = {"set": {"item": list(attribute.set.item)}}
    elif kind == "TEXT" and isinstance((attribute.text or {}).get("value"), str):
        value = {"text": {"value": (attribute.text or {})["value"]}}
    if value is None:
        raise invalid(f"'{where}' of type {kind} needs its {kind.lower()} value")
    return {"name": attribute.name, "type": kind, **value}


def _list(body: dict[str, Any], field: str) -> list[Any]:
    value = body.get(field) or []
    if not isinstance(value, list) or len(value) > MAX_REPORTED:
        raise invalid(f"'{field}' must be a list (of at most {MAX_REPORTED})")
    return value


def _executor(raw: Any, where: str) -> ReportedExecutor:
    typed = structured(raw, messages.ExecutorInfo, where)
    framework_id = checked_id(f"{where}.framework_id", typed.framework_id)
    executor_id = checked_id(f"{where}.executor_id", typed.executor_id)
    return ReportedExecutor(framework_id, executor_id, raw, resources(raw.get("resources"), f"{where}.resources"))


def _task(raw: Any, where: str) -> ReportedTask:
    if not isinstance(raw, dict):
        raise invalid(f"'{where}' must be an object")
    framework_id = raw_id(raw.get("framework_id"), f"{where}.framework_id")
    info = structured(raw.get("info"), messages.TaskInfo, f"{where}.info")
    task_id = checked_id(f"{where}.info.task_id", info.task_id)
    state = raw.get("state", "TASK_STAGING")
    if not isinstance(state, str) or state not in TaskState.__members__:
        raise invalid(f"'{where}.state' must be a task state, got {state!r}")
    executor_id = raw.get("executor_id") or ""
    if not isinstance(executor_id, str):
        raise invalid(f"'{where}.executor_id' must be a string")
    return ReportedTask(framework_id, task_id, raw["info"], state, executor_id,
                        resources(raw.get("resources"), f"{where}.resources"))


def parse_agent_call(body: Any) -> tuple[str, AgentCall]:
    """(the calling agent's id, the call)."""
    if not isinstance(body, dict):
        raise invalid("the agent's call must be an object")
    agent_id = raw_id(body.get("agent_id"), "agent_id")
    kind = body.get("type")
    if kind == "STATUS_UPDATE":
        return agent_id, _status_update(body.get("update"))
    if kind == "PONG":
        return agent_id, Pong()
    if kind == "EXECUTOR_MESSAGE":
        data = body.get("data")
        if not isinstance(data, str):
            raise invalid("'data' must be a base64 string")
        base64_bytes(data, "data")
        return agent_id, ExecutorMessage(raw_id(body.get("framework_id"), "framework_id"),
                                         raw_id(body.get("executor_id"), "executor_id"), data)
    if kind == "EXECUTOR_EXITED":
        status, custom = body.get("status", 0), body.get("custom", False)
        if isinstance(status, bool) or not isinstance(status, int) or not -(2**31) <= status < 2**31:
            raise invalid("'status' must be a 32-bit integer (the wait status)")
        if not isinstance(custom, bool):
            raise invalid("'custom' must be a boolean")
        return agent_id, ExecutorExited(raw_id(body.get("framework_id"), "framework_id"),
                                        raw_id(body.get("executor_id"), "executor_id"), status, custom)
    raise invalid(f"Unknown agent call '{kind}'")


def _status_update(raw: Any) -> StatusUpdate:
    if not isinstance(raw, dict):
        raise invalid("'update' must be an object {framework_id, status, latest_state}")
    framework_id = raw_id(raw.get("framework_id"), "update.framework_id")
    status = structured(raw.get("status"), messages.TaskStatus, "update.status")
    task_id = checked_id("update.status.task_id", status.task_id)
    if status.state is None:
        raise invalid("'update.status.state' is required")
    uuid = uuid_bytes(status.uuid, "update.status.uuid") if status.uuid is not None else None
    base64_bytes(status.data, "update.status.data")
    latest = raw.get("latest_state")
    if latest is not None and (not isinstance(latest, str) or latest not in TaskState.__members__):
        raise invalid(f"'update.latest_state' must be a task state, got {latest!r}")
    return StatusUpdate(framework_id, task_id, str(status.state), uuid, raw["status"], latest)
