"""The agent's HTTP routes (each also under ``/slave(1)``).

    POST /api/v1/executor          v1 executor API: SUBSCRIBE stream, UPDATE, MESSAGE, HEARTBEAT
    GET  /state  /monitor/statistics  /health  /version  /flags     (and *.json aliases)
    GET  /files/browse /files/read /files/download                  (confined to sandboxes)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from meseta.agent import monitor, paths
from meseta.agent.actor import Agent
from meseta.agent.disk_quota import quota_bytes
from meseta.agent.executors import CustomExecutor, ExecutorRun
from meseta.agent.http.files import files_routes
from meseta.core.resources import Resources
from meseta.protocol.common import uuid_problem, version_json
from meseta.protocol.task_states import TERMINAL
from meseta.runtime.http import HttpError, accepted, check_json_request, read_body
from meseta.runtime.streams import EventStream

_decode = msgspec.json.Decoder(dict[str, Any])


log = logging.getLogger(__name__)


class ExecutorEndpoint:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def handle(self, request: Request) -> Response:
        try:
            check_json_request(request)
            try:
                call = _decode.decode(await read_body(request))
            except msgspec.DecodeError as exc:
                raise HttpError(400, f"Failed to parse body into executor::Call: {exc}") from None
            run = self._find(call)
            kind = call.get("type")
            if kind == "SUBSCRIBE":
                return self._subscribe(run, call)
            if not isinstance(run, CustomExecutor) or run.stream is None or run.stream.closed:
                raise HttpError(403, "Executor is not subscribed")
            if kind == "UPDATE":
                self._update(run, call)
            elif kind == "MESSAGE":
                data = (call.get("message") or {}).get("data")
                if not isinstance(data, str):
                    raise HttpError(400, "Expecting 'message.data' to be present")
                self.agent.executor_message(run, data)
            elif kind != "HEARTBEAT":
                raise HttpError(400, f"Failed to validate executor::Call: unknown call type '{kind}'")
        except HttpError as exc:
            return exc.response()
        return accepted()

    def _find(self, call: dict[str, Any]) -> ExecutorRun:
        for field in ("framework_id", "executor_id"):
            if not isinstance((call.get(field) or {}).get("value"), str):
                raise HttpError(400, f"Failed to validate executor::Call: Expecting '{field}' to be present")
        if call["framework_id"]["value"] not in self.agent.frameworks:
            raise HttpError(400, "Framework cannot be found")
        run = self.agent.executors.get((call["framework_id"]["value"], call["executor_id"]["value"]))
        if run is None:
            raise HttpError(400, "Executor cannot be found")
        return run

    def _subscribe(self, run: ExecutorRun, call: dict[str, Any]) -> Response:
        if not isinstance(run, CustomExecutor):
            raise HttpError(400, "Executor cannot be found")
        stream = EventStream(run.container_id, heartbeat_interval=1800.0)
        log.info("agent %s: executor %s of %s subscribed", self.agent.port, run.executor_id, run.framework_id)
        run.subscribed(stream, self.agent.agent_info())
        # an executor subscribing again (after an agent restart) resends what it never saw
        # acknowledged; duplicates of updates the agent has are dropped by their uuid
        for update in (call.get("subscribe") or {}).get("unacknowledged_updates") or []:
            try:
                self._update(run, {"update": update})
            except HttpError:
                continue
        return StreamingResponse(stream.body(), media_type="application/json")

    def _update(self, run: CustomExecutor, call: dict[str, Any]) -> None:
        status = (call.get("update") or {}).get("status")
        if not isinstance(status, dict) or not isinstance((status.get("task_id") or {}).get("value"), str):
            raise HttpError(400, "Expecting 'update.status.task_id' to be present")
        problem = uuid_problem(status.get("uuid"))
        if problem:
            raise HttpError(400, f"Failed to validate executor::Call: status {problem}")
        if status.get("source") != "SOURCE_EXECUTOR":
            raise HttpError(400, "Received Call from executor with invalid source: expecting SOURCE_EXECUTOR")
        if status.get("state") == "TASK_STAGING":
            raise HttpError(400, "Received TASK_STAGING from executor")
        executor_id = (status.get("executor_id") or {}).get("value")
        if executor_id not in (None, run.executor_id):
            raise HttpError(400, "Received status update from executor with a mismatched executor id")
        status = {**status, "executor_id": run.executor_info["executor_id"]}
        run.record_update(status)
        self.agent.status_update(run.framework_id, status)
        if run.stream is not None:
            run.stream.send({"type": "ACKNOWLEDGED", "acknowledged": {"task_id": status["task_id"],
                                                                      "uuid": status["uuid"]}})


def _task_json(run: ExecutorRun, task: Any) -> dict[str, Any]:
    info = task.info
    return {
        "id": info["task_id"]["value"],
        "name": info.get("name", ""),
        "framework_id": run.framework_id,
        "executor_id": run.executor_id if run.kind == "CUSTOM" else "",
        "slave_id": info.get("agent_id", {}).get("value", ""),
        "state": task.state,
        "resources": Resources.from_json(info.get("resources") or []).summary(),
    }


def _executor_json(run: ExecutorRun) -> dict[str, Any]:
    tasks = [_task_json(run, t) for t in run.tasks.values()]
    return {
        "id": run.executor_id,
        "name": run.executor_info.get("name", ""),
        "source": run.executor_info.get("source", ""),
        "container": run.container_id,
        "directory": str(run.sandbox),
        "type": run.kind,
        "resources": Resources.from_json(run.executor_info.get("resources") or []).summary(),
        "tasks": [t for t in tasks if t["state"] not in TERMINAL],
        "queued_tasks": [],
        "completed_tasks": [t for t in tasks if t["state"] in TERMINAL],
    }


def state_json(agent: Agent, flags: dict[str, str]) -> dict[str, Any]:
    frameworks: dict[str, dict[str, Any]] = {}
    for framework_id, info in agent.frameworks.items():
        frameworks[framework_id] = {
            "id": framework_id, "name": info.get("name", ""), "user": info.get("user", ""),
            "failover_timeout": info.get("failover_timeout", 0), "checkpoint": info.get("checkpoint", False),
            "hostname": info.get("hostname", ""), "role": info.get("role", "*"),
            "executors": [], "completed_executors": [],
        }
    for run in agent.executors.values():
        frameworks[run.framework_id]["executors"].append(_executor_json(run))
    for run in agent.completed_executors:
        if run.framework_id in frameworks:
            frameworks[run.framework_id]["completed_executors"].append(_executor_json(run))
    return {
        **version_json(),
        "start_time": agent.start_time,
        "id": agent.agent_id or "",
        "pid": agent.pid,
        "hostname": agent.hostname,
        "resources": agent.resources.summary(),
        "unreserved_resources": agent.resources.unreserved().summary(),
        "reserved_resources": {},
        "attributes": {a["name"]: a.get("text", a.get("scalar", {})).get("value") for a in agent.attributes},
        "master_hostname": agent.master.split("//")[-1].split(":")[0],
        "flags": flags,
        "frameworks": [f for f in frameworks.values() if f["executors"]],
        "completed_frameworks": [f for f in frameworks.values() if not f["executors"]],
    }


def statistics_json(agent: Agent) -> list[dict[str, Any]]:
    out = []
    now = time.time()
    for run in agent.executors.values():
        pids = [t.process.pid for t in run.tasks.values() if t.process is not None]
        if run.process is not None:
            pids.append(run.process.pid)
        resources = Resources.from_json(
            [r for t in run.tasks.values() for r in t.info.get("resources") or []]
            + list(run.executor_info.get("resources") or []))
        stats: dict[str, Any] = {"timestamp": now, "processes": 0, "threads": 0, "cpus_user_time_secs": 0.0,
                                 "cpus_system_time_secs": 0.0, "mem_rss_bytes": 0,
                                 "cpus_limit": resources.scalar("cpus"),
                                 "mem_limit_bytes": int(resources.scalar("mem") * 1024 * 1024)}
        for pid in pids:
            part = monitor.process_tree_statistics(pid, cpus_limit=None, mem_limit_bytes=None, now=now)
            for key in ("processes", "threads", "cpus_user_time_secs", "cpus_system_time_secs", "mem_rss_bytes"):
                stats[key] += part.get(key, 0)
        stats["mem_total_bytes"] = stats["mem_rss_bytes"]
        if run.cgroups is not None:  # the kernel's own counters, for the whole container
            stats.update(run.cgroups.statistics())
        if run.disk_used is not None:
            stats["disk_used_bytes"] = run.disk_used
            quota = quota_bytes(run.allocated)
            if quota is not None:
                stats["disk_limit_bytes"] = quota
        out.append({"framework_id": run.framework_id, "executor_id": run.executor_id,
                    "executor_name": run.executor_info.get("name", ""), "source": run.executor_info.get(
                        "source", ""), "statistics": stats})
    return out


def metrics_json(agent: Agent) -> dict[str, float]:
    """The agent's ``/metrics/snapshot`` keys (Mesos names, ``slave/`` prefix)."""
    tasks = [task for run in agent.executors.values() for task in run.tasks.values()]
    return {
        "slave/registered": 1.0 if agent.stream_id else 0.0,
        "slave/executors_running": float(len(agent.executors)),
        "slave/executors_preempted": float(agent.metrics["executors_preempted"]),
        "slave/tasks_running": float(sum(t.state == "TASK_RUNNING" for t in tasks)),
        "slave/tasks_staging": float(sum(t.state in ("TASK_STAGING", "TASK_STARTING") for t in tasks)),
        "slave/uptime_secs": time.time() - agent.start_time,
    }


def build_agent_app(agent: Agent, flags: dict[str, str]) -> Starlette:
    routes: list[BaseRoute] = []

    def both(path: str, endpoint: Callable[..., Any], methods: list[str]) -> None:
        routes.append(Route(path, endpoint, methods=methods))
        routes.append(Route("/slave(1)" + path, endpoint, methods=methods))

    def state(request: Request) -> Response:
        return JSONResponse(state_json(agent, flags))

    def statistics(request: Request) -> Response:
        return JSONResponse(statistics_json(agent))

    def health(request: Request) -> Response:
        return Response(status_code=200)

    def metrics(request: Request) -> Response:
        return JSONResponse(metrics_json(agent))

    def version(request: Request) -> Response:
        return JSONResponse(version_json())

    def flags_view(request: Request) -> Response:
        return JSONResponse({"flags": flags})

    both("/api/v1/executor", ExecutorEndpoint(agent).handle, ["POST", "GET"])
    for path, endpoint in (("/state", state), ("/monitor/statistics", statistics), ("/flags", flags_view)):
        both(path, endpoint, ["GET"])
        both(path + ".json", endpoint, ["GET"])
    both("/health", health, ["GET"])
    routes.append(Route("/version", version, methods=["GET"]))
    routes.append(Route("/metrics/snapshot", metrics, methods=["GET"]))
    routes.extend(files_routes(lambda: [paths.slaves_root(agent.work_dir)]))
    return Starlette(routes=routes)

