"""The scheduler side of the v1 API without I/O: call bodies out, callback intents in.

``SchedulerProtocol`` knows the framework's id and stream id, builds every call body in v1 JSON
(ids as ``{"value": ...}``, bytes as base64) and turns the RecordIO event stream into a list of
small intent records that the driver dispatches to the scheduler's callbacks, in order.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from meseta.protocol.ids import id_json
from meseta.protocol.recordio import RecordIODecoder


def encode_data(data: bytes) -> str:
    return base64.b64encode(data).decode()


def decode_data(text: str) -> bytes:
    return base64.b64decode(text)


def new_uuid() -> str:
    return encode_data(uuid.uuid4().bytes)



@dataclass(frozen=True)
class Subscribed:
    framework_id: str
    master_info: dict[str, Any]
    heartbeat_interval: float
    first_time: bool


@dataclass(frozen=True)
class Offers:
    offers: list[dict[str, Any]]


@dataclass(frozen=True)
class InverseOffers:
    offers: list[dict[str, Any]]


@dataclass(frozen=True)
class Rescind:
    offer_id: str


@dataclass(frozen=True)
class Update:
    status: dict[str, Any]

    @property
    def ack_needed(self) -> bool:
        """Only updates from the agent's reliable path carry a uuid; master-made ones are never acked."""
        return "uuid" in self.status


@dataclass(frozen=True)
class Message:
    agent_id: str
    executor_id: str
    data: bytes


@dataclass(frozen=True)
class Failure:
    agent_id: str
    executor_id: str | None
    status: int | None


@dataclass(frozen=True)
class Error:
    message: str


@dataclass(frozen=True)
class Heartbeat:
    pass


Intent = Subscribed | Offers | InverseOffers | Rescind | Update | Message | Failure | Error | Heartbeat


@dataclass
class SchedulerProtocol:
    framework_info: dict[str, Any]
    framework_id: str | None = None
    stream_id: str | None = None
    heartbeat_interval: float = 15.0
    _decoder: RecordIODecoder = field(default_factory=RecordIODecoder)

    def __post_init__(self) -> None:
        known = (self.framework_info.get("id") or {}).get("value")
        if known and self.framework_id is None:
            self.framework_id = known

    # ------------------------------------------------------------ calls
    def subscribe_body(self) -> dict[str, Any]:
        info = dict(self.framework_info)
        body: dict[str, Any] = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
        if self.framework_id:
            info["id"] = id_json(self.framework_id)
            body["framework_id"] = id_json(self.framework_id)
        return body

    def new_stream(self, stream_id: str | None) -> None:
        self.stream_id = stream_id
        self._decoder = RecordIODecoder()

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.stream_id:
            headers["Mesos-Stream-Id"] = self.stream_id
        return headers

    def call(self, kind: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        if not self.framework_id:
            raise ValueError(f"{kind} needs a framework id: subscribe first")
        body: dict[str, Any] = {"type": kind, "framework_id": id_json(self.framework_id)}
        if payload is not None:
            body[kind.lower()] = payload
        return body

    def accept(self, offer_ids: list[str], operations: list[dict[str, Any]],
               filters: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"offer_ids": [id_json(o) for o in offer_ids], "operations": operations}
        if filters is not None:
            payload["filters"] = filters
        return self.call("ACCEPT", payload)

    def launch(self, offer_ids: list[str], tasks: list[dict[str, Any]],
               filters: dict[str, Any] | None = None) -> dict[str, Any]:
        if not tasks:
            return self.decline(offer_ids, filters)
        return self.accept(offer_ids, [{"type": "LAUNCH", "launch": {"task_infos": tasks}}], filters)

    def decline(self, offer_ids: list[str], filters: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"offer_ids": [id_json(o) for o in offer_ids]}
        if filters is not None:
            payload["filters"] = filters
        return self.call("DECLINE", payload)

    def kill(self, task_id: str, agent_id: str | None = None,
             kill_policy: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"task_id": id_json(task_id)}
        if agent_id:
            payload["agent_id"] = id_json(agent_id)
        if kill_policy:
            payload["kill_policy"] = kill_policy
        return self.call("KILL", payload)

    def reconcile(self, tasks: list[dict[str, Any]]) -> dict[str, Any]:
        return self.call("RECONCILE", {"tasks": tasks})

    def acknowledge(self, agent_id: str, task_id: str, uuid_b64: str) -> dict[str, Any]:
        return self.call("ACKNOWLEDGE", {"agent_id": id_json(agent_id), "task_id": id_json(task_id), "uuid": uuid_b64})

    def roles_call(self, kind: str, roles: list[str] | None) -> dict[str, Any]:
        return self.call(kind, {"roles": list(roles)} if roles else None)

    def message(self, agent_id: str, executor_id: str, data: bytes) -> dict[str, Any]:
        return self.call("MESSAGE", {"agent_id": id_json(agent_id), "executor_id": id_json(executor_id),
                                     "data": encode_data(data)})

    def shutdown(self, executor_id: str, agent_id: str) -> dict[str, Any]:
        return self.call("SHUTDOWN", {"executor_id": id_json(executor_id), "agent_id": id_json(agent_id)})

    def update_framework(self, framework_info: dict[str, Any]) -> dict[str, Any]:
        return self.call("UPDATE_FRAMEWORK", {"framework_info": framework_info})

    # ------------------------------------------------------------ events
    def receive(self, data: bytes) -> list[Intent]:
        return [self._intent(json.loads(record)) for record in self._decoder.feed(data)]

    def _intent(self, event: dict[str, Any]) -> Intent:
        kind = event.get("type", "")
        payload = event.get(kind.lower()) or {}
        if kind == "SUBSCRIBED":
            first = self.framework_id is None
            self.framework_id = payload["framework_id"]["value"]
            self.heartbeat_interval = float(payload.get("heartbeat_interval_seconds", 15.0))
            return Subscribed(self.framework_id, payload.get("master_info") or {}, self.heartbeat_interval, first)
        if kind == "OFFERS":
            return Offers(list(payload.get("offers") or []))
        if kind == "INVERSE_OFFERS":
            return InverseOffers(list(payload.get("inverse_offers") or []))
        if kind == "RESCIND":
            return Rescind(payload["offer_id"]["value"])
        if kind == "UPDATE":
            return Update(payload["status"])
        if kind == "MESSAGE":
            return Message(payload["agent_id"]["value"], payload["executor_id"]["value"],
                           decode_data(payload.get("data", "")))
        if kind == "FAILURE":
            executor = (payload.get("executor_id") or {}).get("value")
            return Failure(payload["agent_id"]["value"], executor, payload.get("status"))
        if kind == "ERROR":
            return Error(str(payload.get("message", "")))
        return Heartbeat()
