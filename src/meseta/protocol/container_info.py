"""A task's ``ContainerInfo`` read into what the agent's containerizer does with it (pure).

    ContainerInfo                                   ContainerSpec
      type MESOS  mesos.image.docker.name     ->      image, force_pull (= not image.cached)
      type DOCKER docker.image                ->      image, force_pull (= docker.force_pull_image)
      network_infos[] with a name (MESOS)     ->      networks: one CNI attachment each (eth0, eth1...)
      docker.network HOST | BRIDGE | USER | NONE ->   None (host) | (bridge network,) | named | ()
      docker.port_mappings / network_infos[].port_mappings -> each network's PortMappings
      volumes[] host_path | source HOST_PATH | SANDBOX_PATH -> VolumeMounts

There is no Docker daemon: a DOCKER container runs its image with the Meseta containerizer (Mesos's
unified containerizer), so what only a Docker daemon could honour (``parameters``, ``privileged``,
``volume_driver``) is refused by name, as is every field this containerizer does not implement:
nothing is silently ignored. The master runs the same reading at LAUNCH (TASK_ERROR naming the
field) and the agent again before it makes the container.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meseta.protocol.image_reference import ReferenceError, parse_reference

DEFAULT_BRIDGE = "mesos-bridge"  # Marathon's --mesos_bridge_name default; the agent's --docker-bridge-network
PROTOCOLS = ("tcp", "udp")
SUPPORTED_KEYS = frozenset({"type", "mesos", "docker", "network_infos", "volumes"})
DOCKER_KEYS = frozenset({"image", "network", "port_mappings", "force_pull_image"})
DOCKER_REFUSED = {"parameters": "Docker run parameters need a Docker daemon",
                  "privileged": "privileged containers need a Docker daemon",
                  "volume_driver": "volume drivers need a Docker daemon"}
NETWORK_KEYS = frozenset({"name", "port_mappings", "labels", "ip_addresses", "groups"})


class ContainerInfoError(ValueError):
    """The ContainerInfo asks for what cannot be run here; the message names the field."""


@dataclass(frozen=True, slots=True)
class PortMapping:
    host_port: int
    container_port: int
    protocol: str = "tcp"

    def to_json(self) -> dict[str, Any]:
        return {"host_port": self.host_port, "container_port": self.container_port, "protocol": self.protocol}


@dataclass(frozen=True, slots=True)
class NetworkRequest:
    name: str
    port_mappings: tuple[PortMapping, ...] = ()
    labels: dict[str, str] | None = None  # the NetworkInfo's labels (Mesos Labels, flattened), reported back


@dataclass(frozen=True, slots=True)
class VolumeMount:
    container_path: str  # absolute: in the image's root filesystem; relative: in the sandbox
    source: str  # HOST_PATH: an absolute host path; SANDBOX_PATH: a path relative to the sandbox
    kind: str  # "HOST_PATH" | "SANDBOX_PATH"
    read_only: bool


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    image: str | None = None
    force_pull: bool = False
    networks: tuple[NetworkRequest, ...] | None = None  # None: the host's network; (): loopback only
    volumes: tuple[VolumeMount, ...] = ()

    @property
    def own_network(self) -> bool:
        return self.networks is not None

    def host_ports(self) -> list[int]:
        return [m.host_port for n in self.networks or () for m in n.port_mappings]


HOST = ContainerSpec()


def container_spec(container: Any, *, holds_port: Callable[[int], bool] | None = None,
                   bridge_network: str = DEFAULT_BRIDGE) -> ContainerSpec:
    """Read ``container`` (a ContainerInfo as JSON, or None). ``holds_port`` tells whether a host
    port is among the task's ``ports`` resources: every mapping's host port must be."""
    if container is None or container == {}:
        return HOST
    if not isinstance(container, Mapping):
        raise ContainerInfoError("container: must be an object")
    for key, value in container.items():
        if key not in SUPPORTED_KEYS and value not in (None, "", [], {}):
            raise ContainerInfoError(f"container.{key}: not supported by the Meseta containerizer")
    kind = container.get("type", "MESOS")
    image: str | None
    if kind == "DOCKER":
        image, force, networks = _docker(container, bridge_network)
    elif kind == "MESOS":
        if container.get("docker") not in (None, {}):
            raise ContainerInfoError("container.docker: only a DOCKER container takes DockerInfo (a MESOS one names "
                                     "its image in mesos.image)")
        image, force = _mesos_image(container.get("mesos"))
        networks = _named_networks(container.get("network_infos"), None)
    else:
        raise ContainerInfoError(f"container.type {kind}: only MESOS and DOCKER containers are supported")
    _check_host_ports(networks, holds_port)
    if image is not None:
        _check_image_name(image, "container.docker.image" if kind == "DOCKER" else "container.mesos.image.docker.name")
    return ContainerSpec(image=image, force_pull=force, networks=networks,
                         volumes=_volumes(container.get("volumes"), has_image=image is not None))


# ---------------------------------------------------------------------------------------------- images
def _check_image_name(name: str, where: str) -> None:
    """A reference by Docker's rules, or the absolute path of a tarball on the agent."""
    if name.startswith("/"):
        _clean_path(name, where)
        return
    try:
        parse_reference(name, "default.registry")
    except ReferenceError as exc:
        raise ContainerInfoError(f"{where}: {exc}") from None


def _mesos_image(mesos: Any) -> tuple[str | None, bool]:
    if mesos is None:
        return None, False
    if not isinstance(mesos, Mapping):
        raise ContainerInfoError("container.mesos: must be an object")
    image = mesos.get("image")
    if not image:
        return None, False
    if not isinstance(image, Mapping):
        raise ContainerInfoError("container.mesos.image: must be an object")
    if image.get("type", "DOCKER") != "DOCKER":
        raise ContainerInfoError(f"container.mesos.image.type {image.get('type')}: only DOCKER images are supported")
    name = (image.get("docker") or {}).get("name") if isinstance(image.get("docker"), Mapping) else None
    if not isinstance(name, str) or not name:
        raise ContainerInfoError("container.mesos.image.docker.name: a DOCKER image needs a name")
    cached = image.get("cached", True)
    if not isinstance(cached, bool):
        raise ContainerInfoError("container.mesos.image.cached: must be a boolean")
    return name, not cached


def _docker(container: Mapping[str, Any], bridge: str) -> tuple[str, bool, tuple[NetworkRequest, ...] | None]:
    docker = container.get("docker")
    if not isinstance(docker, Mapping):
        raise ContainerInfoError("container.docker: a DOCKER container needs docker.image")
    for key, why in DOCKER_REFUSED.items():
        if docker.get(key):
            raise ContainerInfoError(f"container.docker.{key}: not supported ({why}; Meseta runs DOCKER "
                                     "containers with its own containerizer)")
    for key, value in docker.items():
        if key not in DOCKER_KEYS and key not in DOCKER_REFUSED and value not in (None, "", [], {}):
            raise ContainerInfoError(f"container.docker.{key}: not supported by the Meseta containerizer")
    name = docker.get("image")
    if not isinstance(name, str) or not name:
        raise ContainerInfoError("container.docker.image: a DOCKER container needs an image")
    force = docker.get("force_pull_image", False)
    if not isinstance(force, bool):
        raise ContainerInfoError("container.docker.force_pull_image: must be a boolean")
    network = docker.get("network", "HOST")
    mappings = _port_mappings(docker.get("port_mappings"), "container.docker.port_mappings")
    named = _named_networks(container.get("network_infos"), mappings)
    if network == "HOST" or network == "NONE":
        if mappings:
            raise ContainerInfoError(f"container.docker.port_mappings: a {network} network maps no ports")
        if named:
            raise ContainerInfoError(f"container.network_infos: a {network} network joins no named network")
        return name, force, None if network == "HOST" else ()
    if network == "BRIDGE":
        if named:
            raise ContainerInfoError("container.network_infos: a BRIDGE container joins the bridge network only")
        return name, force, (NetworkRequest(bridge, mappings),)
    if network == "USER":
        if not named or len(named) != 1:
            raise ContainerInfoError("container.network_infos: a USER network needs exactly one named network")
        return name, force, named
    raise ContainerInfoError(f"container.docker.network {network}: must be HOST, BRIDGE, USER or NONE")


# ---------------------------------------------------------------------------------------------- networks
def _named_networks(infos: Any, docker_mappings: tuple[PortMapping, ...] | None) -> tuple[NetworkRequest, ...] | None:
    """The named networks of ``network_infos``; None when there is none (the host's network).
    Unnamed entries are IP requests on the host network (Mesos ignores them), unless they map ports."""
    if infos in (None, []):
        return None
    if not isinstance(infos, list):
        raise ContainerInfoError("container.network_infos: must be a list")
    out: list[NetworkRequest] = []
    for index, info in enumerate(infos):
        where = f"container.network_infos[{index}]"
        if not isinstance(info, Mapping):
            raise ContainerInfoError(f"{where}: must be an object")
        for key, value in info.items():
            if key not in NETWORK_KEYS and value not in (None, "", [], {}):
                raise ContainerInfoError(f"{where}.{key}: not supported")
        if info.get("groups"):
            raise ContainerInfoError(f"{where}.groups: network groups are not supported")
        mappings = _port_mappings(info.get("port_mappings"), f"{where}.port_mappings")
        name = info.get("name")
        if name in (None, ""):
            if mappings:
                raise ContainerInfoError(f"{where}.name: port mappings need a named network")
            continue
        if not isinstance(name, str) or len(name) > 128 or not name.isprintable():
            raise ContainerInfoError(f"{where}.name: must be a printable string of at most 128 characters")
        if any(n.name == name for n in out):
            raise ContainerInfoError(f"{where}.name: joins network {name!r} twice")
        out.append(NetworkRequest(name, mappings or (docker_mappings or ()), _labels(info.get("labels"), where)))
    return tuple(out) or None


def _labels(raw: Any, where: str) -> dict[str, str] | None:
    """Mesos ``Labels`` ({"labels": [{"key", "value"}]}) as a flat map of strings."""
    if raw in (None, {}):
        return None
    items = raw.get("labels") if isinstance(raw, Mapping) else None
    if not isinstance(items, list) or len(items) > 256:
        raise ContainerInfoError(f"{where}.labels: must be {{\"labels\": [{{\"key\", \"value\"}}]}}")
    out: dict[str, str] = {}
    for index, item in enumerate(items):
        key = item.get("key") if isinstance(item, Mapping) else None
        value = item.get("value", "") if isinstance(item, Mapping) else None
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise ContainerInfoError(f"{where}.labels.labels[{index}]: needs a string key and a string value")
        out[key] = value
    return out or None


def _port_mappings(raw: Any, where: str) -> tuple[PortMapping, ...]:
    if raw in (None, []):
        return ()
    if not isinstance(raw, list) or len(raw) > 1024:
        raise ContainerInfoError(f"{where}: must be a list of at most 1024 mappings")
    out: list[PortMapping] = []
    for index, item in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise ContainerInfoError(f"{at}: must be an object")
        host, inner = _port(item.get("host_port"), f"{at}.host_port"), _port(item.get("container_port"),
                                                                              f"{at}.container_port")
        protocol = item.get("protocol", "tcp")
        if not isinstance(protocol, str) or protocol.lower() not in PROTOCOLS:
            raise ContainerInfoError(f"{at}.protocol: must be tcp or udp")
        mapping = PortMapping(host, inner, protocol.lower())
        if any((m.host_port, m.protocol) == (mapping.host_port, mapping.protocol) for m in out):
            raise ContainerInfoError(f"{at}.host_port: {mapping.host_port}/{mapping.protocol} is mapped twice")
        out.append(mapping)
    return tuple(out)


def _port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ContainerInfoError(f"{where}: must be a port number from 1 to 65535")
    return value


def _check_host_ports(networks: tuple[NetworkRequest, ...] | None, holds_port: Callable[[int], bool] | None) -> None:
    if holds_port is None or not networks:
        return
    seen: set[tuple[int, str]] = set()
    for network in networks:
        for mapping in network.port_mappings:
            if not holds_port(mapping.host_port):
                raise ContainerInfoError(f"port mapping of network {network.name!r}: host_port {mapping.host_port} "
                                         "is not among the task's ports resources")
            if (mapping.host_port, mapping.protocol) in seen:
                raise ContainerInfoError(f"port mapping of network {network.name!r}: host_port "
                                         f"{mapping.host_port}/{mapping.protocol} is mapped twice")
            seen.add((mapping.host_port, mapping.protocol))


# ---------------------------------------------------------------------------------------------- volumes
def _volumes(raw: Any, *, has_image: bool) -> tuple[VolumeMount, ...]:
    if raw in (None, []):
        return ()
    if not isinstance(raw, list) or len(raw) > 256:
        raise ContainerInfoError("container.volumes: must be a list of at most 256 volumes")
    return tuple(_volume(item, f"container.volumes[{i}]", has_image) for i, item in enumerate(raw))


def _volume(item: Any, where: str, has_image: bool) -> VolumeMount:
    if not isinstance(item, Mapping):
        raise ContainerInfoError(f"{where}: must be an object")
    mode = item.get("mode")
    if mode not in ("RW", "RO"):
        raise ContainerInfoError(f"{where}.mode: must be RW or RO")
    path = _clean_path(item.get("container_path"), f"{where}.container_path")
    if all(part in ("", ".") for part in path.split("/")):  # "/", "//", ".", "./.": all of the root or sandbox
        raise ContainerInfoError(f"{where}.container_path {path}: a volume cannot cover the whole "
                                 f"{'root filesystem' if path.startswith('/') else 'sandbox'}")
    if path.startswith("/") and not has_image:
        raise ContainerInfoError(f"{where}.container_path {path}: an absolute path needs a container image "
                                 "(without one, give a path relative to the sandbox)")
    if item.get("image"):
        raise ContainerInfoError(f"{where}.image: image volumes are not supported")
    source = item.get("source")
    host_path = item.get("host_path")
    if source not in (None, {}):
        if host_path not in (None, ""):
            raise ContainerInfoError(f"{where}: give host_path or source, not both")
        return _sourced(source, where, path, mode == "RO")
    if not isinstance(host_path, str) or not host_path:
        raise ContainerInfoError(f"{where}.host_path: a volume needs host_path or source")
    if host_path.startswith("/"):
        return VolumeMount(path, _clean_path(host_path, f"{where}.host_path"), "HOST_PATH", mode == "RO")
    return VolumeMount(path, _relative(host_path, f"{where}.host_path"), "SANDBOX_PATH", mode == "RO")


def _sourced(source: Any, where: str, path: str, read_only: bool) -> VolumeMount:
    if not isinstance(source, Mapping):
        raise ContainerInfoError(f"{where}.source: must be an object")
    kind = source.get("type")
    if kind == "HOST_PATH":
        host = (source.get("host_path") or {}).get("path") if isinstance(source.get("host_path"), Mapping) else None
        host = _clean_path(host, f"{where}.source.host_path.path")
        if not host.startswith("/"):
            raise ContainerInfoError(f"{where}.source.host_path.path: must be absolute")
        return VolumeMount(path, host, "HOST_PATH", read_only)
    if kind == "SANDBOX_PATH":
        sandbox = source.get("sandbox_path")
        if not isinstance(sandbox, Mapping):
            raise ContainerInfoError(f"{where}.source.sandbox_path: must be an object")
        if sandbox.get("type", "SELF") != "SELF":
            raise ContainerInfoError(f"{where}.source.sandbox_path.type {sandbox.get('type')}: only SELF is "
                                     "supported (there are no nested containers)")
        return VolumeMount(path, _relative(sandbox.get("path"), f"{where}.source.sandbox_path.path"),
                           "SANDBOX_PATH", read_only)
    raise ContainerInfoError(f"{where}.source.type {kind}: only HOST_PATH and SANDBOX_PATH volumes are supported")


def _clean_path(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 4096 or "\0" in value or not value.isprintable():
        raise ContainerInfoError(f"{where}: must be a non-empty printable path")
    if ".." in value.split("/"):
        raise ContainerInfoError(f"{where}: must not contain '..'")
    return value


def _relative(value: Any, where: str) -> str:
    path = _clean_path(value, where)
    if path.startswith("/"):
        raise ContainerInfoError(f"{where}: must be relative to the sandbox")
    return path
