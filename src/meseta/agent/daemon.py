"""Assembly of ``meseta agent``: options, resource detection, isolation and the served agent.

    AgentOptions --build_agent--> (Agent, ASGI app) --run_agent--> serving until cancelled
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from meseta.agent.actor import Agent
from meseta.agent.containerizer.cgroup_limits import Isolation, parse_isolation
from meseta.agent.containerizer.cgroups import CgroupIsolation
from meseta.agent.containerizer.launcher import PosixLauncher
from meseta.agent.fetcher import DEFAULT_CACHE_BYTES, Fetcher, FetcherCache
from meseta.agent.gc import DEFAULT_DISK_HEADROOM, DEFAULT_DISK_WATCH_INTERVAL, DEFAULT_GC_DELAY
from meseta.agent.http.app import build_agent_app
from meseta.agent.qos import LoadThresholds
from meseta.core.reservations import as_revocable
from meseta.core.resources import Resources, parse_attributes
from meseta.runtime.serve import server

DEFAULT_PORTS = "ports:[31000-32000]"
MB = 1024 * 1024


@dataclass
class AgentOptions:
    master: str = "127.0.0.1:5050"
    ip: str = "127.0.0.1"
    port: int = 5051
    work_dir: Path = Path("/tmp/meseta/agent")
    resources: str | None = None
    attributes: str = ""
    hostname: str | None = None
    switch_user: bool = True
    extra_flags: dict[str, str] = field(default_factory=dict)
    oversubscribed_resources: str = ""  # a fixed estimate, offered as revocable resources
    qos_load_threshold_5min: float | None = None  # above it, revocable executors are preempted
    qos_load_threshold_15min: float | None = None
    qos_correction_interval: float = 1.0
    isolation: str = "posix/cpu,posix/mem"  # add cgroups/cpu,cgroups/mem,cgroups/pids,namespaces/pid
    cgroups_root: str = "meseta"
    cgroups_enable_cfs: bool = False
    cgroups_limit_pids: int | None = None
    fetcher_cache_dir: Path | None = None  # default: <work-dir>/fetch
    fetcher_cache_size: int = DEFAULT_CACHE_BYTES
    gc_delay: float = DEFAULT_GC_DELAY
    gc_disk_headroom: float = DEFAULT_DISK_HEADROOM
    disk_watch_interval: float = DEFAULT_DISK_WATCH_INTERVAL
    enforce_container_disk_quota: bool = False
    container_disk_watch_interval: float = 15.0
    docker_registry: Path | None = None  # a directory of docker-archive / OCI tarballs
    executor_reregistration_timeout: float = 2.0
    recover: str = "reconnect"  # or cleanup
    status_update_retry_min: float = 10.0
    status_update_retry_max: float = 600.0


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


def build_isolation(options: AgentOptions) -> tuple[Isolation, CgroupIsolation | None]:
    """``--isolation`` -> (what it asks for, the cgroups isolators or None).
    Raises ValueError for an unknown isolator, CgroupError for a controller the host lacks."""
    isolation = parse_isolation(options.isolation)
    if not isolation.controllers:
        return isolation, None
    cgroups = CgroupIsolation.detect(set(isolation.controllers), options.cgroups_root, options.cgroups_enable_cfs,
                                     options.cgroups_limit_pids)
    return isolation, cgroups


def build_agent(options: AgentOptions) -> tuple[Agent, Any]:
    resources = detect_resources(options.work_dir, options.resources)
    isolation, cgroups = build_isolation(options)
    if options.oversubscribed_resources:
        resources = resources + as_revocable(Resources.parse(options.oversubscribed_resources))
    agent = Agent(
        master=options.master,
        ip=options.ip,
        port=options.port,
        work_dir=options.work_dir,
        resources=resources,
        attributes=parse_attributes(options.attributes),
        launcher=PosixLauncher(),
        hostname=options.hostname,
        switch_user=options.switch_user,
        qos=LoadThresholds(options.qos_load_threshold_5min, options.qos_load_threshold_15min),
        qos_interval=options.qos_correction_interval,
        pid_namespace=isolation.pid_namespace,
        cgroups=cgroups,
        fetcher=Fetcher(FetcherCache(options.fetcher_cache_dir or options.work_dir / "fetch",
                                     options.fetcher_cache_size)),
        gc_delay=options.gc_delay,
        gc_disk_headroom=options.gc_disk_headroom,
        disk_watch_interval=options.disk_watch_interval,
        disk_du=isolation.disk_du,
        enforce_disk_quota=options.enforce_container_disk_quota,
        container_disk_watch_interval=options.container_disk_watch_interval,
        docker_registry=options.docker_registry,
        executor_reregistration_timeout=options.executor_reregistration_timeout,
        recover=options.recover,
        update_retry_seconds=options.status_update_retry_min,
        update_retry_max_seconds=options.status_update_retry_max,
    )
    flags = {k: str(v) for k, v in vars(options).items() if k != "extra_flags"} | options.extra_flags
    return agent, build_agent_app(agent, flags)


async def run_agent(agent: Agent, app: Any, ip: str, port: int) -> None:
    srv = server(app, ip, port)
    serve = asyncio.create_task(srv.serve())
    while not srv.started:
        if serve.done():
            await serve
            return
        await asyncio.sleep(0.01)
    try:
        await asyncio.gather(serve, agent.run(), agent.retry_updates(), agent.qos_corrections(),
                             agent.collect_garbage(), agent.watch_disk_usage())
    finally:
        await agent.stop()
