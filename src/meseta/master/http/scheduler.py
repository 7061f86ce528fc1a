"""``POST /api/v1/scheduler``: the v1 scheduler API (spec section 1).

Checks run in the order of spec 1.2: method, Content-Type, body, call validation (the whole
call, into a record: ``meseta.master.validation.scheduler``), Accept (SUBSCRIBE only), then
framework, subscription and ``Mesos-Stream-Id``. SUBSCRIBE answers a chunked RecordIO stream;
every other call answers 202 (UPDATE_FRAMEWORK: 200). Nothing in the master changes before the
call has passed every check.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from meseta.master.actor import Deposed, MasterActor
from meseta.master.records import HEARTBEAT_INTERVAL_SECONDS
from meseta.master.validation import scheduler as calls
from meseta.master.validation.errors import CallRejected, SubscribeRefused
from meseta.protocol.scheduler_calls import CallError, decode_call
from meseta.runtime.http import HttpError, accepted, check_accepts_json, check_json_request, read_body

STREAM_ID_HEADER = "Mesos-Stream-Id"


class SchedulerEndpoint:
    def __init__(self, actor: MasterActor) -> None:
        self.actor = actor

    async def handle(self, request: Request) -> Response:
        try:
            check_json_request(request)
            call = decode_call(await read_body(request))
            record = calls.parse_call(call)
            if isinstance(record, calls.Subscribe):
                check_accepts_json(request)
                return self._subscribe(request, record)
            assert call.framework_id is not None
            return self._call(request, call.framework_id.value, record)
        except HttpError as exc:
            return exc.response()
        except CallError as exc:
            return PlainTextResponse(str(exc), status_code=exc.status)
        except CallRejected as exc:
            return PlainTextResponse(exc.message, status_code=exc.status)
        except Deposed:
            return PlainTextResponse("Master is not the leader any more", status_code=503)

    def _subscribe(self, request: Request, call: calls.Subscribe) -> Response:
        if request.headers.get(STREAM_ID_HEADER):
            raise HttpError(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
        actor = self.actor
        stream = actor.open_framework_stream(HEARTBEAT_INTERVAL_SECONDS)
        try:
            actor.run(actor.machine.handle_subscribe, call, stream.stream_id,
                      attach=lambda framework_id: actor.attach_framework_stream(framework_id, stream))
        except SubscribeRefused as exc:
            stream.send({"type": "ERROR", "error": {"message": str(exc)}})
            stream.close()
        return StreamingResponse(stream.body(), media_type="application/json",
                                 headers={STREAM_ID_HEADER: stream.stream_id, "Cache-Control": "no-cache"})

    def _call(self, request: Request, framework_id: str, call: calls.SchedulerCall) -> Response:
        machine = self.actor.machine
        machine.check_stream(framework_id, request.headers.get(STREAM_ID_HEADER))
        self.actor.run(machine.handle_call, framework_id, call)
        if isinstance(call, calls.UpdateFramework):
            return Response(status_code=200)
        return accepted()
