"""``POST /api/v1/scheduler``: the v1 scheduler API (spec section 1).

Checks run in the order of spec 1.2: method, Content-Type, body, call validation, Accept
(SUBSCRIBE only), then framework, subscription and ``Mesos-Stream-Id``. SUBSCRIBE answers
a chunked RecordIO stream; every other call answers 202 (UPDATE_FRAMEWORK: 200).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from meseta.master.actor import MasterActor
from meseta.master.state import HEARTBEAT_INTERVAL_SECONDS, CallRejected, SubscribeRefused
from meseta.protocol.common import uuid_problem
from meseta.protocol.scheduler_calls import Call, CallError, decode_call, roles_of
from meseta.runtime.http import HttpError, accepted, check_accepts_json, check_json_request, read_body

STREAM_ID_HEADER = "Mesos-Stream-Id"


class SchedulerEndpoint:
    def __init__(self, actor: MasterActor) -> None:
        self.actor = actor

    async def handle(self, request: Request) -> Response:
        try:
            check_json_request(request)
            body = await read_body(request)
            call = decode_call(body)
            if call.type == "SUBSCRIBE":
                check_accepts_json(request)
                return self._subscribe(request, call)
            return self._call(request, call)
        except HttpError as exc:
            return exc.response()
        except CallError as exc:
            return PlainTextResponse(str(exc), status_code=exc.status)
        except CallRejected as exc:
            return PlainTextResponse(exc.message, status_code=exc.status)

    def _subscribe(self, request: Request, call: Call) -> Response:
        if request.headers.get(STREAM_ID_HEADER):
            raise HttpError(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
        assert call.subscribe is not None
        stream = self.actor.open_framework_stream(HEARTBEAT_INTERVAL_SECONDS)
        machine = self.actor.machine
        framework_id = call.framework_id.value if call.framework_id else None
        try:
            effects = machine.handle_subscribe(
                call.subscribe.framework_info, framework_id, stream.stream_id,
                call.subscribe.suppressed_roles, self.actor.now(),
            )
        except SubscribeRefused as exc:
            stream.send({"type": "ERROR", "error": {"message": str(exc)}})
            stream.close()
        else:
            subscribed = next(e for e in effects if getattr(e, "event", {}).get("type") == "SUBSCRIBED")
            self.actor.attach_framework_stream(subscribed.framework_id, stream)  # type: ignore[union-attr]
            self.actor.execute(effects)
        return StreamingResponse(
            stream.body(),
            media_type="application/json",
            headers={STREAM_ID_HEADER: stream.stream_id, "Cache-Control": "no-cache"},
        )

    def _call(self, request: Request, call: Call) -> Response:
        assert call.framework_id is not None
        framework_id = call.framework_id.value
        machine = self.actor.machine
        machine.check_stream(framework_id, request.headers.get(STREAM_ID_HEADER))
        handler = _DISPATCH.get(call.type)
        if handler is None:
            return accepted()  # operation acknowledgements and REQUEST: nothing to do
        handler(self.actor, framework_id, call)
        if call.type == "UPDATE_FRAMEWORK":
            return Response(status_code=200)
        return accepted()


def _teardown(actor: MasterActor, fid: str, call: Call) -> None:
    actor.run(actor.machine.handle_teardown, fid)


def _accept(actor: MasterActor, fid: str, call: Call) -> None:
    assert call.accept is not None
    refuse = call.accept.filters.refuse_seconds if call.accept.filters else None
    offer_ids = [o.value for o in call.accept.offer_ids]
    actor.run(actor.machine.handle_accept, fid, offer_ids, call.accept.operations, refuse)


def _decline(actor: MasterActor, fid: str, call: Call) -> None:
    assert call.decline is not None
    refuse = call.decline.filters.refuse_seconds if call.decline.filters else None
    actor.run(actor.machine.handle_decline, fid, [o.value for o in call.decline.offer_ids], refuse)


def _inverse(actor: MasterActor, fid: str, call: Call) -> None:
    accept = call.type == "ACCEPT_INVERSE_OFFERS"
    payload = call.accept_inverse_offers if accept else call.decline_inverse_offers
    assert payload is not None
    refuse = payload.filters.refuse_seconds if payload.filters else None
    ids = [i.value for i in payload.inverse_offer_ids]
    actor.run(actor.machine.handle_inverse_offer_answer, fid, ids, accept, refuse)


def _revive(actor: MasterActor, fid: str, call: Call) -> None:
    actor.run(actor.machine.handle_revive, fid, roles_of(call.revive))


def _suppress(actor: MasterActor, fid: str, call: Call) -> None:
    actor.run(actor.machine.handle_suppress, fid, roles_of(call.suppress))


def _kill(actor: MasterActor, fid: str, call: Call) -> None:
    assert call.kill is not None
    actor.run(actor.machine.handle_kill, fid, call.kill.task_id.value, call.kill.kill_policy)


def _shutdown(actor: MasterActor, fid: str, call: Call) -> None:
    assert call.shutdown is not None
    actor.run(actor.machine.handle_shutdown, fid, call.shutdown.executor_id.value, call.shutdown.agent_id.value)


def _acknowledge(actor: MasterActor, fid: str, call: Call) -> None:
    ack = call.acknowledge
    assert ack is not None
    problem = uuid_problem(ack.uuid)
    if problem:
        raise CallRejected(400, f"Failed to validate scheduler::Call: {problem}")
    actor.run(actor.machine.handle_acknowledge, fid, ack.agent_id.value, ack.task_id.value, ack.uuid)


def _reconcile(actor: MasterActor, fid: str, call: Call) -> None:
    assert call.reconcile is not None
    tasks = [(t.task_id.value, t.agent_id.value if t.agent_id else None) for t in call.reconcile.tasks]
    actor.run(actor.machine.handle_reconcile, fid, tasks)


def _message(actor: MasterActor, fid: str, call: Call) -> None:
    msg = call.message
    assert msg is not None
    actor.run(actor.machine.handle_framework_message, fid, msg.agent_id.value, msg.executor_id.value, msg.data)


def _update_framework(actor: MasterActor, fid: str, call: Call) -> None:
    update = call.update_framework
    assert update is not None
    actor.run(actor.machine.handle_update_framework, fid, update.framework_info, update.suppressed_roles)


_DISPATCH = {
    "TEARDOWN": _teardown,
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
    "UPDATE_FRAMEWORK": _update_framework,
}
