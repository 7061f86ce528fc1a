"""Assembly of ``meseta master``: options, MasterInfo, machine, actor and ASGI app over a registry.

    MasterOptions --build_master(storage)--> (MasterActor, ASGI app)
      storage: SQLite at <work-dir>/registry.sqlite, or ZooKeeper (master.election, --zk)
"""

from __future__ import annotations

import ipaddress
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meseta import MESOS_COMPAT_VERSION
from meseta.master.actor import MasterActor
from meseta.master.core import MasterConfig
from meseta.master.http.app import build_master_app
from meseta.master.machine import MasterMachine
from meseta.master.registry.storage import SqliteStorage, Storage
from meseta.protocol.flags import parse_rate_limit, parse_weights_flag
from meseta.runtime.serve import abort_process


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
    max_operator_event_stream_subscribers: int = 1000  # beyond it, the oldest operator subscriber is cut off


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
    config = MasterConfig(
        allocation_interval=options.allocation_interval,
        agent_ping_timeout=options.agent_ping_timeout,
        max_agent_ping_timeouts=options.max_agent_ping_timeouts,
        offer_timeout=options.offer_timeout,
        agent_reregister_timeout=options.agent_reregister_timeout,
        recovery_agent_removal_limit=options.recovery_agent_removal_limit,
        agent_removal_rate_limit=parse_rate_limit(options.agent_removal_rate_limit),
    )
    machine = MasterMachine(
        info or master_info(options.ip, options.port, options.hostname), config,
        admitted_agents=storage.load_agents(),
        unreachable_agents=storage.load_unreachable(),
        gone_agents=storage.load_gone(),
        settings=storage.load_settings(),
        weights=parse_weights_flag(options.weights),
        role_sorter=options.role_sorter,
        framework_sorter=options.framework_sorter,
    )
    actor = MasterActor(machine, storage, on_deposed=on_deposed or abort_process,
                        max_operator_subscribers=options.max_operator_event_stream_subscribers)
    flags = {k: str(v) for k, v in vars(options).items()}
    return actor, build_master_app(actor, flags)
