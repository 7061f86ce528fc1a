"""The agent's options: one dataclass, filled by ``meseta agent``'s flags (``meseta.cli.main``)
or by a test, read by the daemon, the actor and the machine alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from meseta.agent.gc import DEFAULT_DISK_HEADROOM, DEFAULT_DISK_WATCH_INTERVAL, DEFAULT_GC_DELAY
from meseta.protocol.container_info import DEFAULT_BRIDGE

DEFAULT_CACHE_BYTES = 2 * 1024**3  # Mesos --fetcher_cache_size: 2 GB


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
    docker_registry: Path | str | None = None  # a directory of tarballs, or a registry URL (http(s)://)
    docker_config: Path | None = None  # config.json with registry credentials (auths)
    docker_store_dir: Path | None = None  # default: <work-dir>/provisioner
    docker_insecure_registry: tuple[str, ...] = ()  # HOST[:PORT] pulled over plain HTTP
    image_gc: int | None = None  # bytes of image layers and blobs kept (least recently used go first)
    docker_bridge_network: str = DEFAULT_BRIDGE  # the CNI network a DOCKER container's BRIDGE network is
    network_cni_config_dir: Path | None = None  # CNI network configs: turns the network/cni isolator on
    network_cni_plugins_dir: Path | None = None  # default /usr/lib/cni when a config dir is given
    executor_reregistration_timeout: float = 2.0
    recover: str = "reconnect"  # or cleanup
    status_update_retry_min: float = 10.0
    status_update_retry_max: float = 600.0
