"""Networks, containers, volumes and ports of an app definition, and service ports; pure.

Where an app's ports live depends on its network mode (the first network decides)::

    networks [{mode: host}]              -> portDefinitions [{port, protocol, name?, labels?}]
       (default; docker.network HOST)       ports [p, ...] (deprecated) become portDefinitions
                                            neither given -> one {port: 0, name: "default"}; [] = none
    networks [{mode: container/bridge}]  -> container.portMappings [{containerPort, hostPort,
       (docker.network BRIDGE)              servicePort, protocol, name?, labels?, networkNames?}]
    networks [{mode: container, name}]      missing hostPort: 0 (dynamic) in bridge mode, absent
       (docker.network USER)                (not exposed on the host) in container mode

Legacy forms are migrated as Marathon does: ``docker.network`` HOST/BRIDGE/USER to networks, ``ipAddress
{networkName, labels, discovery.ports}`` to ``networks [{mode: container, name}]`` and port mappings
(containerPort = number, no hostPort). Meseta has no ``--default_network_name``: a container network names
itself. What the agent cannot run is refused by name: Docker parameters, privileged, pullConfig, appc,
secret/external volumes, and persistent volumes (no RESERVE/CREATE of volumes for services).

A port or servicePort of 0 asks for a service port: :func:`assign_service_ports` picks the
lowest free one in ``local_port_min..local_port_max``; explicit ones must be cluster-unique
(:func:`changed_service_ports`). Legacy ``docker.portMappings`` move to the container.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meseta.services.model import App
from meseta.services.spec.app_fields import MISSING, Problem, Reader, regex_problem

HOST, BRIDGE, CONTAINER = "host", "container/bridge", "container"
NETWORK_MODES = (HOST, BRIDGE, CONTAINER)
LEGACY_DOCKER_NETWORKS = {"HOST": HOST, "BRIDGE": BRIDGE, "USER": CONTAINER}
PROTOCOLS = ("tcp", "udp", "udp,tcp")  # the marathon client refuses any other spelling
CONTAINER_TYPES = ("DOCKER", "MESOS")
VOLUME_MODES = ("RO", "RW")
PERSISTENT_TYPES = ("root", "path", "mount")
PORT_NAME = re.compile(r"[a-z0-9-]+")
MAX_PORT = 65535
# The keys each part reads (the rest is refused, not ignored); appc, secret and external are read to refuse them.
CONTAINER_KEYS = frozenset({"type", "docker", "volumes", "portMappings", "appc"})
DOCKER_KEYS = frozenset({"image", "forcePullImage", "privileged", "parameters", "pullConfig", "network",
                         "portMappings"})
VOLUME_KEYS = frozenset({"containerPath", "hostPath", "mode", "persistent", "secret", "external"})
PORT_DEFINITION_KEYS = frozenset({"port", "protocol", "name", "labels"})
PORT_MAPPING_KEYS = frozenset({"containerPort", "hostPort", "servicePort", "protocol", "name", "labels",
                               "networkNames"})
NETWORK_KEYS = frozenset({"mode", "name", "labels"})
IP_ADDRESS_KEYS = frozenset({"networkName", "discovery", "groups", "labels"})  # legacy (pre-1.5) container mode
DISCOVERY_PORT_KEYS = frozenset({"number", "name", "protocol", "labels"})
DEFAULT_PORT_DEFINITION = {"port": 0, "protocol": "tcp", "name": "default"}


class ServicePortsExhausted(ValueError):
    """No free service port is left in the configured range."""


@dataclass(slots=True)
class Networking:
    networks: list[dict[str, Any]]
    container: dict[str, Any] | None
    port_definitions: list[dict[str, Any]]
    require_ports: bool
    resident: bool  # has persistent volumes


def network_mode(networks: list[dict[str, Any]]) -> str:
    return str(networks[0]["mode"]) if networks else HOST


def read_networking(app: Reader, secrets: Mapping[str, Any]) -> Networking:
    """Everything about where the app's tasks listen, normalised to the canonical layout above."""
    container = app.obj("container")
    docker = container.obj("docker") if container else None
    docker_network = docker.string("network") if docker else None
    legacy = app.obj("ipAddress")
    discovered: list[dict[str, Any]] | None = None
    if legacy is not None:
        networks, discovered = _read_ip_address(app, legacy, docker_network)
    else:
        networks = _read_networks(app, docker_network)
    mode = network_mode(networks)
    normalised = _read_container(container, mode, networks, secrets, discovered) if container else None
    if normalised is None and mode != HOST:
        normalised = {"type": "MESOS", "volumes": [], "portMappings": discovered or _default_mappings(mode)}
    if (normalised or {}).get("type") == "DOCKER" and len(networks) > 1:
        app.problem("networks", "Docker containers can join only one container network")
    definitions = _read_port_definitions(app)
    if mode != HOST and definitions:
        app.problem(None, "portDefinitions are only allowed with host-networking")
    if mode == HOST and definitions is None:
        definitions = [dict(DEFAULT_PORT_DEFINITION)]
    resident = any("persistent" in volume for volume in (normalised or {}).get("volumes", []))
    return Networking(networks, normalised, definitions if mode == HOST and definitions else [],
                      app.boolean("requirePorts", False) and mode == HOST, resident)


def _read_networks(app: Reader, docker_network: str | None) -> list[dict[str, Any]]:
    given = app.objects("networks")
    if given and docker_network is not None:
        app.problem(None, "must not specify both container.docker.network and networks")
    if not given:
        if docker_network is None or docker_network not in LEGACY_DOCKER_NETWORKS:
            if docker_network is not None:
                app.problems.append(Problem(app.at("container/docker/network"),
                                            "must be one of " + ", ".join(LEGACY_DOCKER_NETWORKS)))
            return [{"mode": HOST}]
        if docker_network == "USER":  # Marathon names it after --default_network_name, which Meseta has not
            app.problems.append(Problem(app.at("container/docker/network"),
                                        "USER needs ipAddress.networkName or networks [{mode: container, name}]"))
        return [{"mode": LEGACY_DOCKER_NETWORKS[docker_network]}]
    networks = []
    for network in given:
        network.only(NETWORK_KEYS)
        mode = network.choice("mode", CONTAINER, NETWORK_MODES)
        entry: dict[str, Any] = {"mode": mode}
        name = network.string("name", non_empty=True)
        if name is not None and mode != CONTAINER:
            network.problem("name", f"must be empty for {mode} networks")
        elif name is None and mode == CONTAINER and not network.has("name"):
            network.problem("name", "must be given for container networks (Meseta has no --default_network_name)")
        elif name is not None:
            entry["name"] = name
        labels = network.string_map("labels")
        if labels:
            entry["labels"] = labels
        networks.append(entry)
    if len(networks) > 1 and any(n["mode"] != CONTAINER for n in networks):
        app.problem("networks", "host and container/bridge networks cannot be combined with other networks")
    names = [n["name"] for n in networks if "name" in n]
    if len(set(names)) != len(names):
        app.problem("networks", "network names must be unique")
    return networks


def _read_ip_address(app: Reader, legacy: Reader,
                     docker_network: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """Legacy ``ipAddress`` as Marathon migrates it: ``networks [{mode: container, name:
    networkName, labels}]``, and its ``discovery.ports`` as port mappings without host ports
    (None when it has none: the container's own portMappings, or the default, apply)."""
    legacy.only(IP_ADDRESS_KEYS)
    if app.has("networks"):
        app.problem(None, "must not specify both ipAddress and networks")
    if docker_network not in (None, "USER"):
        app.problems.append(Problem(app.at("container/docker/network"), "must be USER (or absent) with ipAddress"))
    if legacy.strings("groups"):
        legacy.problem("groups", "network security groups are not supported")
    name = legacy.string("networkName", non_empty=True)
    if name is None and not legacy.has("networkName"):
        legacy.problem("networkName", "must be given (Meseta has no --default_network_name)")
    network: dict[str, Any] = {"mode": CONTAINER, "name": name or ""}
    labels = legacy.string_map("labels")
    if labels:
        network["labels"] = labels
    discovery = legacy.obj("discovery")
    if discovery is None:
        return [network], None
    discovery.only(frozenset({"ports"}))
    mappings = []
    for port in discovery.objects("ports") or []:
        port.only(DISCOVERY_PORT_KEYS)
        if not port.has("number"):
            port.problem("number", MISSING)
        entry: dict[str, Any] = {"containerPort": port.integer("number", 0, low=0, high=MAX_PORT), "servicePort": 0,
                                 "protocol": read_protocol(port)}
        _read_port_name(port, entry)
        mappings.append(entry)
    _check_unique_names(discovery, "ports", mappings)
    return [network], mappings or None


def _read_container(container: Reader, mode: str, networks: list[dict[str, Any]],
                    secrets: Mapping[str, Any], discovered: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    container.only(CONTAINER_KEYS)
    kind = container.choice("type", "DOCKER", CONTAINER_TYPES)
    result: dict[str, Any] = {"type": kind}
    if container.has("appc"):
        container.problem("appc", "appc images are not supported")
    docker = container.obj("docker")
    if docker is not None:
        result["docker"] = _read_docker(docker, kind, secrets)
    elif kind == "DOCKER":
        container.problem("docker", "must be defined for container type DOCKER")
    result["volumes"] = [v for v in (_read_volume(v) for v in container.objects("volumes") or []) if v]
    legacy = docker.objects("portMappings") if docker else None
    mappings = container.objects("portMappings")
    if legacy and mappings:
        container.problem("portMappings", "cannot specify both portMappings and docker.portMappings")
    if kind == "MESOS" and legacy:
        container.problem("docker/portMappings", "must be empty")
    chosen = mappings if mappings is not None else legacy
    if mode == HOST:
        if chosen:
            container.problem("portMappings", "portMappings are not allowed with host-networking")
        return result
    if chosen and discovered:
        container.problem("portMappings", "cannot specify both portMappings and ipAddress.discovery.ports")
    if chosen is None:
        result["portMappings"] = discovered or _default_mappings(mode)
    else:
        result["portMappings"] = _read_port_mappings(container, chosen, mode, networks)
    return result


def _read_docker(docker: Reader, kind: str, secrets: Mapping[str, Any]) -> dict[str, Any]:
    docker.only(DOCKER_KEYS)
    image = docker.string("image", "", required=True, non_empty=True) or ""
    result: dict[str, Any] = {"image": image, "forcePullImage": docker.boolean("forcePullImage", False)}
    privileged = docker.boolean("privileged", False)
    parameters = [p for p in docker.objects("parameters") or []
                  if p.string("key", required=True) is not None and p.string("value", required=True) is not None]
    pull = docker.obj("pullConfig")
    if kind == "MESOS":
        for key, bad in (("network", docker.has("network")), ("parameters", bool(parameters)),
                         ("privileged", privileged)):
            if bad:
                docker.problem(key, "is not supported by the Mesos containerizer")
    # What the agent cannot honour is refused here, by name, rather than dropped on the way
    if kind == "DOCKER":
        result.update(privileged=False, parameters=[])  # as Marathon shows them; anything else is refused
    if kind == "DOCKER" and parameters:
        docker.problem("parameters", "Docker parameters are not supported: Meseta runs Docker images with the "
                                     "Mesos containerizer, which has no docker run options")
    if kind == "DOCKER" and privileged:
        docker.problem("privileged", "privileged containers are not supported")
    if kind == "DOCKER" and pull is not None:
        docker.problem("pullConfig", "pullConfig is not supported with Docker containerizer")
    elif pull is not None:
        pull.string("secret", required=True)
        docker.problem("pullConfig", "pullConfig (registry credentials from a secret) is not supported: the "
                                     "agent pulls without credentials")
    return result


def _read_volume(volume: Reader) -> dict[str, Any] | None:
    volume.only(VOLUME_KEYS)
    for unsupported in ("secret", "external"):
        if volume.has(unsupported):
            volume.problem(unsupported, f"{unsupported} volumes are not supported")
            return None
    path = volume.string("containerPath", required=True, non_empty=True)
    mode = volume.choice("mode", "RW", VOLUME_MODES)
    persistent = volume.obj("persistent")
    if persistent is None:
        host_path = volume.string("hostPath", required=True, non_empty=True)
        return {"containerPath": path, "hostPath": host_path, "mode": mode} if path and host_path else None
    if path is not None and "/" in path:
        volume.problem("containerPath", 'value must not contain "/"')
    if mode != "RW":
        volume.problem("mode", "persistent volumes must be RW")
    _read_persistent(persistent)  # its own problems first, then the refusal
    volume.problem("persistent", "persistent volumes (resident apps) are not supported: Meseta does not "
                                 "reserve and create volumes (RESERVE/CREATE) for services")
    return None


def _read_persistent(persistent: Reader) -> dict[str, Any]:
    kind = persistent.choice("type", "root", PERSISTENT_TYPES)
    if not persistent.has("size"):
        persistent.problem("size", MISSING)
    info: dict[str, Any] = {"type": kind, "size": persistent.integer("size", 0, low=1), "constraints": []}
    max_size = persistent.optional_integer("maxSize", low=1)
    if max_size is not None and kind != "mount":
        persistent.problem("maxSize", "Only mount volumes can have maxSize")
    elif max_size is not None and max_size <= info["size"]:
        persistent.problem("maxSize", "Max size must be larger than size")
    elif max_size is not None:
        info["maxSize"] = max_size
    profile = persistent.string("profileName", non_empty=True)
    if profile is not None:
        info["profileName"] = profile
    for index, item in enumerate(persistent.array("constraints") or []):
        path = f"{persistent.at('constraints')}({index})"
        if kind == "root":
            persistent.problems.append(Problem(path, "Constraints on root volumes are not supported"))
        elif (not isinstance(item, list) or len(item) != 3 or not all(isinstance(p, str) for p in item)
              or item[0] != "path" or item[1] not in ("LIKE", "UNLIKE")):
            persistent.problems.append(Problem(path, "must be [\"path\", \"LIKE\" or \"UNLIKE\", \"<regex>\"]"))
        elif problem := regex_problem(item[2]):
            persistent.problems.append(Problem(path, problem))
        else:
            info["constraints"].append(list(item))
    return info


def read_protocol(reader: Reader) -> str:
    value = reader.string("protocol", "tcp")
    if value == "tcp,udp":
        return "udp,tcp"
    if value not in PROTOCOLS:
        reader.problem("protocol", "must be one of " + ", ".join(PROTOCOLS))
        return "tcp"
    return value


def _read_port_name(reader: Reader, entry: dict[str, Any]) -> None:
    name = reader.string("name")
    if name is not None and PORT_NAME.fullmatch(name) is None:
        reader.problem("name", f"must fully match regular expression '^{PORT_NAME.pattern}$'")
    elif name is not None:
        entry["name"] = name
    labels = reader.string_map("labels")
    if labels:
        entry["labels"] = labels


def _default_mappings(mode: str) -> list[dict[str, Any]]:
    mapping: dict[str, Any] = {"containerPort": 0, "servicePort": 0, "protocol": "tcp", "name": "default"}
    if mode == BRIDGE:
        mapping["hostPort"] = 0
    return [mapping]


def _read_port_mappings(container: Reader, items: list[Reader], mode: str,
                        networks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = [n["name"] for n in networks if "name" in n]
    result = []
    for item in items:
        item.only(PORT_MAPPING_KEYS)
        entry: dict[str, Any] = {"containerPort": item.integer("containerPort", 0, low=0, high=MAX_PORT)}
        host_port = item.optional_integer("hostPort", low=0, high=MAX_PORT)
        if host_port is not None or mode == BRIDGE:
            entry["hostPort"] = host_port or 0
        entry["servicePort"] = item.integer("servicePort", 0, low=0, high=MAX_PORT)
        entry["protocol"] = read_protocol(item)
        _read_port_name(item, entry)
        network_names = item.strings("networkNames") or []
        if any(name not in names for name in network_names):
            item.problem("networkNames", "must name container networks of the app")
        elif network_names:
            entry["networkNames"] = network_names
        if host_port is not None and len(names) > 1 and len(network_names) != 1:
            item.problem(None, "networkNames must be a single item list when hostPort is specified and more than "
                               "1 container network is defined")
        result.append(entry)
    _check_unique_names(container, "portMappings", result)
    return result


def _read_port_definitions(app: Reader) -> list[dict[str, Any]] | None:
    """Host-mode ports from ``portDefinitions`` or deprecated ``ports``; None when neither is given."""
    raw_ports = app.array("ports")
    ports = []
    for index, port in enumerate(raw_ports or []):
        holder = Reader({"port": port}, f"{app.at('ports')}({index})", app.problems)
        ports.append(holder.integer("port", 0, low=0, high=MAX_PORT))
    explicit = [p for p in ports if p]
    if len(set(explicit)) != len(explicit):
        app.problem("ports", "ports must be unique")
    items = app.objects("portDefinitions")
    if items is None:
        return None if raw_ports is None else [{"port": p, "protocol": "tcp"} for p in ports]
    definitions = []
    for item in items:
        item.only(PORT_DEFINITION_KEYS)
        if not item.has("port"):
            item.problem("port", MISSING)
        entry: dict[str, Any] = {"port": item.integer("port", 0, low=0, high=MAX_PORT), "protocol": read_protocol(item)}
        _read_port_name(item, entry)
        definitions.append(entry)
    if ports and definitions and ports != [d["port"] for d in definitions]:
        app.problem(None, "cannot specify both ports and port definitions")
    explicit = [d["port"] for d in definitions if d["port"]]
    if len(set(explicit)) != len(explicit):
        app.problem("portDefinitions", "Ports must be unique.")
    _check_unique_names(app, "portDefinitions", definitions)
    return definitions


def _check_unique_names(reader: Reader, key: str, entries: list[dict[str, Any]]) -> None:
    names = [e["name"] for e in entries if "name" in e]
    if len(set(names)) != len(names):
        reader.problem(key, "Port names must be unique.")


# ----------------------------------------------------------------------------- views of a normalised app


def port_entries(app: App) -> tuple[str, list[dict[str, Any]]]:
    """(key holding the service port, the port entries): portDefinitions or container.portMappings."""
    mappings = (app.get("container") or {}).get("portMappings")
    if network_mode(app.get("networks") or []) != HOST and mappings is not None:
        return "servicePort", list(mappings)
    return "port", list(app.get("portDefinitions") or [])


def port_names(app: App) -> list[str]:
    return [str(e["name"]) for e in port_entries(app)[1] if "name" in e]


def service_ports(app: App) -> list[int]:
    key, entries = port_entries(app)
    return [int(e.get(key, 0)) for e in entries]


def _port_path(app: App, index: int) -> str:
    key, _ = port_entries(app)
    return f"/portDefinitions({index})/port" if key == "port" else f"/container/portMappings({index})/servicePort"


def service_port_owners(apps: Iterable[App]) -> dict[int, str]:
    """Service port -> the app holding it (the first app to hold one keeps it)."""
    owners: dict[int, str] = {}
    for app in apps:
        for port in service_ports(app):
            if port:
                owners.setdefault(port, app["id"])
    return owners


def changed_service_ports(owners: Mapping[int, str], current: Mapping[str, App], changed: Mapping[str, App],
                          removed: Iterable[str]) -> tuple[dict[int, str], list[Problem]]:
    """``owners`` (of the apps in ``current``) after the ``changed`` apps replace theirs and the
    ``removed`` apps free theirs, and the problems: a changed app asking for a port another app
    holds (apps left as they are keep theirs). Costs the change, not the whole root."""
    out = dict(owners)
    for app_id in [*changed, *removed]:
        if app_id in current:
            for port in service_ports(current[app_id]):
                if out.get(port) == app_id:
                    del out[port]
    problems = []
    for app_id, app in changed.items():
        for index, port in enumerate(service_ports(app)):
            if not port:
                continue
            owner = out.setdefault(port, app_id)
            if owner != app_id:
                problems.append(Problem(_port_path(app, index),
                                        f"Requested service port {port} conflicts with a service port in use by "
                                        f"app {owner}"))
    return out, problems


def assign_service_ports(app: App, taken: set[int], low: int = 10000, high: int = 20000, *,
                         previous: App | None = None) -> App:
    """A copy of ``app`` whose service ports of 0 got cluster-unique ones; ``taken`` (the ports
    other apps hold) gets them added. See :func:`assign_service_ports_of`."""
    return assign_service_ports_of([(app, previous)], taken, low, high)[0]


def _port_entries_of(app: App) -> tuple[str, list[dict[str, Any]]]:
    key, _ = port_entries(app)
    return key, app["container"]["portMappings"] if key == "servicePort" else app.get("portDefinitions", [])


def assign_service_ports_of(apps: Sequence[tuple[App, App | None]], taken: set[int], low: int = 10000,
                            high: int = 20000) -> list[App]:
    """Copies of the ``(app, previous definition)`` pairs of one request with their service ports of
    0 assigned, none clashing with ``taken`` (other apps' ports, which get these added) or with
    each other: first every explicit port is reserved, then a port of 0 at index i gets the
    previous definition's port at i when that is still free (an update does not move ports),
    then the rest get the lowest free ports in ``low..high``. Raises
    :class:`ServicePortsExhausted` when none is free."""
    copies = [copy.deepcopy(app) for app, _ in apps]
    entries = [_port_entries_of(app) for app in copies]
    for key, items in entries:
        taken.update(int(e[key]) for e in items if e.get(key))
    for (key, items), (_, previous) in zip(entries, apps, strict=True):
        old = service_ports(previous) if previous else []
        for index, entry in enumerate(items):
            if not entry.get(key, 0) and index < len(old) and old[index] and old[index] not in taken:
                entry[key] = old[index]
                taken.add(old[index])
    candidate = low
    for app, (key, items) in zip(copies, entries, strict=True):
        for entry in items:
            if entry.get(key, 0):
                continue
            while candidate in taken:
                candidate += 1
            if candidate > high:
                raise ServicePortsExhausted(f"no free service port left in {low}..{high} for {app['id']}")
            entry[key] = candidate
            taken.add(candidate)
    return copies
