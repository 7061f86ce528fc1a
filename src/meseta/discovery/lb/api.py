"""The LB's own HTTP API (``--api-port``), read-only::

    GET /v1/status   {lbId, mode, reloads, syncs, drainSupported,
                      services [{name, appId, port, mode, servers [{taskId, address, draining}]}],
                      rejected [{appId, reason}],                       apps left out, and why
                      events [{eventType: lb_app_rejected_event | lb_drained_event, timestamp, ...}]}
    GET /v1/latency  {count, samples [s]}  event -> HAProxy changed, the last 10,000 applied changes
    GET /ping        pong
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from meseta.discovery.lb.driver import Driver


def build_lb_app(driver: Driver) -> Any:
    async def status(request: Request) -> Response:
        return JSONResponse(driver.status())

    async def latency(request: Request) -> Response:
        return JSONResponse({"count": len(driver.latencies), "samples": list(driver.latencies)})

    async def ping(request: Request) -> Response:
        return PlainTextResponse("pong")

    return Starlette(routes=[Route("/v1/status", status), Route("/v1/latency", latency), Route("/ping", ping)])
