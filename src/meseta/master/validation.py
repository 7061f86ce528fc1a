"""Pure validation of what schedulers send: FrameworkInfo, TaskInfo, ExecutorInfo, ids.

Each function returns the problem as a message naming the field, or None when all is well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meseta.core.resources import ResourceError, Resources, validate_role

MAX_ID_LENGTH = 255  # NAME_MAX: ids become path components on agents


def id_problem(kind: str, value: Any) -> str | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("value"), str):
        return f"{kind} must be an object {{\"value\": \"...\"}}"
    text = value["value"]
    if not text:
        return f"{kind} must not be empty"
    if len(text) > MAX_ID_LENGTH:
        return f"{kind} '{text[:32]}...' is longer than {MAX_ID_LENGTH} characters"
    if text in (".", ".."):
        return f"{kind} '{text}' is not allowed"
    if any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in text):
        return f"{kind} '{text}' contains '/', '\\\\' or a control character"
    return None


def framework_roles(info: Mapping[str, Any]) -> tuple[str, ...]:
    """The framework's roles: ``roles`` with MULTI_ROLE, else ``role`` (default ``*``)."""
    if "MULTI_ROLE" in capability_names(info):
        return tuple(info.get("roles") or ())
    return (str(info.get("role") or "*"),)


def capability_names(info: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(str(c.get("type")) for c in info.get("capabilities") or () if isinstance(c, Mapping))


def framework_info_problem(info: Any) -> str | None:
    if not isinstance(info, Mapping):
        return "'subscribe.framework_info' must be an object"
    for required in ("user", "name"):
        if not isinstance(info.get(required), str):
            return f"'framework_info.{required}' is required and must be a string"
    multi = "MULTI_ROLE" in capability_names(info)
    if multi and info.get("role") not in (None, "*") and info.get("roles"):
        return "'framework_info.role' and 'framework_info.roles' cannot both be set"
    if not multi and info.get("roles"):
        return "'framework_info.roles' requires the MULTI_ROLE capability"
    for role in framework_roles(info):
        problem = validate_role(role) if isinstance(role, str) else "role must be a string"
        if problem:
            return f"'framework_info' role is invalid: {problem}"
    timeout = info.get("failover_timeout", 0)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0 or timeout != timeout:
        return "'framework_info.failover_timeout' must be a non-negative number"
    if info.get("id") is not None:
        return id_problem("framework_info.id", info["id"])
    return None


def task_resources(task: Mapping[str, Any]) -> tuple[Resources | None, str | None]:
    try:
        resources = Resources.from_json(task.get("resources") or [])
    except ResourceError as exc:
        return None, f"Task has invalid resources: {exc}"
    if resources.is_empty():
        return None, "Task uses no resources"
    return resources, None


def task_info_problem(task: Any, agent_id: str) -> str | None:
    """Static checks of one TaskInfo (duplicates and resource fit are checked by the machine)."""
    if not isinstance(task, Mapping):
        return "TaskInfo must be an object"
    problem = id_problem("task_id", task.get("task_id"))
    if problem:
        return f"Task has an invalid ID: {problem}"
    if not isinstance(task.get("name"), str):
        return "Task 'name' is required"
    task_agent = task.get("agent_id") or task.get("slave_id")
    if not isinstance(task_agent, Mapping) or task_agent.get("value") != agent_id:
        return f"Task uses agent_id {_value(task_agent)!r}, not the offer's agent '{agent_id}'"
    has_command, has_executor = task.get("command") is not None, task.get("executor") is not None
    if has_command == has_executor:
        return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
    if has_executor:
        return executor_info_problem(task["executor"])
    return command_problem(task["command"], "command")


def executor_info_problem(executor: Any) -> str | None:
    if not isinstance(executor, Mapping):
        return "ExecutorInfo must be an object"
    problem = id_problem("executor_id", executor.get("executor_id"))
    if problem:
        return f"Executor has an invalid ID: {problem}"
    if executor.get("type") != "DEFAULT" and executor.get("command") is None:
        return "ExecutorInfo 'command' is required for a CUSTOM executor"
    if executor.get("command") is not None:
        return command_problem(executor["command"], "executor.command")
    return None


def command_problem(command: Any, where: str) -> str | None:
    if not isinstance(command, Mapping):
        return f"'{where}' must be an object"
    shell = command.get("shell", True)
    if shell and not isinstance(command.get("value"), str):
        return f"'{where}.value' is required when shell is true"
    if not shell and not isinstance(command.get("value"), str):
        return f"'{where}.value' (the executable) is required when shell is false"
    return None


def _value(id_obj: Any) -> Any:
    return id_obj.get("value") if isinstance(id_obj, Mapping) else id_obj
