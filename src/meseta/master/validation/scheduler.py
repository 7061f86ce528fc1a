"""Scheduler calls at the edge: a decoded ``Call`` (``meseta.protocol.scheduler_calls``) becomes
one frozen record per call type, every field checked, before the master sees it::

    SUBSCRIBE               Subscribe(info: FrameworkInfo, framework_id, suppressed_roles)
    UPDATE_FRAMEWORK        UpdateFramework(info, suppressed_roles)
    ACCEPT                  Accept(offer_ids, operations: Launch | LaunchGroup | OfferOperation,
                                   refuse_seconds); another operation type is refused, named
    DECLINE                 Decline(offer_ids, refuse_seconds)
    ACCEPT/DECLINE_INVERSE_OFFERS   InverseAnswer(ids, accept, refuse_seconds)
    REVIVE / SUPPRESS       Revive(roles) / Suppress(roles)
    KILL SHUTDOWN ACKNOWLEDGE RECONCILE MESSAGE TEARDOWN   one record each
    REQUEST, ACKNOWLEDGE_OPERATION_STATUS, RECONCILE_OPERATIONS   NoOp (accepted, nothing to do)

A problem raises CallRejected(400, "Failed to validate scheduler::Call: <field>: <problem>").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meseta.core.resources import ResourceError, Resources
from meseta.master.validation.errors import CallRejected, invalid
from meseta.master.validation.fields import base64_bytes, checked_id, structured, uuid_bytes
from meseta.master.validation.frameworks import FrameworkInfo, parse_framework_info
from meseta.master.validation.tasks import InvalidTask, LaunchGroupSpec, TaskSpec, parse_launch_group, parse_task
from meseta.protocol import messages, scheduler_calls
from meseta.protocol.messages import ID

OFFER_OPERATIONS = {"RESERVE": "resources", "UNRESERVE": "resources", "CREATE": "volumes", "DESTROY": "volumes"}
PREFIX = "Failed to validate scheduler::Call: "


@dataclass(frozen=True, slots=True)
class Subscribe:
    info: FrameworkInfo | None  # None when ``refusal`` says why the FrameworkInfo is not acceptable
    framework_id: str | None
    suppressed_roles: frozenset[str]
    refusal: str | None = None  # answered 200, one ERROR event, then the stream closes (spec 1.3)


@dataclass(frozen=True, slots=True)
class UpdateFramework:
    info: FrameworkInfo
    suppressed_roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class Launch:
    tasks: tuple[TaskSpec | InvalidTask, ...]


@dataclass(frozen=True, slots=True)
class LaunchGroup:
    group: LaunchGroupSpec


@dataclass(frozen=True, slots=True)
class OfferOperation:
    """RESERVE, UNRESERVE, CREATE or DESTROY on offered resources."""

    kind: str
    resources: Resources | None  # None: invalid, dropped with ``problem``
    problem: str | None = None


Operation = Launch | LaunchGroup | OfferOperation


@dataclass(frozen=True, slots=True)
class Accept:
    offer_ids: tuple[str, ...]
    operations: tuple[Operation, ...]
    refuse_seconds: float | None

    def task_ids(self) -> list[str]:
        """Every task this ACCEPT launches (answered TASK_LOST/DROPPED when its offers are invalid)."""
        ids: list[str] = []
        for operation in self.operations:
            if isinstance(operation, Launch):
                ids += [t.id for t in operation.tasks]
            elif isinstance(operation, LaunchGroup):
                ids += list(operation.group.task_ids)
        return ids


@dataclass(frozen=True, slots=True)
class Decline:
    offer_ids: tuple[str, ...]
    refuse_seconds: float | None


@dataclass(frozen=True, slots=True)
class InverseAnswer:
    inverse_offer_ids: tuple[str, ...]
    accept: bool
    refuse_seconds: float | None


@dataclass(frozen=True, slots=True)
class Revive:
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Suppress:
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Kill:
    task_id: str
    agent_id: str | None
    kill_policy: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Shutdown:
    executor_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class Acknowledge:
    agent_id: str
    task_id: str
    uuid: str


@dataclass(frozen=True, slots=True)
class Reconcile:
    tasks: tuple[tuple[str, str | None], ...]  # (task id, agent id)


@dataclass(frozen=True, slots=True)
class FrameworkMessage:
    agent_id: str
    executor_id: str
    data: str


@dataclass(frozen=True, slots=True)
class Teardown:
    pass


@dataclass(frozen=True, slots=True)
class NoOp:
    kind: str


SchedulerCall = (Subscribe | UpdateFramework | Accept | Decline | InverseAnswer | Revive | Suppress | Kill
                 | Shutdown | Acknowledge | Reconcile | FrameworkMessage | Teardown | NoOp)


def parse_call(call: scheduler_calls.Call) -> SchedulerCall:
    """The record for a decoded call; CallRejected(400) naming the field otherwise."""
    try:
        return _PARSERS.get(call.type, _no_op)(call)
    except CallRejected as exc:
        if exc.status == 400 and not exc.message.startswith(PREFIX):
            raise CallRejected(400, PREFIX + exc.message) from None
        raise


def _subscribe(call: scheduler_calls.Call) -> Subscribe:
    """A FrameworkInfo that would not parse is a 400; one that parses but breaks a rule (roles,
    failover_timeout, a missing user or name) is refused the Mesos way: 200, ERROR, close."""
    assert call.subscribe is not None
    _not_supported(call.subscribe.offer_constraints, "subscribe.offer_constraints")
    framework_id = _id("framework_id", call.framework_id) if call.framework_id is not None else None
    suppressed = frozenset(call.subscribe.suppressed_roles)
    raw = call.subscribe.framework_info
    structured(raw, messages.FrameworkInfo, "subscribe.framework_info")
    try:
        return Subscribe(parse_framework_info(raw, "subscribe.framework_info"), framework_id, suppressed)
    except CallRejected as exc:
        return Subscribe(None, framework_id, suppressed, refusal=exc.message)


def _update_framework(call: scheduler_calls.Call) -> UpdateFramework:
    assert call.update_framework is not None
    _not_supported(call.update_framework.offer_constraints, "update_framework.offer_constraints")
    info = parse_framework_info(call.update_framework.framework_info, "update_framework.framework_info")
    return UpdateFramework(info, frozenset(call.update_framework.suppressed_roles))


def _accept(call: scheduler_calls.Call) -> Accept:
    accept = call.accept
    assert accept is not None
    offer_ids = tuple(_id(f"accept.offer_ids[{i}]", o) for i, o in enumerate(accept.offer_ids))
    operations = tuple(_operation(op, f"accept.operations[{i}]") for i, op in enumerate(accept.operations))
    return Accept(offer_ids, operations, _refuse(accept.filters))


def _operation(raw: Any, where: str) -> Operation:
    if not isinstance(raw, dict):
        raise invalid(f"'{where}' must be an object")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise invalid(f"'{where}.type' is required and must be a string")
    if kind == "LAUNCH":
        launch = _object(raw.get("launch"), f"{where}.launch")
        task_infos = launch.get("task_infos") or []
        if not isinstance(task_infos, list):
            raise invalid(f"'{where}.launch.task_infos' must be a list of TaskInfo")
        return Launch(tuple(parse_task(t, f"{where}.launch.task_infos[{i}]") for i, t in enumerate(task_infos)))
    if kind == "LAUNCH_GROUP":
        return LaunchGroup(parse_launch_group(_object(raw.get("launch_group"), f"{where}.launch_group"),
                                              f"{where}.launch_group"))
    if kind in OFFER_OPERATIONS:
        return _offer_operation(kind, _object(raw.get(kind.lower()), f"{where}.{kind.lower()}"),
                                f"{where}.{kind.lower()}")
    supported = ", ".join(["LAUNCH", "LAUNCH_GROUP", *OFFER_OPERATIONS])
    raise invalid(f"'{where}.type' {kind!r} is not supported (supported: {supported})")


def _offer_operation(kind: str, body: dict[str, Any], where: str) -> OfferOperation:
    field = OFFER_OPERATIONS[kind]
    items = body.get(field) or []
    if not isinstance(items, list):
        raise invalid(f"'{where}.{field}' must be a list of Resource objects")
    for index, item in enumerate(items):
        structured(item, messages.Resource, f"{where}.{field}[{index}]")
    try:
        return OfferOperation(kind, Resources.from_json(items))
    except ResourceError as exc:
        return OfferOperation(kind, None, str(exc))


def _decline(call: scheduler_calls.Call) -> Decline:
    decline = call.decline
    assert decline is not None
    ids = tuple(_id(f"decline.offer_ids[{i}]", o) for i, o in enumerate(decline.offer_ids))
    return Decline(ids, _refuse(decline.filters))


def _inverse(call: scheduler_calls.Call) -> InverseAnswer:
    accept = call.type == "ACCEPT_INVERSE_OFFERS"
    payload = call.accept_inverse_offers if accept else call.decline_inverse_offers
    assert payload is not None
    where = call.type.lower()
    ids = tuple(_id(f"{where}.inverse_offer_ids[{i}]", o) for i, o in enumerate(payload.inverse_offer_ids))
    return InverseAnswer(ids, accept, _refuse(payload.filters))


def _revive(call: scheduler_calls.Call) -> Revive:
    return Revive(tuple(sorted(set(scheduler_calls.roles_of(call.revive)))))


def _suppress(call: scheduler_calls.Call) -> Suppress:
    return Suppress(tuple(sorted(set(scheduler_calls.roles_of(call.suppress)))))


def _kill(call: scheduler_calls.Call) -> Kill:
    kill = call.kill
    assert kill is not None
    agent_id = _id("kill.agent_id", kill.agent_id) if kill.agent_id is not None else None
    if kill.kill_policy is not None:
        structured(kill.kill_policy, messages.KillPolicy, "kill.kill_policy")
    return Kill(_id("kill.task_id", kill.task_id), agent_id, kill.kill_policy)


def _shutdown(call: scheduler_calls.Call) -> Shutdown:
    shutdown = call.shutdown
    assert shutdown is not None
    return Shutdown(_id("shutdown.executor_id", shutdown.executor_id), _id("shutdown.agent_id", shutdown.agent_id))


def _acknowledge(call: scheduler_calls.Call) -> Acknowledge:
    ack = call.acknowledge
    assert ack is not None
    return Acknowledge(_id("acknowledge.agent_id", ack.agent_id), _id("acknowledge.task_id", ack.task_id),
                       uuid_bytes(ack.uuid, "uuid"))


def _reconcile(call: scheduler_calls.Call) -> Reconcile:
    assert call.reconcile is not None
    tasks = tuple((_id(f"reconcile.tasks[{i}].task_id", t.task_id),
                   _id(f"reconcile.tasks[{i}].agent_id", t.agent_id) if t.agent_id is not None else None)
                  for i, t in enumerate(call.reconcile.tasks))
    return Reconcile(tasks)


def _message(call: scheduler_calls.Call) -> FrameworkMessage:
    message = call.message
    assert message is not None
    base64_bytes(message.data, "message.data")
    return FrameworkMessage(_id("message.agent_id", message.agent_id), _id("message.executor_id", message.executor_id),
                            message.data)


def _teardown(call: scheduler_calls.Call) -> Teardown:
    return Teardown()


def _no_op(call: scheduler_calls.Call) -> NoOp:
    return NoOp(call.type)


_PARSERS: dict[str, Callable[[scheduler_calls.Call], SchedulerCall]] = {
    "SUBSCRIBE": _subscribe,
    "UPDATE_FRAMEWORK": _update_framework,
    "ACCEPT": _accept,
    "DECLINE": _decline,
    "ACCEPT_INVERSE_OFFERS": _inverse,
    "DECLINE_INVERSE_OFFERS": _inverse,
    "REVIVE": _revive,
    "SUPPRESS": _suppress,
    "KILL": _kill,
    "SHUTDOWN": _shutdown,
    "ACKNOWLEDGE": _acknowledge,
    "RECONCILE": _reconcile,
    "MESSAGE": _message,
    "TEARDOWN": _teardown,
}


# ----------------------------------------------------------------------------- fields


def _id(kind: str, value: scheduler_calls.ID) -> str:
    return checked_id(kind, ID(value.value))


def _not_supported(value: dict[str, Any] | None, where: str) -> None:
    if value:
        raise invalid(f"'{where}' is not supported by Meseta")


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"'{where}' must be an object")
    return value


def _refuse(filters: scheduler_calls.Filters | None) -> float | None:
    """Filters.refuse_seconds as given (the allocator applies Mesos's default, floor and cap)."""
    return None if filters is None else filters.refuse_seconds
