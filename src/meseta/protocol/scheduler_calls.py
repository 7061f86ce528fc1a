"""Decoding and validation of v1 scheduler ``Call`` bodies at the wire boundary.

Only the envelope and the fields the master acts on are typed; pass-through messages
(FrameworkInfo, TaskInfo, operations) stay JSON objects and are validated by the master.
Errors name the field: ``Expected `str`, got `int` - at `$.framework_id.value```.
"""

from __future__ import annotations

from typing import Any

import msgspec

from meseta.protocol.json_edge import JsonRejected, decode_typed


class ID(msgspec.Struct):
    value: str


class Filters(msgspec.Struct):
    refuse_seconds: float = 5.0


class Subscribe(msgspec.Struct):
    framework_info: dict[str, Any]
    suppressed_roles: list[str] = []
    offer_constraints: dict[str, Any] | None = None  # read only to refuse it: Meseta does not carry it out


class Accept(msgspec.Struct):
    offer_ids: list[ID] = []
    operations: list[dict[str, Any]] = []
    filters: Filters | None = None


class Decline(msgspec.Struct):
    offer_ids: list[ID] = []
    filters: Filters | None = None


class InverseOffers(msgspec.Struct):
    inverse_offer_ids: list[ID] = []
    filters: Filters | None = None


class Roles(msgspec.Struct):
    roles: list[str] = []
    role: str | None = None  # pre-1.2 single-role form


class Kill(msgspec.Struct):
    task_id: ID
    agent_id: ID | None = None
    kill_policy: dict[str, Any] | None = None


class Shutdown(msgspec.Struct):
    executor_id: ID
    agent_id: ID


class Acknowledge(msgspec.Struct):
    agent_id: ID
    task_id: ID
    uuid: str


class ReconcileTask(msgspec.Struct):
    task_id: ID
    agent_id: ID | None = None


class Reconcile(msgspec.Struct):
    tasks: list[ReconcileTask] = []


class Message(msgspec.Struct):
    agent_id: ID
    executor_id: ID
    data: str


class UpdateFramework(msgspec.Struct):
    framework_info: dict[str, Any]
    suppressed_roles: list[str] = []
    offer_constraints: dict[str, Any] | None = None  # read only to refuse it: Meseta does not carry it out


class Call(msgspec.Struct):
    type: str
    framework_id: ID | None = None
    subscribe: Subscribe | None = None
    accept: Accept | None = None
    decline: Decline | None = None
    accept_inverse_offers: InverseOffers | None = None
    decline_inverse_offers: InverseOffers | None = None
    revive: Roles | None = None
    suppress: Roles | None = None
    kill: Kill | None = None
    shutdown: Shutdown | None = None
    acknowledge: Acknowledge | None = None
    reconcile: Reconcile | None = None
    message: Message | None = None
    update_framework: UpdateFramework | None = None


# Call type -> the payload field it requires (None: no payload needed).
CALL_PAYLOADS: dict[str, str | None] = {
    "SUBSCRIBE": "subscribe",
    "TEARDOWN": None,
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "REVIVE": None,
    "SUPPRESS": None,
    "KILL": "kill",
    "SHUTDOWN": "shutdown",
    "ACKNOWLEDGE": "acknowledge",
    "ACKNOWLEDGE_OPERATION_STATUS": None,
    "RECONCILE": "reconcile",
    "RECONCILE_OPERATIONS": None,
    "MESSAGE": "message",
    "REQUEST": None,
    "UPDATE_FRAMEWORK": "update_framework",
}


class CallError(ValueError):
    """The body is not a valid call; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode_call(body: bytes) -> Call:
    try:
        call = decode_typed(body, Call, "Call")
    except JsonRejected as exc:
        raise CallError(exc.status, exc.message) from None
    if call.type == "UNKNOWN":
        raise CallError(501, "Received an unknown call type 'UNKNOWN'")
    if call.type not in CALL_PAYLOADS:
        raise CallError(400, f"Failed to validate scheduler::Call: unknown call type '{call.type}'")
    payload = CALL_PAYLOADS[call.type]
    if payload is not None and getattr(call, payload) is None:
        raise CallError(400, f"Failed to validate scheduler::Call: Expecting '{payload}' to be present")
    if call.type != "SUBSCRIBE" and call.framework_id is None:
        raise CallError(400, "Failed to validate scheduler::Call: Expecting 'framework_id' to be present")
    if call.type == "SUBSCRIBE":
        _check_subscribe_ids(call)
    return call


def _check_subscribe_ids(call: Call) -> None:
    assert call.subscribe is not None
    info_id = call.subscribe.framework_info.get("id")
    info_value = info_id.get("value") if isinstance(info_id, dict) else None
    call_value = call.framework_id.value if call.framework_id else None
    if info_value != call_value:
        raise CallError(
            400,
            "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'",
        )


def roles_of(payload: Roles | None) -> list[str]:
    if payload is None:
        return []
    return list(payload.roles) + ([payload.role] if payload.role else [])
