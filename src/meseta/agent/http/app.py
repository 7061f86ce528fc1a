"""The agent's HTTP routes (each also under ``/slave(1)``); every handler runs on the event loop
and reads the machine's state, so no request waits for a worker thread.

    POST /api/v1/executor          v1 executor API (``meseta.agent.http.executor_api``)
    GET  /state  /monitor/statistics  /health  /version  /flags     (and *.json aliases)
    GET  /metrics/snapshot
    GET  /files/browse /files/read /files/download                  (``meseta.agent.http.files``)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from meseta.agent import monitor, paths
from meseta.agent.actor import AgentActor
from meseta.agent.containerizer.cgroups import ContainerCgroups
from meseta.agent.disk_quota import quota_bytes
from meseta.agent.http.executor_api import ExecutorEndpoint
from meseta.agent.http.files import files_routes
from meseta.agent.runs import ExecutorRun, TaskRecord
from meseta.core.resources import Resources
from meseta.protocol.common import version_json
from meseta.protocol.task_states import TERMINAL

log = logging.getLogger(__name__)


def _task_json(run: ExecutorRun, task: TaskRecord) -> dict[str, Any]:
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


def _executor_json(agent: AgentActor, run: ExecutorRun) -> dict[str, Any]:
    tasks = [_task_json(run, t) for t in run.tasks.values()]
    return {
        "id": run.executor_id,
        "name": run.executor_info.get("name", ""),
        "source": run.executor_info.get("source", ""),
        "container": run.container_id,
        "directory": str(paths.sandbox_dir(agent.work_dir, *run.key)),
        "type": run.kind,
        "resources": Resources.from_json(run.executor_info.get("resources") or []).summary(),
        "tasks": [t for t in tasks if t["state"] not in TERMINAL],
        "queued_tasks": [],
        "completed_tasks": [t for t in tasks if t["state"] in TERMINAL],
    }


def state_json(agent: AgentActor, flags: dict[str, str]) -> dict[str, Any]:
    machine = agent.machine
    frameworks: dict[str, dict[str, Any]] = {}
    for framework_id, info in machine.frameworks.items():
        frameworks[framework_id] = {
            "id": framework_id, "name": info.get("name", ""), "user": info.get("user", ""),
            "failover_timeout": info.get("failover_timeout", 0), "checkpoint": info.get("checkpoint", False),
            "hostname": info.get("hostname", ""), "role": info.get("role", "*"),
            "executors": [], "completed_executors": [],
        }
    for run in machine.executors.values():
        frameworks[run.framework_id]["executors"].append(_executor_json(agent, run))
    for run in machine.completed_executors:
        if run.framework_id in frameworks:
            frameworks[run.framework_id]["completed_executors"].append(_executor_json(agent, run))
    return {
        **version_json(),
        "start_time": agent.start_time,
        "id": machine.agent_id or "",
        "pid": agent.pid,
        "hostname": machine.hostname,
        "resources": machine.resources.summary(),
        "unreserved_resources": machine.resources.unreserved().summary(),
        "reserved_resources": {},
        "attributes": {a["name"]: a.get("text", a.get("scalar", {})).get("value") for a in machine.attributes},
        "master_hostname": agent.master.split("//")[-1].split(":")[0],
        "flags": flags,
        "frameworks": [f for f in frameworks.values() if f["executors"]],
        "completed_frameworks": [f for f in frameworks.values() if not f["executors"]],
    }


def _measured(row: dict[str, Any], pids: list[int], cgroups: ContainerCgroups | None, now: float) -> dict[str, Any]:
    """One executor's statistics (blocking: /proc and cgroup files, read in a worker thread)."""
    stats = row["statistics"]
    for pid in pids:
        part = monitor.process_tree_statistics(pid, cpus_limit=None, mem_limit_bytes=None, now=now)
        for key in ("processes", "threads", "cpus_user_time_secs", "cpus_system_time_secs", "mem_rss_bytes"):
            stats[key] += part.get(key, 0)
    stats["mem_total_bytes"] = stats["mem_rss_bytes"]
    if cgroups is not None:  # the kernel's own counters, for the whole container
        stats.update(cgroups.statistics())
    return row


async def statistics_json(agent: AgentActor) -> list[dict[str, Any]]:
    """Taken from the machine on the loop, measured off it."""
    now = agent.now()
    work = []
    for run in agent.machine.executors.values():
        container = agent.containers.get(run.key)
        resources = Resources.from_json(
            [r for t in run.tasks.values() for r in t.info.get("resources") or []]
            + list(run.executor_info.get("resources") or []))
        stats: dict[str, Any] = {"timestamp": now, "processes": 0, "threads": 0, "cpus_user_time_secs": 0.0,
                                 "cpus_system_time_secs": 0.0, "mem_rss_bytes": 0,
                                 "cpus_limit": resources.scalar("cpus"),
                                 "mem_limit_bytes": int(resources.scalar("mem") * 1024 * 1024)}
        if run.disk_used is not None:
            stats["disk_used_bytes"] = run.disk_used
            quota = quota_bytes(run.allocated)
            if quota is not None:
                stats["disk_limit_bytes"] = quota
        row = {"framework_id": run.framework_id, "executor_id": run.executor_id,
               "executor_name": run.executor_info.get("name", ""), "source": run.executor_info.get("source", ""),
               "statistics": stats}
        work.append((row, container.pids() if container else [], container.cgroups if container else None))
    return await asyncio.to_thread(lambda: [_measured(row, pids, cgroups, now) for row, pids, cgroups in work])


def metrics_json(agent: AgentActor) -> dict[str, float]:
    """The agent's ``/metrics/snapshot`` keys (Mesos names, ``slave/`` prefix)."""
    machine = agent.machine
    tasks = [task for run in machine.executors.values() for task in run.tasks.values()]
    return {
        "slave/registered": 1.0 if agent.stream_id else 0.0,
        "slave/executors_running": float(len(machine.executors)),
        "slave/executors_preempted": float(machine.metrics["executors_preempted"]),
        "slave/tasks_running": float(sum(t.state == "TASK_RUNNING" for t in tasks)),
        "slave/tasks_staging": float(sum(t.state in ("TASK_STAGING", "TASK_STARTING") for t in tasks)),
        "slave/uptime_secs": agent.now() - agent.start_time,
    }


def build_agent_app(agent: AgentActor, flags: dict[str, str]) -> Starlette:
    routes: list[BaseRoute] = []

    def both(path: str, endpoint: Callable[..., Any], methods: list[str]) -> None:
        routes.append(Route(path, endpoint, methods=methods))
        routes.append(Route("/slave(1)" + path, endpoint, methods=methods))

    async def state(request: Request) -> Response:
        return JSONResponse(state_json(agent, flags))

    async def statistics(request: Request) -> Response:
        return JSONResponse(await statistics_json(agent))

    async def health(request: Request) -> Response:
        return Response(status_code=200)

    async def metrics(request: Request) -> Response:
        return JSONResponse(metrics_json(agent))

    async def version(request: Request) -> Response:
        return JSONResponse(version_json())

    async def flags_view(request: Request) -> Response:
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
