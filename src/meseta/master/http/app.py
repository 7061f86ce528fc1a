"""The master's HTTP routes. Every path is reachable with and without the ``/master`` prefix.

    POST /api/v1/scheduler                  v1 scheduler API (stream + calls)
    POST /api/v1 (/api/v1/operator)         v1 operator API (meseta.master.http.operator)
    /weights /quota /roles /reserve ...     legacy operator endpoints (same module)
    POST /internal/agent[/call]             agent protocol (meseta.protocol.agent_wire)
    GET  /state /frameworks /slaves /tasks  legacy JSON (also *.json), ?jsonp=
    GET  /redirect /health /version /metrics/snapshot
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from meseta.master import views
from meseta.master.actor import MasterActor
from meseta.master.http.agents import AgentCallEndpoint, AgentStreamEndpoint
from meseta.master.http.operator import OperatorEndpoint, legacy_routes
from meseta.master.http.scheduler import SchedulerEndpoint
from meseta.protocol.agent_wire import AGENT_CALL_PATH, AGENT_STREAM_PATH
from meseta.protocol.common import version_json
from meseta.runtime.http import KeepTransport

TASKS_PAGE = 100  # TASK_LIMIT: the default page size of /tasks


def _json(request: Request, payload: Any) -> Response:
    callback = request.query_params.get("jsonp")
    if callback:
        return Response(f"{callback}({json.dumps(payload)});", media_type="text/javascript")
    return JSONResponse(payload)


def build_master_app(actor: MasterActor, flags: dict[str, str]) -> KeepTransport:
    machine = actor.machine

    def state(request: Request) -> Response:
        return _json(request, views.state_json(machine, actor.start_time, flags))

    def frameworks(request: Request) -> Response:
        wanted = request.query_params.get("framework_id")
        return _json(request, {
            "frameworks": [views.framework_json(machine, f) for f in machine.books.frameworks
                           if wanted in (None, f.id)],
            "completed_frameworks": [views.framework_json(machine, f) for f in machine.books.frameworks.completed
                                     if wanted in (None, f.id)],
            "unregistered_frameworks": [],
        })

    def slaves(request: Request) -> Response:
        wanted = request.query_params.get("slave_id")
        return _json(request, {
            "slaves": [views.agent_json(machine, a, full=True) for a in machine.books.agents
                       if wanted in (None, a.id)],
            "recovered_slaves": views.recovered_agents_json(machine),
        })

    def tasks(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", TASKS_PAGE))
            offset = int(request.query_params.get("offset", 0))
        except ValueError:
            return PlainTextResponse("'limit' and 'offset' must be integers", status_code=400)
        order = request.query_params.get("order", "des")
        if order not in ("asc", "des"):
            return PlainTextResponse("'order' must be 'asc' or 'des'", status_code=400)
        fid, tid = request.query_params.get("framework_id"), request.query_params.get("task_id")
        found = []
        for framework in [*machine.books.frameworks, *machine.books.frameworks.completed]:
            if fid not in (None, framework.id):
                continue
            for task in [*framework.tasks.values(), *framework.completed_tasks]:
                if tid in (None, task.task_id):
                    found.append(task)
        found.sort(key=lambda t: t.statuses[-1]["timestamp"] if t.statuses else 0.0, reverse=order == "des")
        return _json(request, {"tasks": [views.task_json(t) for t in found[offset: offset + limit]]})

    def redirect(request: Request) -> Response:
        info = machine.master_info
        return RedirectResponse(f"//{info['hostname']}:{info['port']}", status_code=307)

    def health(request: Request) -> Response:
        return Response(status_code=200)

    def version(request: Request) -> Response:
        return _json(request, version_json())

    def metrics(request: Request) -> Response:
        return _json(request, actor.metrics())

    routes: list[Route] = []

    def both(path: str, endpoint: Callable[..., Any], methods: list[str]) -> None:
        routes.append(Route(path, endpoint, methods=methods))
        routes.append(Route("/master" + path, endpoint, methods=methods))

    # The hot paths first: Starlette tries the routes in order (agents' status updates, pings and
    # frameworks' calls are most of the requests of a busy master).
    routes.append(Route(AGENT_CALL_PATH, AgentCallEndpoint(actor).handle, methods=["POST"]))
    scheduler = SchedulerEndpoint(actor)
    both("/api/v1/scheduler", scheduler.handle, ["POST", "GET", "PUT", "DELETE"])
    operator = OperatorEndpoint(actor, flags)
    both("/api/v1", operator.handle, ["POST", "GET", "PUT", "DELETE"])
    both("/api/v1/operator", operator.handle, ["POST", "GET", "PUT", "DELETE"])
    for path, (endpoint, methods) in legacy_routes(actor, _json).items():
        both(path, endpoint, methods)
    both("/roles.json", legacy_routes(actor, _json)["/roles"][0], ["GET"])
    routes.append(Route(AGENT_STREAM_PATH, AgentStreamEndpoint(actor).handle, methods=["POST"]))
    for name, endpoint in (("state", state), ("frameworks", frameworks), ("slaves", slaves), ("tasks", tasks)):
        both(f"/{name}", endpoint, ["GET"])
        both(f"/{name}.json", endpoint, ["GET"])
    both("/redirect", redirect, ["GET"])
    both("/health", health, ["GET"])
    routes.append(Route("/version", version, methods=["GET"]))
    routes.append(Route("/metrics/snapshot", metrics, methods=["GET"]))
    return KeepTransport(Starlette(routes=routes))  # an operator subscriber too slow is cut off at once
