"""The master's side of the internal agent protocol (see ``meseta.protocol.agent_wire``)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from meseta.master.actor import MasterActor
from meseta.master.state import CallRejected
from meseta.protocol.agent_wire import STREAM_ID_HEADER
from meseta.runtime.http import HttpError, RecordStream, accepted, check_json_request, read_body

_decode = msgspec.json.Decoder(dict[str, Any])


async def _json_body(request: Request) -> dict[str, Any]:
    check_json_request(request)
    try:
        return _decode.decode(await read_body(request))
    except msgspec.DecodeError as exc:
        raise HttpError(400, f"Failed to parse agent message: {exc}") from None


class AgentStreamEndpoint:
    """``POST /internal/agent``: REGISTER or REREGISTER, answered by the master's stream."""

    def __init__(self, actor: MasterActor) -> None:
        self.actor = actor

    async def handle(self, request: Request) -> Response | RecordStream:
        try:
            body = await _json_body(request)
            info = body.get("agent_info")
            if not isinstance(info, dict) or not isinstance(info.get("hostname"), str):
                raise HttpError(400, "'agent_info.hostname' is required")
            stream = self.actor.open_agent_stream()
            machine = self.actor.machine
            if body.get("type") == "REGISTER":
                effects = machine.handle_register_agent(info, stream.stream_id, self.actor.now())
                agent_id = effects[0].operation.agent_id  # type: ignore[union-attr]
            elif body.get("type") == "REREGISTER":
                agent_id = (info.get("id") or {}).get("value")
                if not agent_id:
                    raise HttpError(400, "'agent_info.id' is required to re-register")
                effects = machine.handle_reregister_agent(
                    info, body.get("tasks") or [], body.get("executor_infos") or [],
                    body.get("frameworks") or [], stream.stream_id, self.actor.now(),
                )
            else:
                raise HttpError(400, f"Unknown agent stream call '{body.get('type')}'")
        except HttpError as exc:
            return exc.response()
        except CallRejected as exc:  # e.g. the agent's machine is DOWN for maintenance
            return PlainTextResponse(exc.message, status_code=exc.status)
        self.actor.attach_agent_stream(agent_id, stream)
        self.actor.execute(effects)
        return RecordStream(stream.body(), {STREAM_ID_HEADER: stream.stream_id})


class AgentCallEndpoint:
    """``POST /internal/agent/call``: updates, pongs and executor traffic from an agent."""

    def __init__(self, actor: MasterActor) -> None:
        self.actor = actor

    async def handle(self, request: Request) -> Response:
        try:
            body = await _json_body(request)
            agent_id = str((body.get("agent_id") or {}).get("value") or "")
            stream = self.actor.agent_streams.get(agent_id)
            if stream is None or stream.stream_id != request.headers.get(STREAM_ID_HEADER):
                return PlainTextResponse("Agent is not registered on this stream", status_code=403)
            self._dispatch(agent_id, body)
        except HttpError as exc:
            return exc.response()
        except (KeyError, TypeError) as exc:
            return PlainTextResponse(f"Malformed agent call: missing {exc}", status_code=400)
        return accepted()

    def _dispatch(self, agent_id: str, body: dict[str, Any]) -> None:
        machine, run = self.actor.machine, self.actor.run
        kind = body.get("type")
        if kind == "STATUS_UPDATE":
            run(machine.handle_status_update, agent_id, body["update"])
        elif kind == "PONG":
            run(machine.handle_pong, agent_id)
        elif kind == "EXECUTOR_MESSAGE":
            run(machine.handle_executor_message, agent_id, body["framework_id"]["value"],
                body["executor_id"]["value"], body["data"])
        elif kind == "EXECUTOR_EXITED":
            run(machine.handle_executor_exited, agent_id, body["framework_id"]["value"],
                body["executor_id"]["value"], int(body.get("status", 0)), bool(body.get("custom", False)))
        else:
            raise HttpError(400, f"Unknown agent call '{kind}'")
