"""Assembly of ``meseta agent``: options, resource detection, isolation and the served agent.

    AgentOptions --build_agent--> (AgentActor, ASGI app) --run_agent--> serving until cancelled
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import psutil

from meseta.agent.actor import AgentActor
from meseta.agent.containerizer.cgroup_limits import parse_isolation
from meseta.agent.containerizer.cgroups import CgroupIsolation
from meseta.agent.containerizer.launcher import PosixLauncher
from meseta.agent.http.app import build_agent_app
from meseta.agent.options import AgentOptions
from meseta.agent.seams import AgentSeams
from meseta.core.reservations import as_revocable
from meseta.core.resources import Resources
from meseta.runtime.serve import server

DEFAULT_PORTS = "ports:[31000-32000]"
MB = 1024 * 1024


def detect_resources(work_dir: Path, given: str | None) -> Resources:
    """Mesos' auto-detection for whatever ``--resources`` leaves out (spec 5.2)."""
    explicit = Resources.parse(given) if given else Resources()
    names = explicit.names()
    detected = []
    if "cpus" not in names:
        detected.append(f"cpus:{os.cpu_count() or 1}")
    if "mem" not in names:
        total = psutil.virtual_memory().total // MB
        detected.append(f"mem:{total - 1024 if total >= 2048 else total // 2}")
    if "disk" not in names:
        work_dir.mkdir(parents=True, exist_ok=True)
        size = shutil.disk_usage(work_dir).total // MB
        detected.append(f"disk:{size - 5120 if size >= 10240 else size // 2}")
    if "ports" not in names:
        detected.append(DEFAULT_PORTS)
    return explicit + Resources.parse(";".join(detected))


def build_cgroups(options: AgentOptions) -> CgroupIsolation | None:
    """The cgroups isolators ``--isolation`` asks for, or None.
    Raises ValueError for an unknown isolator, CgroupError for a controller the host lacks."""
    isolation = parse_isolation(options.isolation)
    if not isolation.controllers:
        return None
    return CgroupIsolation.detect(set(isolation.controllers), options.cgroups_root, options.cgroups_enable_cfs,
                                  options.cgroups_limit_pids)


def build_agent(options: AgentOptions) -> tuple[AgentActor, Any]:
    resources = detect_resources(options.work_dir, options.resources)
    cgroups = build_cgroups(options)
    if options.oversubscribed_resources:
        resources = resources + as_revocable(Resources.parse(options.oversubscribed_resources))
    agent = AgentActor(options, resources, AgentSeams(launcher=PosixLauncher(), cgroups=cgroups))  # its own fetcher
    flags = {k: str(v) for k, v in vars(options).items() if k != "extra_flags"} | options.extra_flags
    return agent, build_agent_app(agent, flags)


async def run_agent(agent: AgentActor, app: Any, ip: str, port: int) -> None:
    srv = server(app, ip, port)
    serve = asyncio.create_task(srv.serve())
    while not srv.started:
        if serve.done():
            await serve
            return
        await asyncio.sleep(0.01)
    try:
        await asyncio.gather(serve, agent.run_forever(), agent.retry_updates(), agent.qos_corrections(),
                             agent.collect_garbage(), agent.watch_disk_usage())
    finally:
        await agent.stop()
