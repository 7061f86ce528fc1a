"""Assembly of the daemons: build a master or an agent, and serve ASGI apps on one loop.

``meseta local`` runs one master and N agents on a single event loop; they still talk to each
other over loopback HTTP with their real protocols, exactly as separate processes do.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import os
import shutil
import socket
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import uvicorn

from meseta import MESOS_COMPAT_VERSION
from meseta.agent.actor import Agent
from meseta.agent.containerizer.cgroup_limits import Isolation, parse_isolation
from meseta.agent.containerizer.cgroups import CgroupIsolation
from meseta.agent.containerizer.launcher import PosixLauncher
from meseta.agent.fetcher import DEFAULT_CACHE_BYTES, Fetcher, FetcherCache
from meseta.agent.gc import DEFAULT_DISK_HEADROOM, DEFAULT_DISK_WATCH_INTERVAL, DEFAULT_GC_DELAY
from meseta.agent.http.app import build_agent_app
from meseta.agent.qos import LoadThresholds
from meseta.core.reservations import as_revocable
from meseta.core.resources import Resources, parse_attributes, validate_role
from meseta.master.actor import MasterActor
from meseta.master.http.app import build_master_app
from meseta.master.machine import MasterMachine
from meseta.master.maintenance import parse_rate_limit
from meseta.master.registry.storage import SqliteStorage, Storage

DEFAULT_PORTS = "ports:[31000-32000]"
MB = 1024 * 1024


@dataclass
class MasterOptions:
    ip: str = "127.0.0.1"
    port: int = 5050
    work_dir: Path = Path("/tmp/meseta/master")
    hostname: str | None = None
    allocation_interval: float = 1.0
    agent_ping_timeout: float = 15.0
    max_agent_ping_timeouts: int = 5
    weights: str = ""  # "role=weight,..." (deprecated in Mesos, still honoured)
    role_sorter: str = "drf"
    framework_sorter: str = "drf"
    offer_timeout: float | None = None
    zk: str | None = None  # zk://host:port,.../path: elect a leader and keep the registry in ZooKeeper
    quorum: int | None = None  # required with --zk, as in Mesos (ZooKeeper's own majority is what counts)
    zk_session_timeout: float = 10.0
    agent_reregister_timeout: float = 600.0
    recovery_agent_removal_limit: float = 1.0  # fraction of recovered agents that may be marked unreachable
    agent_removal_rate_limit: str | None = None  # e.g. "1/10mins"


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


def abort_process(reason: str) -> None:
    """What a master does when it may no longer lead: say why, and exit at once (as Mesos aborts)."""
    logging.getLogger("meseta.master").critical("master stops: %s", reason)
    logging.shutdown()
    os._exit(1)


def master_info(ip: str, port: int, hostname: str | None) -> dict[str, Any]:
    """MasterInfo as Mesos writes it (the ip field is the IPv4 address as a network-order uint32)."""
    packed = struct.unpack("<I", ipaddress.IPv4Address(ip).packed)[0] if ":" not in ip else 0
    host = hostname or ip
    return {
        "id": str(uuid.uuid4()),
        "ip": packed,
        "port": port,
        "pid": f"master@{ip}:{port}",
        "hostname": host,
        "version": MESOS_COMPAT_VERSION,
        "address": {"hostname": host, "ip": ip, "port": port},
        "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}, {"type": "QUOTA_V2"}],
    }


def build_master(options: MasterOptions, storage: Storage | None = None, info: dict[str, Any] | None = None,
                 on_deposed: Callable[[str], None] | None = None) -> tuple[MasterActor, Any]:
    """A master over ``storage`` (default: the SQLite registry in the work dir), ready to lead."""
    storage = storage or SqliteStorage(options.work_dir / "registry.sqlite")
    machine = MasterMachine(
        info or master_info(options.ip, options.port, options.hostname),
        allocation_interval=options.allocation_interval,
        agent_ping_timeout=options.agent_ping_timeout,
        max_agent_ping_timeouts=options.max_agent_ping_timeouts,
        admitted_agents=storage.load_agents(),
        settings=storage.load_settings(),
        weights=parse_weights_flag(options.weights),
        role_sorter=options.role_sorter,
        framework_sorter=options.framework_sorter,
        offer_timeout=options.offer_timeout,
        agent_reregister_timeout=options.agent_reregister_timeout,
        recovery_agent_removal_limit=options.recovery_agent_removal_limit,
        agent_removal_rate_limit=parse_rate_limit(options.agent_removal_rate_limit),
        unreachable_agents=storage.load_unreachable(),
        gone_agents=storage.load_gone(),
    )
    actor = MasterActor(machine, storage, on_deposed=on_deposed or abort_process)
    flags = {k: str(v) for k, v in vars(options).items()}
    return actor, build_master_app(actor, flags)


def parse_weights_flag(text: str) -> dict[str, float]:
    """``--weights "eng=2,ads=0.5"``; raises ValueError naming the bad entry."""
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        role, sep, value = item.partition("=")
        problem = validate_role(role.strip()) if sep else "expected role=weight"
        if problem:
            raise ValueError(f"--weights entry '{item}': {problem}")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"--weights entry '{item}': weight is not a number") from None
        if not weight > 0 or weight == float("inf"):
            raise ValueError(f"--weights entry '{item}': weight must be positive")
        weights[role.strip()] = weight
    return weights


def parse_percentage(text: str) -> float:
    """``--recovery-agent-removal-limit``: "100%" or "0.5" -> a fraction in [0, 1]."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValueError(f"'{text}' is not a percentage like 50%") from None
    if not 0 <= value <= 1:
        raise ValueError(f"'{text}' must be between 0% and 100%")
    return value


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


def tune_gc() -> None:
    """A daemon holds hundreds of thousands of long-lived records (tasks, resources); CPython's
    default collector thresholds (700, 10, 10) then re-scan them often. Larger ones cut the time a
    re-registration storm of 10,000 agents takes by ~40 % (benchmarks/failover_reregistration.py)."""
    gc.set_threshold(100_000, 50, 100)


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def server(app: Any, ip: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(app, host=ip, port=port, log_level="warning", lifespan="off",
                            timeout_keep_alive=120, access_log=False)
    return uvicorn.Server(config)


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


