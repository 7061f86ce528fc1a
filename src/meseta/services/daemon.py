"""Assembly of ``meseta services``: store, machine, framework shell and REST API on one loop.

    ServicesOptions --build_services--> (ServicesActor, ASGI app)
      store:   SQLite at <work-dir>/services.sqlite, or ZooKeeper under --zk's path (fenced)
      master:  HOST:PORT or zk://.../path (the framework follows the leading master)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meseta.runtime.kv_store import KvStore, SqliteKvStore
from meseta.services import wire
from meseta.services.launch.offer_handling import IDLE_DECLINE_SECONDS
from meseta.services.launch.task_builder import MESOS_BRIDGE_NAME
from meseta.services.machine import MIN_REVIVE_SECONDS, ServicesMachine
from meseta.services.shell.actor import ONE_WEEK, ServicesActor, new_uuid
from meseta.services.shell.api import MARATHON_VERSION, build_services_app


@dataclass
class ServicesOptions:
    master: str = "127.0.0.1:5050"
    ip: str = "127.0.0.1"
    port: int = 8080
    work_dir: Path = Path("/tmp/meseta/services")
    framework_name: str = "marathon"
    role: str = "*"
    zk: str | None = None  # zk://.../services: HA, state in ZooKeeper
    zk_session_timeout: float = 10.0
    deployment_stall_timeout: float | None = None
    max_instances_per_offer: int = 5
    min_revive_offers_interval: float = MIN_REVIVE_SECONDS  # seconds (Marathon's flag is in ms)
    mesos_bridge_name: str = MESOS_BRIDGE_NAME  # the CNI network MESOS containers in bridge mode join


def build_services(options: ServicesOptions, store: KvStore | None = None) -> tuple[ServicesActor, Any]:
    store = store or SqliteKvStore(options.work_dir / "services.sqlite")
    machine = ServicesMachine(new_uuid=new_uuid, framework_roles=(options.role,),
                              max_per_offer=options.max_instances_per_offer,
                              stall_timeout=options.deployment_stall_timeout,
                              min_revive_interval=options.min_revive_offers_interval,
                              bridge_name=options.mesos_bridge_name)
    actor = ServicesActor(machine, store, options.master, name=options.framework_name, role=options.role,
                          hostname=options.ip)
    leader = f"{options.ip}:{options.port}"

    def info() -> dict[str, Any]:
        return wire.info_json(
            version=MARATHON_VERSION, leader=leader, elected=True, framework_id=machine.framework_id,
            marathon_config={"master": options.master, "framework_name": options.framework_name,
                             "hostname": options.ip, "mesos_role": options.role, "checkpoint": True,
                             "failover_timeout": int(ONE_WEEK), "ha": options.zk is not None,
                             "max_instances_per_offer": options.max_instances_per_offer,
                             "min_revive_offers_interval": int(options.min_revive_offers_interval * 1000),
                             "decline_offer_duration": int(IDLE_DECLINE_SECONDS * 1000),
                             "local_port_min": 10000, "local_port_max": 20000,
                             "mesos_bridge_name": options.mesos_bridge_name},
            zookeeper_config={"zk": options.zk} if options.zk else {},
            http_config={"http_port": options.port})

    return actor, build_services_app(actor, info)
