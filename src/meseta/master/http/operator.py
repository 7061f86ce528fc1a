"""The operator API (``POST /api/v1``, also ``/api/v1/operator``) and its legacy endpoints.

    read calls       GET_HEALTH GET_FLAGS GET_VERSION GET_METRICS GET_MASTER GET_AGENTS GET_ROLES
                     GET_WEIGHTS GET_QUOTA GET_MAINTENANCE_SCHEDULE GET_MAINTENANCE_STATUS
                     GET_STATE GET_TASKS GET_FRAMEWORKS GET_EXECUTORS (master.operator_views)
                     -> 200 {"type": CALL, "<call>": {...}}
    SUBSCRIBE        -> 200, chunked RecordIO of JSON events (spec 3.3; master.actor draws it):
                     Accept application/json (pymesos) -> Content-Type application/json;
                     Accept application/recordio -> Content-Type application/recordio and
                     Message-Content-Type application/json (Message-Accept must allow JSON: 406)
    settings         UPDATE_WEIGHTS UPDATE_QUOTA SET_QUOTA REMOVE_QUOTA UPDATE_MAINTENANCE_SCHEDULE
                     START_MAINTENANCE STOP_MAINTENANCE -> registry write, then 200
    agent actions    RESERVE_RESOURCES UNRESERVE_RESOURCES CREATE_VOLUMES DESTROY_VOLUMES -> 202 (409)
                     DRAIN_AGENT DEACTIVATE_AGENT REACTIVATE_AGENT TEARDOWN -> 200
                     MARK_AGENT_GONE -> 200 (the registry write is under way; 400 for an unknown agent)

Legacy: /weights (GET, PUT), /quota (GET, POST, DELETE /quota/<role>), /roles, /reserve,
/unreserve, /create-volumes, /destroy-volumes (form bodies), /maintenance/schedule (GET, POST),
/maintenance/status, /machine/down, /machine/up. Every body becomes a record
(``meseta.master.validation.operator``) first; a rejected call changes nothing and answers with
the status the spec gives and a message naming the field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from meseta.master import operator_views
from meseta.master.actor import Deposed, MasterActor
from meseta.master.validation import operator as ops
from meseta.master.validation.errors import CallRejected
from meseta.protocol.common import version_json
from meseta.protocol.json_edge import JsonRejected, decode_json
from meseta.runtime.http import HttpError, RecordStream, check_accepts_json, check_json_request, read_body

TAKE_NO_FIELDS = frozenset({"SUBSCRIBE", "GET_STATE", "GET_TASKS", "GET_FRAMEWORKS", "GET_EXECUTORS"})
ACTION_STATUS = {
    "RESERVE_RESOURCES": 202, "UNRESERVE_RESOURCES": 202, "CREATE_VOLUMES": 202, "DESTROY_VOLUMES": 202,
    "DRAIN_AGENT": 200, "DEACTIVATE_AGENT": 200, "REACTIVATE_AGENT": 200, "TEARDOWN": 200,
    "MARK_AGENT_GONE": 200,
}


def _refused(exc: Exception) -> Response:
    if isinstance(exc, HttpError):
        return exc.response()
    if isinstance(exc, CallRejected):
        return PlainTextResponse(exc.message, status_code=exc.status)
    return PlainTextResponse("Master is not the leader any more", status_code=503)


async def _json(request: Request, what: str) -> Any:
    try:
        return decode_json(await read_body(request) or b"null", what)
    except JsonRejected as exc:
        raise HttpError(exc.status, exc.message) from None


class OperatorEndpoint:
    def __init__(self, actor: MasterActor, flags: dict[str, str]) -> None:
        self.actor = actor
        self.flags = flags

    async def handle(self, request: Request) -> Response | RecordStream:
        try:
            check_json_request(request)
            call = await _json(request, "master::Call")
            if not isinstance(call, dict) or not isinstance(call.get("type"), str):
                raise HttpError(400, "Failed to validate master::Call: Expecting 'type' to be present")
            kind = call["type"]
            payload = call.get(kind.lower())
            if payload is None:
                payload = {}
            if not isinstance(payload, dict):
                raise HttpError(400, f"Failed to validate master::Call: '{kind.lower()}' must be an object")
            if kind in TAKE_NO_FIELDS and payload:
                raise HttpError(400, f"Failed to validate master::Call: '{kind.lower()}' takes no fields, "
                                     f"got {sorted(payload)[:5]}")
            if kind == "SUBSCRIBE":
                return self._subscribe(request)
            return await self._dispatch(kind, payload)
        except (HttpError, CallRejected, Deposed) as exc:
            return _refused(exc)

    async def _dispatch(self, kind: str, payload: dict[str, Any]) -> Response:
        actor = self.actor
        reader = self._readers().get(kind)
        if reader is not None:
            return JSONResponse({"type": kind, kind.lower(): reader()})
        if kind in ops.SETTING_CALLS:
            await actor.change_setting(ops.parse_setting(kind, payload))
            return Response(status_code=200)
        if kind in ACTION_STATUS:
            actor.run(actor.machine.handle_operator_action, ops.parse_agent_action(kind, payload))
            return Response(status_code=ACTION_STATUS[kind])
        if kind == "UNKNOWN" or kind.startswith("GET_"):
            raise HttpError(501, f"Operator call '{kind}' is not implemented yet")
        raise HttpError(400, f"Failed to validate master::Call: unknown call type '{kind}'")

    def _subscribe(self, request: Request) -> RecordStream:
        headers = {"Cache-Control": "no-cache"}
        if "application/recordio" in _media(request.headers.get("accept")):
            accept = request.headers.get("message-accept")
            if accept and not _media(accept) & {"application/json", "*/*", "application/*"}:
                raise HttpError(406, f"Expecting 'Message-Accept' to allow application/json, got '{accept}'")
            media_type = "application/recordio"
            headers["Message-Content-Type"] = "application/json"
        else:
            check_accepts_json(request)
            media_type = "application/json"
        stream = self.actor.open_operator_stream()
        return RecordStream(stream.body(), headers, media_type=media_type, cut=stream.cut)

    def _readers(self) -> dict[str, Callable[[], Any]]:
        actor, machine = self.actor, self.actor.machine
        return {
            "GET_HEALTH": lambda: {"healthy": True},
            "GET_FLAGS": lambda: {"flags": [{"name": k, "value": v} for k, v in sorted(self.flags.items())]},
            "GET_VERSION": lambda: {"version_info": version_json()},
            "GET_METRICS": lambda: {"metrics": [
                {"name": k, "value": v}
                for k, v in actor.metrics().items()]},
            "GET_MASTER": lambda: {"master_info": machine.master_info, "start_time": actor.start_time,
                                   "elected_time": actor.start_time},
            "GET_AGENTS": lambda: operator_views.get_agents(machine),
            "GET_STATE": lambda: operator_views.get_state(machine),
            "GET_TASKS": lambda: operator_views.get_tasks(machine),
            "GET_FRAMEWORKS": lambda: operator_views.get_frameworks(machine),
            "GET_EXECUTORS": lambda: operator_views.get_executors(machine),
            "GET_ROLES": lambda: {"roles": machine.settings.roles_json(legacy=False)},
            "GET_WEIGHTS": lambda: {"weight_infos": machine.settings.weights_json()},
            "GET_QUOTA": lambda: {"status": machine.settings.quota_json()},
            "GET_MAINTENANCE_SCHEDULE": lambda: {"schedule": machine.schedule.setting_value()["schedule"]},
            "GET_MAINTENANCE_STATUS": lambda: {"status": machine.schedule.status_json()},
        }


def _media(header: str | None) -> set[str]:
    return {part.split(";")[0].strip().lower() for part in (header or "").split(",")}


# ------------------------------------------------------------------------- legacy endpoints


async def _form(request: Request, *names: str) -> list[str]:
    body = await read_body(request)
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
    except UnicodeDecodeError:
        raise HttpError(400, "The form body is not valid UTF-8") from None
    values = []
    for name in names:
        if name not in fields:
            raise HttpError(400, f"Missing '{name}' in the form body")
        values.append(fields[name][0])
    return values


def _legacy(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except (HttpError, CallRejected, Deposed) as exc:
            return _refused(exc)

    return wrapped


def legacy_routes(actor: MasterActor, render: Callable[[Request, Any], Response]) -> dict[str, tuple[Any, list[str]]]:
    machine = actor.machine

    async def weights(request: Request) -> Response:
        if request.method == "GET":
            return render(request, machine.settings.weights_json())
        await actor.change_setting(ops.Weights(ops.parse_weights(await _json(request, "weights"))))
        return Response(status_code=200)

    async def quota(request: Request) -> Response:
        if request.method == "GET":
            return render(request, machine.settings.quota_json())
        if request.method == "DELETE":
            await actor.change_setting(ops.QuotaRemoval(ops.quota_role(request.path_params.get("role"), "role")))
            return Response(status_code=200)
        await actor.change_setting(ops.parse_set_quota(await _json(request, "quota request")))
        return Response(status_code=200)

    async def roles(request: Request) -> Response:
        return render(request, {"roles": machine.settings.roles_json(legacy=True)})

    def agent_action(kind: str, field: str) -> Callable[[Request], Awaitable[Response]]:
        async def action(request: Request) -> Response:
            agent_id, raw = await _form(request, "slaveId", field)
            try:
                given = decode_json(raw.encode(), field)
            except JsonRejected as exc:
                raise HttpError(400, f"'{field}' is not usable JSON: {exc.message}") from None
            call = ops.parse_agent_action(kind, {"agent_id": {"value": agent_id}, field: given})
            actor.run(machine.handle_operator_action, call)
            return Response(status_code=202)

        return action

    async def schedule(request: Request) -> Response:
        if request.method == "GET":
            return render(request, machine.schedule.setting_value()["schedule"])
        await actor.change_setting(ops.Schedule(ops.parse_schedule(await _json(request, "schedule"))))
        return Response(status_code=200)

    async def status(request: Request) -> Response:
        return render(request, machine.schedule.status_json())

    def machines(kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def change(request: Request) -> Response:
            await actor.change_setting(ops.Machines(kind, ops.parse_machines(await _json(request, "machines"))))
            return Response(status_code=200)

        return change

    return {
        "/weights": (_legacy(weights), ["GET", "PUT", "POST"]),
        "/quota": (_legacy(quota), ["GET", "POST"]),
        "/quota/{role:path}": (_legacy(quota), ["DELETE"]),
        "/roles": (_legacy(roles), ["GET"]),
        "/reserve": (_legacy(agent_action("RESERVE_RESOURCES", "resources")), ["POST"]),
        "/unreserve": (_legacy(agent_action("UNRESERVE_RESOURCES", "resources")), ["POST"]),
        "/create-volumes": (_legacy(agent_action("CREATE_VOLUMES", "volumes")), ["POST"]),
        "/destroy-volumes": (_legacy(agent_action("DESTROY_VOLUMES", "volumes")), ["POST"]),
        "/maintenance/schedule": (_legacy(schedule), ["GET", "POST"]),
        "/maintenance/status": (_legacy(status), ["GET"]),
        "/machine/down": (_legacy(machines("START_MAINTENANCE")), ["POST"]),
        "/machine/up": (_legacy(machines("STOP_MAINTENANCE")), ["POST"]),
    }
