"""The Chronos REST API of ``meseta jobs`` (3.x paths under /v1/scheduler; the 2.x ones under
/scheduler, where job names may hold spaces and PUT iso8601/dependency update).

    GET  /ping  /metrics  /leader                  unprefixed
    GET  <p>/jobs  <p>/jobs/search?name=&command=&any=&limit=10&offset=0  <p>/jobs/summary
    POST <p>/iso8601   POST <p>/dependency          create or replace: 204, empty body
    GET  <p>/job/<name>                             one job
    PUT  <p>/job/<name>[?arguments=a b]             run now: 204
    DELETE <p>/job/<name>                           204; 400 if unknown
    PUT  <p>/job/success/<name>                     mark successful, children run
    DELETE <p>/task/kill/<name>                     kill the job's runs: 204
    GET  <p>/job/stat/<name>   <p>/stats/<99thPercentile|...|mean>   <p>/graph/csv   <p>/graph/dot
    GET  <p>/events                                 (Meseta's) the last missed, skipped, failed runs

Errors are Chronos's ApiResult, ``{"message": ..., "status": <reason phrase>}``, 400 for what
the client got wrong, naming the field; nothing is stored by a refused call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from meseta.jobs import graph, stats
from meseta.jobs.machine import Job, JobsMachine, UnknownJob
from meseta.jobs.shell.actor import JobsActor
from meseta.jobs.spec import JobRejected, parse_job
from meseta.protocol.json_edge import JsonRejected, decode_json
from meseta.runtime.http import MAX_BODY_BYTES, HttpError, read_body
from meseta.runtime.http import FastJSONResponse as JSONResponse

CHRONOS_VERSION = "3.0.2"
MAX_BODY_DEPTH = 16  # a job is flat but for container.volumes / parameters (four levels)
MAX_QUERY_BYTES = 8192
SEARCH_LIMIT_MAX = 10_000


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def api_result(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "status": HTTPStatus(status).phrase}, status_code=status)


def no_content() -> Response:
    return Response(status_code=204)


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name}: '{text[:32]}' is not a whole number") from None
    if not 0 <= value <= maximum:
        raise ApiError(400, f"{name}: {value} is not between 0 and {maximum}")
    return value


class JobsApi:
    def __init__(self, actor: JobsActor, leader: str) -> None:
        self.actor = actor
        self.machine: JobsMachine = actor.machine
        self.leader_address = leader

    def _job(self, name: str) -> Job:
        job = self.machine.jobs.get(name)
        if job is None:
            raise ApiError(400, f"Job '{name}' not found")
        return job

    # ------------------------------------------------------------ unprefixed
    async def ping(self, request: Request) -> Response:
        return PlainTextResponse("pong")

    async def leader(self, request: Request) -> Response:
        return JSONResponse({"leader": self.leader_address})

    async def metrics(self, request: Request) -> Response:
        m = self.machine
        runs = list(m.runs.values())
        gauges = {
            "jobs.count": {"value": len(m.jobs)},
            "jobs.disabled": {"value": sum(1 for j in m.jobs.values() if j.spec.disabled)},
            "runs.queued": {"value": sum(1 for r in runs if not r.active)},
            "runs.active": {"value": sum(1 for r in runs if r.active)},
            "framework.connected": {"value": self.actor.connected()},
            "uptime.seconds": {"value": round(self.actor.clock() - self.actor.started_at, 3)},
        }
        counters = {
            "runs.succeeded": {"count": sum(j.success_count for j in m.jobs.values())},
            "runs.failed": {"count": sum(j.error_count for j in m.jobs.values())},
            "runs.missed": {"count": sum(j.missed_count for j in m.jobs.values())},
            "runs.skipped": {"count": sum(j.skipped_count for j in m.jobs.values())},
        }
        return JSONResponse({"version": "3.0.0", "gauges": gauges, "counters": counters, "histograms": {},
                             "meters": {}, "timers": {}})

    # ------------------------------------------------------------ jobs
    async def jobs(self, request: Request) -> Response:
        return JSONResponse([job.wire() for job in self.machine.jobs.values()])

    async def search(self, request: Request) -> Response:
        name = (request.query_params.get("name") or "").lower()
        command = (request.query_params.get("command") or "").lower()
        either = (request.query_params.get("any") or "").lower()
        limit = _int_param(request, "limit", 10, SEARCH_LIMIT_MAX)
        offset = _int_param(request, "offset", 0, 2**31)
        found = [job for job in self.machine.jobs.values()
                 if name in job.spec.name.lower() and command in job.spec.command.lower()
                 and (not either or either in job.spec.name.lower() or either in job.spec.command.lower())]
        return JSONResponse([job.wire() for job in found[offset:offset + limit]])

    async def summary(self, request: Request) -> Response:
        m = self.machine
        return JSONResponse({"jobs": [{"name": name, "status": m.last_state(name), "state": m.state_of(name),
                                       "schedule": job.schedule_text() or "", "parents": list(job.spec.parents),
                                       "disabled": job.spec.disabled} for name, job in m.jobs.items()]})

    def _put(self, dependent: bool) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            legacy = not request.url.path.startswith("/v1/")
            if request.method == "PUT" and not legacy:
                raise ApiError(405, "PUT is the 2.x update (under /scheduler); 3.x replaces a job with POST")
            body = await _read_json(request)
            try:
                spec = parse_job(body, dependent=dependent, legacy=legacy, now=self.actor.clock())
                await self.actor.run(self.machine.put_job, spec)
            except JobRejected as exc:
                raise ApiError(400, str(exc)) from None
            return no_content()
        return handler

    async def job(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "GET":
            if not request.url.path.startswith("/v1/"):
                raise ApiError(405, "GET .../job/<name> is a 3.x call (under /v1/scheduler)")
            return JSONResponse(self._job(name).wire())
        if request.method == "DELETE":
            self._job(name)
            await self.actor.run(self.machine.delete_job, name)
            return no_content()
        arguments = tuple(" ".join(request.query_params.getlist("arguments")).split())
        self._job(name)
        try:
            await self.actor.run(self.machine.run_now, name, arguments)
        except JobRejected as exc:
            raise ApiError(400, str(exc)) from None
        return no_content()

    async def success(self, request: Request) -> Response:
        name = request.path_params["name"]
        self._job(name)
        await self.actor.run(self.machine.mark_success, name)
        return PlainTextResponse(f"Job '{name}' marked successful")

    async def kill(self, request: Request) -> Response:
        name = request.path_params["name"]
        self._job(name)
        await self.actor.run(self.machine.kill_tasks, name)
        return no_content()

    async def progress(self, request: Request) -> Response:
        raise ApiError(400, "task progress (numAdditionalElementsProcessed) needs Chronos's Cassandra reporter, "
                            "which Meseta does not have")

    # ------------------------------------------------------------ statistics and the graph
    async def job_stat(self, request: Request) -> Response:
        name = request.path_params["name"]
        job = self._job(name)
        history = [entry for entry in job.history if entry["status"] != "missed"]
        return JSONResponse({"histogram": stats.histogram(self.machine.durations(name)), "taskStatHistory": history})

    async def stat(self, request: Request) -> Response:
        which = request.path_params["which"]
        if which not in stats.STAT_NAMES:
            raise ApiError(400, f"stats: unknown statistic '{which[:64]}'; known: {', '.join(stats.STAT_NAMES)}")
        figures: list[dict[str, Any]] = [
            {"jobNameLabel": name, "time": stats.stat_of(self.machine.durations(name), which)}
            for name in self.machine.jobs]
        figures.sort(key=lambda f: (-f["time"], f["jobNameLabel"]))
        return JSONResponse(figures)

    def _graph(self) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
        m = self.machine
        nodes = [(name, m.last_state(name), m.state_of(name)) for name in m.jobs]
        links = [(parent, name) for name, job in m.jobs.items() for parent in job.spec.parents]
        return nodes, links

    async def graph_csv(self, request: Request) -> Response:
        return PlainTextResponse(graph.graph_csv(*self._graph()))

    async def graph_dot(self, request: Request) -> Response:
        return PlainTextResponse(graph.graph_dot(*self._graph()))

    async def events(self, request: Request) -> Response:
        return JSONResponse(list(self.actor.events))


async def _read_json(request: Request) -> Any:
    try:
        raw = await read_body(request, MAX_BODY_BYTES)
    except HttpError as exc:
        raise ApiError(exc.status, exc.message) from None
    if not raw.strip():
        raise ApiError(400, "the request has no body: a job is expected")
    try:
        return decode_json(raw, "job", MAX_BODY_DEPTH)
    except JsonRejected as exc:
        raise ApiError(400, f"Invalid JSON: {exc.message}") from None


def build_jobs_app(actor: JobsActor, leader: str) -> Any:
    api = JobsApi(actor, leader)

    def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                if len(request.scope.get("query_string", b"")) > MAX_QUERY_BYTES:
                    raise ApiError(414, f"The query string is longer than {MAX_QUERY_BYTES} bytes")
                return await handler(request)
            except ApiError as exc:
                return api_result(exc.status, exc.message)
            except UnknownJob as exc:
                return api_result(400, str(exc))
        return endpoint

    routes = [Route("/ping", guarded(api.ping), methods=["GET"]),
              Route("/metrics", guarded(api.metrics), methods=["GET"]),
              Route("/leader", guarded(api.leader), methods=["GET"])]
    for prefix in ("/v1/scheduler", "/scheduler"):
        routes += [
            Route(f"{prefix}/jobs", guarded(api.jobs), methods=["GET"]),
            Route(f"{prefix}/jobs/search", guarded(api.search), methods=["GET"]),
            Route(f"{prefix}/jobs/summary", guarded(api.summary), methods=["GET"]),
            Route(f"{prefix}/iso8601", guarded(api._put(dependent=False)), methods=["POST", "PUT"]),
            Route(f"{prefix}/dependency", guarded(api._put(dependent=True)), methods=["POST", "PUT"]),
            Route(f"{prefix}/job/success/{{name:path}}", guarded(api.success), methods=["PUT"]),
            Route(f"{prefix}/job/stat/{{name:path}}", guarded(api.job_stat), methods=["GET"]),
            Route(f"{prefix}/job/{{name}}/task/{{task}}/progress", guarded(api.progress), methods=["POST"]),
            Route(f"{prefix}/job/{{name:path}}", guarded(api.job), methods=["GET", "PUT", "DELETE"]),
            Route(f"{prefix}/task/kill/{{name:path}}", guarded(api.kill), methods=["DELETE"]),
            Route(f"{prefix}/stats/{{which}}", guarded(api.stat), methods=["GET"]),
            Route(f"{prefix}/graph/csv", guarded(api.graph_csv), methods=["GET"]),
            Route(f"{prefix}/graph/dot", guarded(api.graph_dot), methods=["GET"]),
            Route(f"{prefix}/events", guarded(api.events), methods=["GET"]),
        ]
    return Starlette(routes=routes)
