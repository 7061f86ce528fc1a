"""TaskInfo, ExecutorInfo and task groups at the edge (spec 1.6, 1.7).

Two kinds of problem, as in Mesos::

    would not parse into the proto's types ("scalar": 0.1, "task_group": 1, "name": 7)
        -> CallRejected(400): the whole call is refused before any offer is touched
    parses, but breaks a rule (no name, a bad id, command and executor both or neither, no or
    invalid resources, an executor without command) -> InvalidTask: TASK_ERROR for that task
    (REASON_TASK_INVALID, or REASON_TASK_GROUP_INVALID for every task of a bad group)

What depends on the master's state (the offer's agent, duplicate ids, a running executor, whether
the offered resources hold the task) is checked by ``meseta.master.launch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meseta.core.resources import Resources, ranges_contain
from meseta.master.validation.errors import CallRejected, invalid
from meseta.master.validation.fields import base64_bytes, checked_id, resources, structured
from meseta.protocol import messages
from meseta.protocol.container_info import ContainerInfoError, ContainerSpec, container_spec


@dataclass(frozen=True, slots=True)
class ExecutorSpec:
    id: str
    raw: dict[str, Any]  # forwarded to the agent as sent (the master adds framework_id)
    type: str  # CUSTOM, DEFAULT, or "" when unset (a LAUNCH's custom executor)
    resources: Resources


@dataclass(frozen=True, slots=True)
class TaskSpec:
    id: str
    raw: dict[str, Any]  # forwarded to the agent as sent (the master adds allocation_info)
    agent_id: str
    resources: Resources
    executor: ExecutorSpec | None


@dataclass(frozen=True, slots=True)
class InvalidTask:
    id: str  # as given ("" when it has none): the TASK_ERROR names it
    message: str


@dataclass(frozen=True, slots=True)
class LaunchGroupSpec:
    executor: ExecutorSpec | None
    tasks: tuple[TaskSpec | InvalidTask, ...]
    problem: str | None  # the group as a whole is invalid: every task gets TASK_ERROR with this

    @property
    def task_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.tasks)


def parse_task(raw: Any, where: str) -> TaskSpec | InvalidTask:
    typed = structured(raw, messages.TaskInfo, where)
    given_id = (typed.task_id.value if typed.task_id is not None else None) or ""
    try:
        return _task(raw, typed)
    except CallRejected as exc:
        return InvalidTask(given_id, exc.message)


def _task(raw: dict[str, Any], typed: messages.TaskInfo) -> TaskSpec:
    try:
        task_id = checked_id("task_id", typed.task_id)
    except CallRejected as exc:
        raise invalid(f"Task has an invalid ID: {exc.message}") from None
    if typed.name is None:
        raise invalid("Task 'name' is required")
    try:
        agent_id = checked_id("agent_id", typed.agent_id or typed.slave_id)
    except CallRejected as exc:
        raise invalid(f"Task has an invalid agent ID: {exc.message}") from None
    if (typed.command is None) == (typed.executor is None):
        raise invalid("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present")
    try:
        own = resources(raw.get("resources"), "resources")
    except CallRejected as exc:
        raise invalid(f"Task has invalid resources: {exc.message}") from None
    if own.is_empty():
        raise invalid("Task uses no resources")
    base64_bytes(typed.data, "data")
    spec = _container(raw, own, "Task")
    executor = None
    if typed.command is not None:
        _command(typed.command, "command", has_image=spec.image is not None)
    else:
        executor = _executor(raw["executor"], typed.executor)
    return TaskSpec(task_id, raw, agent_id, own, executor)


def parse_executor(raw: Any, where: str) -> ExecutorSpec:
    """An ExecutorInfo on its own (LAUNCH_GROUP's); a broken rule is a CallRejected naming it."""
    return _executor(raw, structured(raw, messages.ExecutorInfo, where))


def _executor(raw: dict[str, Any], typed: messages.ExecutorInfo | None) -> ExecutorSpec:
    assert typed is not None
    try:
        executor_id = checked_id("executor_id", typed.executor_id)
    except CallRejected as exc:
        raise invalid(f"Executor has an invalid ID: {exc.message}") from None
    kind = typed.type or ""
    if kind not in ("", "CUSTOM", "DEFAULT"):
        raise invalid(f"ExecutorInfo 'type' must be DEFAULT or CUSTOM, got '{kind}'")
    if kind != "DEFAULT" and typed.command is None:
        raise invalid("ExecutorInfo 'command' is required for a CUSTOM executor")
    if typed.command is not None:
        _command(typed.command, "executor.command")
    base64_bytes(typed.data, "executor.data")
    try:
        own = resources(raw.get("resources"), "resources")
    except CallRejected as exc:
        raise invalid(f"Executor has invalid resources: {exc.message}") from None
    if kind == "DEFAULT" and raw.get("container") not in (None, {}):
        raise invalid("ExecutorInfo 'container' is not supported for a DEFAULT executor (its tasks run on the "
                      "host, without images or networks)")
    _container(raw, own, "Executor")
    return ExecutorSpec(executor_id, raw, kind, own)


def _container(raw: dict[str, Any], own: Resources, who: str) -> ContainerSpec:
    """The ContainerInfo of a task or executor, its port mappings on its own ports."""
    ports = own.ranges("ports")
    try:
        return container_spec(raw.get("container"), holds_port=lambda port: ranges_contain(ports, ((port, port),)))
    except ContainerInfoError as exc:
        raise invalid(f"{who}'s ContainerInfo is invalid: {exc}") from None


def _command(command: messages.CommandInfo, where: str, has_image: bool = False) -> None:
    """A command names what to run; only an image's Entrypoint/Cmd can stand in for a missing value
    (shell false), as Mesos's docker/runtime isolator lets it."""
    if command.value is None and not (has_image and command.shell is False):
        shell = command.shell is None or command.shell
        raise invalid(f"'{where}.value' is required when shell is true" if shell
                      else f"'{where}.value' (the executable) is required when shell is false")


def parse_launch_group(raw: Any, where: str) -> LaunchGroupSpec:
    """LAUNCH_GROUP's ``{executor, task_group: {tasks}}``: every task is refused with the group's
    problem if the group breaks a rule, else each stands on its own."""
    if not isinstance(raw, dict):
        raise invalid(f"'{where}' must be an object")
    group = raw.get("task_group")
    if group is not None and not isinstance(group, dict):
        raise invalid(f"'{where}.task_group' must be an object")
    raw_tasks = (group or {}).get("tasks") or []
    if not isinstance(raw_tasks, list):
        raise invalid(f"'{where}.task_group.tasks' must be a list of TaskInfo")
    raw_executor = raw.get("executor")
    if raw_executor is not None:
        structured(raw_executor, messages.ExecutorInfo, f"{where}.executor")
    for index, task in enumerate(raw_tasks):
        structured(task, messages.TaskInfo, f"{where}.task_group.tasks[{index}]")
    tasks = tuple(_group_task(task, raw_executor, f"{where}.task_group.tasks[{i}]")
                  for i, task in enumerate(raw_tasks))
    try:
        executor = _group_executor(raw_executor, tasks)
    except CallRejected as exc:
        return LaunchGroupSpec(None, tasks, exc.message)
    bad = next((t for t in tasks if isinstance(t, InvalidTask)), None)
    return LaunchGroupSpec(executor, tasks, bad.message if bad is not None else None)


def _group_executor(raw_executor: Any, tasks: tuple[TaskSpec | InvalidTask, ...]) -> ExecutorSpec:
    if raw_executor is None:
        raise invalid("'launch_group.executor' is required")
    executor = parse_executor(raw_executor, "launch_group.executor")
    if executor.type not in ("DEFAULT", "CUSTOM"):
        raise invalid("'launch_group.executor.type' must be DEFAULT or CUSTOM")
    if not tasks:
        raise invalid("Task group is empty")
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        raise invalid("Task group has duplicate task ids")
    return executor


def _group_task(raw: dict[str, Any], raw_executor: Any, where: str) -> TaskSpec | InvalidTask:
    given_id = str((raw.get("task_id") or {}).get("value") or "")
    if raw.get("executor") is not None:
        return InvalidTask(given_id, f"Task '{given_id}' in a task group must not set 'executor'")
    if raw.get("container") not in (None, {}):
        return InvalidTask(given_id, f"Task '{given_id}' in a task group: 'container' is not supported (the "
                                     "group's tasks run in their executor's container: no images or networks)")
    if raw.get("command") is None and isinstance(raw_executor, dict):  # the group's executor runs it
        checked = parse_task({**raw, "executor": raw_executor}, where)
        if isinstance(checked, TaskSpec):
            return TaskSpec(checked.id, raw, checked.agent_id, checked.resources, None)
        return checked
    return parse_task(raw, where)
