"""The operator API (``POST /api/v1``, also ``/api/v1/operator``) and its legacy endpoints.

    read calls       GET_HEALTH GET_FLAGS GET_VERSION GET_METRICS GET_MASTER GET_AGENTS GET_ROLES
                     GET_WEIGHTS GET_QUOTA GET_MAINTENANCE_SCHEDULE GET_MAINTENANCE_STATUS
                     -> 200 {"type": CALL, "<call>": {...}}
    settings         UPDATE_WEIGHTS UPDATE_QUOTA SET_QUOTA REMOVE_QUOTA UPDATE_MAINTENANCE_SCHEDULE
                     START_MAINTENANCE STOP_MAINTENANCE -> registry write, then 200
    agent actions    RESERVE_RESOURCES UNRESERVE_RESOURCES CREATE_VOLUMES DESTROY_VOLUMES -> 202 (409)
                     DRAIN_AGENT DEACTIVATE_AGENT REACTIVATE_AGENT TEARDOWN -> 200
                     MARK_AGENT_GONE -> 200 (the registry write is under way; 400 for an unknown agent)

Legacy: /weights (GET, PUT), /quota (GET, POST, DELETE /quota/<role>), /roles, /reserve,
/unreserve, /create-volumes, /destroy-volumes (form bodies), /maintenance/schedule (GET, POST),
/maintenance/status, /machine/down, /machine/up. A rejected call changes nothing and answers
with the status the spec gives and a message naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from meseta.core.resources import EMPTY
from meseta.master import views
from meseta.master.actor import MasterActor
from meseta.master.machine import MasterMachine
from meseta.master.state import Agent, CallRejected
from meseta.protocol.common import version_json
from meseta.runtime.http import HttpError, check_json_request, read_body

AGENT_ACTIONS = {
    "RESERVE_RESOURCES": 202, "UNRESERVE_RESOURCES": 202, "CREATE_VOLUMES": 202, "DESTROY_VOLUMES": 202,
    "DRAIN_AGENT": 200, "DEACTIVATE_AGENT": 200, "REACTIVATE_AGENT": 200, "TEARDOWN": 200,
    "MARK_AGENT_GONE": 200,
}


def _ns(seconds: float) -> dict[str, int]:
    return {"nanoseconds": round(seconds * 1e9)}


def agent_v1(machine: MasterMachine, agent: Agent) -> dict[str, Any]:
    allocated = machine.allocator.allocated_on(agent.id) if machine.allocator.has_agent(agent.id) else EMPTY
    offered = sum((machine.offers[o].resources for o in agent.offers), EMPTY)
    out: dict[str, Any] = {
        "agent_info": {**agent.info, "id": {"value": agent.id}, "resources": agent.total.to_json()},
        "active": agent.connected and not agent.deactivated,
        "deactivated": agent.deactivated,
        "version": agent.version,
        "pid": agent.pid,
        "registered_time": _ns(agent.registered_time),
        "total_resources": agent.total.to_json(),
        "allocated_resources": (allocated - offered).to_json(),
        "offered_resources": offered.to_json(),
        "capabilities": [{"type": c} for c in agent.capabilities],
    }
    if agent.reregistered_time is not None:
        out["reregistered_time"] = _ns(agent.reregistered_time)
    if agent.drain_info is not None:
        out["drain_info"] = agent.drain_info
    return out


class OperatorEndpoint:
    def __init__(self, actor: MasterActor, flags: dict[str, str]) -> None:
        self.actor = actor
        self.flags = flags

    async def handle(self, request: Request) -> Response:
        try:
            check_json_request(request)
            try:
                call = json.loads(await read_body(request))
            except ValueError as exc:
                raise HttpError(400, f"Failed to parse body into JSON: {exc}") from None
            if not isinstance(call, dict) or not isinstance(call.get("type"), str):
                raise HttpError(400, "Failed to validate master::Call: Expecting 'type' to be present")
            kind = call["type"]
            payload = call.get(kind.lower())
            if payload is None:
                payload = {}
            if not isinstance(payload, dict):
                raise HttpError(400, f"Failed to validate master::Call: '{kind.lower()}' must be an object")
            return await self._dispatch(kind, payload)
        except HttpError as exc:
            return exc.response()
        except CallRejected as exc:
            return PlainTextResponse(exc.message, status_code=exc.status)

    async def _dispatch(self, kind: str, payload: dict[str, Any]) -> Response:
        actor, machine = self.actor, self.actor.machine
        reader = self._readers().get(kind)
        if reader is not None:
            return JSONResponse({"type": kind, kind.lower(): reader(payload)})
        setting = self._settings(payload).get(kind)
        if setting is not None:
            await setting()
            return Response(status_code=200)
        if kind in AGENT_ACTIONS:
            actor.execute(machine.handle_operator_call(kind, payload, actor.now()))
            return Response(status_code=AGENT_ACTIONS[kind])
        if kind == "UNKNOWN" or kind.startswith("GET_") or kind == "SUBSCRIBE":
            raise HttpError(501, f"Operator call '{kind}' is not implemented yet")
        raise HttpError(400, f"Failed to validate master::Call: unknown call type '{kind}'")

    def _readers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        actor, machine = self.actor, self.actor.machine
        return {
            "GET_HEALTH": lambda _: {"healthy": True},
            "GET_FLAGS": lambda _: {"flags": [{"name": k, "value": v} for k, v in sorted(self.flags.items())]},
            "GET_VERSION": lambda _: {"version_info": version_json()},
            "GET_METRICS": lambda _: {"metrics": [
                {"name": k, "value": v}
                for k, v in views.metrics_json(machine, actor.now() - actor.start_time).items()]},
            "GET_MASTER": lambda _: {"master_info": machine.master_info, "start_time": actor.start_time,
                                     "elected_time": actor.start_time},
            "GET_AGENTS": lambda _: {"agents": [agent_v1(machine, a) for a in machine.agents.values()],
                                     "recovered_agents": [{**info, "id": {"value": aid}} for aid, info
                                                          in machine.recovered_agents.items()
                                                          if aid not in machine.agents]},
            "GET_ROLES": lambda _: {"roles": machine.settings.roles_json(legacy=False)},
            "GET_WEIGHTS": lambda _: {"weight_infos": machine.settings.weights_json()},
            "GET_QUOTA": lambda _: {"status": machine.settings.quota_json()},
            "GET_MAINTENANCE_SCHEDULE": lambda _: {"schedule": machine.maintenance.schedule_json()},
            "GET_MAINTENANCE_STATUS": lambda _: {"status": machine.maintenance.status_json()},
        }

    def _settings(self, payload: dict[str, Any]) -> dict[str, Callable[[], Awaitable[None]]]:
        actor, machine = self.actor, self.actor.machine
        settings, maintenance = machine.settings, machine.maintenance
        return {
            "UPDATE_WEIGHTS": lambda: actor.change_setting(settings.prepare_weights, payload.get("weight_infos")),
            "UPDATE_QUOTA": lambda: actor.change_setting(
                settings.prepare_quota, payload.get("quota_configs"), bool(payload.get("force", False))),
            "SET_QUOTA": lambda: actor.change_setting(settings.prepare_set_quota, payload.get("quota_request")),
            "REMOVE_QUOTA": lambda: actor.change_setting(settings.prepare_remove_quota, payload.get("role")),
            "UPDATE_MAINTENANCE_SCHEDULE": lambda: actor.change_setting(
                maintenance.prepare_schedule, payload.get("schedule")),
            "START_MAINTENANCE": lambda: actor.change_setting(maintenance.prepare_start, payload.get("machines")),
            "STOP_MAINTENANCE": lambda: actor.change_setting(maintenance.prepare_stop, payload.get("machines")),
        }


# ------------------------------------------------------------------------- legacy endpoints


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await read_body(request) or b"null")
    except ValueError as exc:
        raise HttpError(400, f"Failed to parse body into JSON: {exc}") from None


async def _form(request: Request, *names: str) -> list[Any]:
    fields = parse_qs((await read_body(request)).decode("utf-8", "replace"))
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
        except HttpError as exc:
            return exc.response()
        except CallRejected as exc:
            return PlainTextResponse(exc.message, status_code=exc.status)

    return wrapped


def legacy_routes(actor: MasterActor, render: Callable[[Request, Any], Response]) -> dict[str, tuple[Any, list[str]]]:
    machine = actor.machine
    settings, maintenance = machine.settings, machine.maintenance

    async def weights(request: Request) -> Response:
        if request.method == "GET":
            return render(request, settings.weights_json())
        await actor.change_setting(settings.prepare_weights, await _json_body(request))
        return Response(status_code=200)

    async def quota(request: Request) -> Response:
        if request.method == "GET":
            return render(request, settings.quota_json())
        if request.method == "DELETE":
            role = request.path_params.get("role")
            await actor.change_setting(settings.prepare_remove_quota, role)
            return Response(status_code=200)
        await actor.change_setting(settings.prepare_set_quota, await _json_body(request))
        return Response(status_code=200)

    async def roles(request: Request) -> Response:
        return render(request, {"roles": settings.roles_json(legacy=True)})

    def agent_action(kind: str, field: str) -> Callable[[Request], Awaitable[Response]]:
        async def action(request: Request) -> Response:
            agent_id, raw = await _form(request, "slaveId", field)
            try:
                given = json.loads(raw)
            except ValueError as exc:
                raise HttpError(400, f"'{field}' is not JSON: {exc}") from None
            payload = {"agent_id": {"value": agent_id}, field: given}
            actor.execute(machine.handle_operator_call(kind, payload, actor.now()))
            return Response(status_code=202)

        return action

    async def schedule(request: Request) -> Response:
        if request.method == "GET":
            return render(request, maintenance.schedule_json())
        await actor.change_setting(maintenance.prepare_schedule, await _json_body(request))
        return Response(status_code=200)

    async def status(request: Request) -> Response:
        return render(request, maintenance.status_json())

    async def down(request: Request) -> Response:
        await actor.change_setting(maintenance.prepare_start, await _json_body(request))
        return Response(status_code=200)

    async def up(request: Request) -> Response:
        await actor.change_setting(maintenance.prepare_stop, await _json_body(request))
        return Response(status_code=200)

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
        "/machine/down": (_legacy(down), ["POST"]),
        "/machine/up": (_legacy(up), ["POST"]),
    }
