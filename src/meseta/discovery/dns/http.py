"""The HTTP API (spec 1.6) on ``--http-port``; it owns these routes:

    GET /v1/version                  {"Service", "Version", "URL"}
    GET /v1/config                   the settings, Mesos-DNS's field names
    GET /v1/hosts/{host}             A and AAAA of one name
    GET /v1/hosts/{host}/ports       501 (as Mesos-DNS)
    GET /v1/services/{service}       SRV of one name, each with its target's first address
    GET /v1/enumerate                every framework, task and record
    GET /v1/axfr                     every record, by type
    GET /metrics/snapshot            feed and server counters; dns/stale is 1 while the stream is down

Other paths answer 404, other methods 405; names are only looked up, never parsed further.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from meseta.discovery.dns import views
from meseta.discovery.dns.book import RecordBook
from meseta.discovery.dns.feed import FeedStatus
from meseta.discovery.dns.options import VERSION, DnsOptions

MAX_NAME = 1024  # longer than any DNS name (255): refused, not looked up


def metrics(book: RecordBook, status: FeedStatus, counters: dict[str, int]) -> dict[str, float]:
    out: dict[str, float] = {
        "dns/stale": int(status.stale), "dns/connected": int(status.connected), "dns/serial": book.serial,
        "dns/records": len(book.records), "dns/tasks": len(book.tasks), "dns/agents": len(book.agents),
        "dns/frameworks": len(book.frameworks), "dns/subscriptions": status.subscriptions,
        "dns/events": status.events, "dns/event_errors": status.event_errors,
        "dns/last_change_secs": status.last_change,
    }
    out.update({f"dns/{name}": value for name, value in counters.items()})
    return out


def build_app(options: DnsOptions, book: RecordBook, status: FeedStatus, counters: dict[str, int]) -> Starlette:
    def named(render: Callable[[str], Any], key: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            name = request.path_params[key]
            if len(name) > MAX_NAME:
                return PlainTextResponse(f"'{key}' is longer than {MAX_NAME} characters", status_code=400)
            return JSONResponse(render(name))
        return endpoint

    def document(render: Callable[[], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return JSONResponse(render())
        return endpoint

    async def ports(request: Request) -> Response:
        return PlainTextResponse("To be implemented...", status_code=501)

    return Starlette(routes=[
        Route("/v1/version", document(lambda: {"Service": "Mesos-DNS", "Version": VERSION,
                                               "URL": "https://github.com/mesosphere/mesos-dns"})),
        Route("/v1/config", document(options.config_json)),
        Route("/v1/hosts/{host}/ports", ports),
        Route("/v1/hosts/{host}", named(lambda host: views.hosts(book, host), "host")),
        Route("/v1/services/{service}", named(lambda service: views.services(book, service), "service")),
        Route("/v1/enumerate", document(lambda: views.enumerate_json(book))),
        Route("/v1/axfr", document(lambda: views.axfr_json(book, options))),
        Route("/metrics/snapshot", document(lambda: metrics(book, status, counters))),
    ])
