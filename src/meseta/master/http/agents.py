"""The master's side of the internal agent protocol (see ``meseta.protocol.agent_wire``): every
body is parsed into a record (``meseta.master.validation.agents``) before the master acts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from meseta.master.actor import Deposed, MasterActor
from meseta.master.validation import agents as agent_calls
from meseta.master.validation.errors import CallRejected
from meseta.protocol.agent_wire import STREAM_ID_HEADER
from meseta.protocol.json_edge import JsonRejected, decode_json
from meseta.runtime.http import HttpError, RecordStream, accepted, check_json_request, read_body


async def _json_body(request: Request) -> object:
    check_json_request(request)
    try:
        return decode_json(await read_body(request), "agent message")
    except JsonRejected as exc:
        raise HttpError(exc.status, exc.message) from None


def _refused(exc: Exception) -> Response:
    if isinstance(exc, HttpError):
        return exc.response()
    if isinstance(exc, CallRejected):  # e.g. the agent's machine is DOWN for maintenance
        return PlainTextResponse(exc.message, status_code=exc.status)
    return PlainTextResponse("Master is not the leader any more", status_code=503)


class AgentStreamEndpoint:
    """``POST /internal/agent``: REGISTER or REREGISTER, answered by the master's stream."""

    def __init__(self, actor: MasterActor) -> None:
        self.actor = actor

    async def handle(self, request: Request) -> Response | RecordStream:
        actor = self.actor
        try:
            call = agent_calls.parse_stream_call(await _json_body(request))
            stream = actor.open_agent_stream()
            if isinstance(call, agent_calls.Registration):
                actor.run(actor.machine.handle_register_agent, call, stream.stream_id,
                          attach=lambda agent_id: actor.attach_agent_stream(agent_id, stream))
            else:
                agent_id = call.agent_id
                actor.run(actor.machine.handle_reregister_agent, call, stream.stream_id,
                          attach=lambda _: actor.attach_agent_stream(agent_id, stream))
        except (HttpError, CallRejected, Deposed) as exc:
            return _refused(exc)
        return RecordStream(stream.body(), {STREAM_ID_HEADER: stream.stream_id})


class AgentCallEndpoint:
    """``POST /internal/agent/call``: updates, pongs and executor traffic from an agent."""

    def __init__(self, actor: MasterActor) -> None:
        self.actor = actor

    async def handle(self, request: Request) -> Response:
        try:
            agent_id, call = agent_calls.parse_agent_call(await _json_body(request))
            stream = self.actor.agent_streams.get(agent_id)
            if stream is None or stream.stream_id != request.headers.get(STREAM_ID_HEADER):
                return PlainTextResponse("Agent is not registered on this stream", status_code=403)
            self.actor.run(self.actor.machine.handle_agent_call, agent_id, call)
        except (HttpError, CallRejected, Deposed) as exc:
            return _refused(exc)
        return accepted()
