"""An app instance as a Mesos ``TaskInfo`` (pure): what Marathon's TaskBuilder puts in it.

    TaskInfo
      name          app id segments reversed, joined by dots (/prod/web -> web.prod)
      task_id       <safeAppId>.<uuid> (app_ids.new_task_id)
      resources     the placement's share of the offer (offer_matching.Placement)
      command       cmd under /bin/sh -c, or args without a shell (after the image's Entrypoint when
                    the app has an image); no cmd nor args: the image's Entrypoint/Cmd; fetch -> uris; user
        environment app env + MARATHON_APP_ID/VERSION/RESOURCE_*/LABELS, HOST and the ports
                    (:func:`ports_environment`), MARATHON_APP_LABEL_<NAME>
      container     :func:`container_info` (spec discovery-containers 5.7's table)
      health_check  the app's first health check, run by the agent (Mesos-native): HTTP, TCP,
                    COMMAND and their MESOS_* spellings all become agent-side checks; only
                    MESOS_* and COMMAND wait delaySeconds (HTTP/HTTPS/TCP probe at once, as
                    Marathon-level checks do)
      kill_policy   taskKillGracePeriodSeconds
      labels        the app's labels
      discovery     name and ports; with bridge/container networking each labelled network-scope
                    host|container (+ network-name), as Marathon does

Every port of an instance is a :class:`PortAssignment`: its host port (from the offer, or none
for a container-mode mapping without ``hostPort``) and its container port (``containerPort``, or
the host port when that is 0, or, with neither, a port picked from the task's uuid as Marathon
picks one at random, here from the task id).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from meseta.services.launch.offer_matching import Placement, port_requests
from meseta.services.spec.app_ids import new_task_id, task_name
from meseta.services.spec.app_ports import BRIDGE, CONTAINER, HOST, network_mode

_ENV_NAME = re.compile(r"[^A-Za-z0-9_]")
MESOS_BRIDGE_NAME = "mesos-bridge"  # Marathon's --mesos_bridge_name default
DOCKER_NETWORKS = {HOST: "HOST", BRIDGE: "BRIDGE", CONTAINER: "USER"}
_LOWEST_GENERATED, _HIGHEST_GENERATED = 1025, 65535


def env_name(text: str) -> str:
    return _ENV_NAME.sub("_", text).upper()


@dataclass(frozen=True, slots=True)
class PortAssignment:
    """One declared port of one instance (a portDefinition, or a portMapping)."""

    index: int
    host_port: int | None  # None: not exposed on the agent (container mode without hostPort)
    container_port: int | None  # None in host mode
    protocol: str = "tcp"
    name: str | None = None
    declared: int = 0  # containerPort (0 = dynamic) with mappings, the port with portDefinitions
    labels: dict[str, str] = field(default_factory=dict)
    network_names: tuple[str, ...] = ()

    @property
    def protocols(self) -> list[str]:
        """``udp,tcp`` is one port for both: one entry per protocol where Mesos wants one."""
        return self.protocol.split(",")

    @property
    def effective(self) -> int:
        """Where the task is reached on this port: its host port, else its container port."""
        return int(self.host_port if self.host_port is not None else self.container_port or 0)


def port_assignments(app: dict[str, Any], host_ports: Sequence[int], task_id: str = "") -> list[PortAssignment]:
    """Every declared port of an instance given its host ports (aligned with
    ``offer_matching.port_requests(app)``); ``task_id`` seeds the container ports generated for
    mappings with neither a containerPort nor a hostPort (so readiness finds them again)."""
    requests = port_requests(app)
    by_index = {r.index: int(port) for r, port in zip(requests, host_ports, strict=False)}
    if network_mode(app.get("networks") or []) == HOST:
        definitions = app.get("portDefinitions") or []
        return [PortAssignment(i, by_index.get(i), None, str(d.get("protocol", "tcp")), d.get("name"),
                               int(d.get("port") or 0), dict(d.get("labels") or {}))
                for i, d in enumerate(definitions) if i in by_index]
    mappings = (app.get("container") or {}).get("portMappings") or []
    used = {int(m.get("containerPort") or 0) for m in mappings} | set(by_index.values())
    out = []
    for index, mapping in enumerate(mappings):
        host = by_index.get(index) if mapping.get("hostPort") is not None else None
        declared = int(mapping.get("containerPort") or 0)
        inside = declared or host or _generated_port(task_id, index, used)
        used.add(inside)
        out.append(PortAssignment(index, host, inside, str(mapping.get("protocol", "tcp")), mapping.get("name"),
                                  declared, dict(mapping.get("labels") or {}),
                                  tuple(mapping.get("networkNames") or ())))
    return out


def _generated_port(seed: str, index: int, used: set[int]) -> int:
    span = _HIGHEST_GENERATED - _LOWEST_GENERATED + 1
    port = _LOWEST_GENERATED + zlib.crc32(f"{seed}/{index}".encode()) % span
    while port in used:
        port = _LOWEST_GENERATED + (port - _LOWEST_GENERATED + 1) % span
    return port


def ports_environment(assignments: Sequence[PortAssignment]) -> dict[str, str]:
    """Marathon's port variables: ``PORT<i>`` = the host port of port i, else its container port;
    ``PORT_<declared>`` (the containerPort, or the port itself when 0) = the same;
    ``PORT_<NAME>`` only for ports with a host port; ``PORTS`` = the host ports, then the
    generated container ports (not the declared ones), ``PORT`` = the first of those."""
    env: dict[str, str] = {}
    for slot, port in enumerate(assignments):
        value = str(port.effective)
        env[f"PORT{slot}"] = value
        env[f"PORT_{port.declared or port.effective}"] = value
        if port.name and port.host_port is not None:
            env[f"PORT_{env_name(port.name)}"] = value
    values = [str(p.host_port) for p in assignments if p.host_port is not None]
    values += [str(p.container_port) for p in assignments if p.host_port is None and not p.declared]
    if values:
        env["PORT"] = values[0]
        env["PORTS"] = ",".join(values)
    return env


def environment(app: dict[str, Any], task_id: str, host: str,
                ports: Sequence[PortAssignment]) -> dict[str, str]:
    env: dict[str, str] = {k: v for k, v in (app.get("env") or {}).items() if isinstance(v, str)}
    env.update({
        "MESOS_TASK_ID": task_id,
        "MARATHON_APP_ID": app["id"],
        "MARATHON_APP_VERSION": str(app.get("version", "")),
        "MARATHON_APP_RESOURCE_CPUS": str(app.get("cpus", 1.0)),
        "MARATHON_APP_RESOURCE_MEM": str(app.get("mem", 128.0)),
        "MARATHON_APP_RESOURCE_DISK": str(app.get("disk", 0.0)),
        "MARATHON_APP_RESOURCE_GPUS": str(app.get("gpus", 0)),
        "HOST": host,
    })
    labels = app.get("labels") or {}
    env["MARATHON_APP_LABELS"] = " ".join(env_name(k) for k in sorted(labels))
    for key, value in labels.items():
        env[f"MARATHON_APP_LABEL_{env_name(key)}"] = str(value)
    env.update(ports_environment(ports))
    return env


def health_check(app: dict[str, Any], ports: Sequence[PortAssignment]) -> dict[str, Any] | None:
    """The app's first health check as a Mesos HealthCheck, run by the agent. ``portIndex``
    names the host port when the port has one (the agent probes 127.0.0.1:<host port>), else
    its container port (probed at the container's IP); MESOS_HTTP/MESOS_TCP with bridge or
    container networking always probe the container port, as Marathon's do."""
    checks = app.get("healthChecks") or []
    if not checks:
        return None
    check = checks[0]
    spelled = str(check.get("protocol", "HTTP"))
    protocol = spelled.removeprefix("MESOS_")
    # delaySeconds is Mesos-level only (MESOS_*, COMMAND); Marathon probes HTTP(S)/TCP from the start
    delayed = spelled.startswith("MESOS_") or protocol == "COMMAND"
    out: dict[str, Any] = {
        "delay_seconds": float(check.get("delaySeconds", 15)) if delayed else 0.0,
        "interval_seconds": float(check.get("intervalSeconds", 60)),
        "timeout_seconds": float(check.get("timeoutSeconds", 20)),
        "consecutive_failures": int(check.get("maxConsecutiveFailures", 3)) or 1_000_000,
        "grace_period_seconds": float(check.get("gracePeriodSeconds", 300)),
    }
    if protocol == "COMMAND":
        command = check.get("command") or {}
        out.update(type="COMMAND", command={"shell": True, "value": str(command.get("value", ""))})
        return out
    port = check.get("port")
    if port is None:
        index = int(check.get("portIndex", 0) or 0)
        chosen = next((p for p in ports if p.index == index), None)
        if chosen is None:
            return None
        inside = spelled.startswith("MESOS_") and chosen.container_port is not None
        port = chosen.container_port if inside else chosen.effective
    if protocol == "TCP":
        out.update(type="TCP", tcp={"port": int(port)})
    else:
        out.update(type="HTTP", http={"port": int(port), "path": str(check.get("path", "/")),
                                      "scheme": "https" if protocol == "HTTPS" else "http"})
    return out


def _labels(entries: dict[str, str]) -> dict[str, Any]:
    return {"labels": [{"key": k, "value": str(v)} for k, v in entries.items()]}


def _port_mappings(ports: Sequence[PortAssignment], network: str | None = None) -> list[dict[str, Any]]:
    """Mesos PortMappings of the ports with a host port (those applying to ``network`` when
    given: no networkNames = every network), one per protocol."""
    return [{"host_port": p.host_port, "container_port": p.container_port, "protocol": protocol}
            for p in ports if p.host_port is not None and p.container_port is not None
            and (network is None or not p.network_names or network in p.network_names)
            for protocol in p.protocols]


def network_infos(app: dict[str, Any], ports: Sequence[PortAssignment],
                  bridge_name: str = MESOS_BRIDGE_NAME) -> list[dict[str, Any]]:
    """The Mesos NetworkInfos of a MESOS container: none on the host network, the CNI network
    ``bridge_name`` in bridge mode, one per named network in container mode; each with an IP
    request, its labels and the port mappings that apply to it."""
    networks = app.get("networks") or []
    mode = network_mode(networks)
    if mode == HOST:
        return []
    out = []
    for network in networks:
        name = bridge_name if mode == BRIDGE else str(network["name"])
        info: dict[str, Any] = {"name": name, "ip_addresses": [{}]}
        if network.get("labels"):
            info["labels"] = _labels(network["labels"])
        mappings = _port_mappings(ports, None if mode == BRIDGE else name)
        if mappings:
            info["port_mappings"] = mappings
        out.append(info)
    return out


def volumes(app: dict[str, Any]) -> list[dict[str, Any]]:
    """``container.volumes`` (host paths; persistent ones are refused at the API) as Mesos v1
    Volumes: a relative container path is inside the sandbox."""
    return [{"container_path": str(v["containerPath"]), "host_path": str(v["hostPath"]), "mode": str(v["mode"])}
            for v in (app.get("container") or {}).get("volumes") or [] if v.get("hostPath")]


def container_info(app: dict[str, Any], ports: Sequence[PortAssignment],
                   bridge_name: str = MESOS_BRIDGE_NAME) -> dict[str, Any] | None:
    """The app's ContainerInfo after spec discovery-containers 5.7's table:

    ========================  ==============================  ==================================
    networks                  DOCKER                          MESOS
    ========================  ==============================  ==================================
    host                      docker.network HOST             no NetworkInfo
    container/bridge          BRIDGE + docker.port_mappings   NetworkInfo{bridge_name, mappings}
    container (name N)        USER + NetworkInfo{N, mappings} NetworkInfo{N, ...} per network
    ========================  ==============================  ==================================

    None when there is nothing to say (a MESOS container without image, networks or volumes)."""
    container = app.get("container") or {}
    docker = container.get("docker") or {}
    image, force = docker.get("image"), bool(docker.get("forcePullImage", False))
    mode = network_mode(app.get("networks") or [])
    out: dict[str, Any]
    if container.get("type") == "DOCKER" and image:
        box: dict[str, Any] = {"image": image, "network": DOCKER_NETWORKS[mode], "force_pull_image": force}
        if mode == BRIDGE:
            box["port_mappings"] = _port_mappings(ports)
        for refused in ("privileged", "parameters"):  # refused at the API; a definition stored before
            if docker.get(refused):                   # was, goes to the agent, which refuses it by name
                box[refused] = docker[refused]
        out = {"type": "DOCKER", "docker": box}
        if mode == CONTAINER:
            out["network_infos"] = network_infos(app, ports, bridge_name)
    else:
        out = {"type": "MESOS"}
        if image:
            out["mesos"] = {"image": {"type": "DOCKER", "docker": {"name": image}, "cached": not force}}
        if mode != HOST:
            out["network_infos"] = network_infos(app, ports, bridge_name)
    mounts = volumes(app)
    if mounts:
        out["volumes"] = mounts
    if out == {"type": "MESOS"}:
        return None
    return out


def discovery_ports(app: dict[str, Any], ports: Sequence[PortAssignment]) -> list[dict[str, Any]]:
    """DiscoveryInfo ports as Marathon labels them: in host mode the host ports with their own
    labels only; else a port with a host port is ``network-scope: host`` at that port, one
    without is ``network-scope: container`` at its container port on each network it applies
    to (``network-name``). One entry per protocol."""
    names = [str(n["name"]) for n in app.get("networks") or [] if n.get("name")]
    host_mode = network_mode(app.get("networks") or []) == HOST
    out = []
    for port in ports:
        if port.host_port is not None:
            scopes = [(port.host_port, {} if host_mode else {"network-scope": "host"})]
        else:
            nets = list(port.network_names) or names
            scopes = [(int(port.container_port or 0), {"network-scope": "container", "network-name": net})
                      for net in nets]
        for number, scope in scopes:
            for protocol in port.protocols:
                entry: dict[str, Any] = {"number": number, "protocol": protocol,
                                         "labels": _labels({**port.labels, **scope})}
                if port.name:
                    entry["name"] = port.name
                out.append(entry)
    return out


def unlaunchable(app: dict[str, Any]) -> str | None:
    """Why a definition stored before the API refused such things cannot be launched as it is
    (it stays queued rather than run differently): a container network without a name would
    put the task on the host network; a persistent volume would not be there."""
    if any(n.get("mode") == CONTAINER and not n.get("name") for n in app.get("networks") or []):
        return "a container network without name"
    if any(isinstance(v, dict) and v.get("persistent") for v in (app.get("container") or {}).get("volumes") or []):
        return "persistent volumes are not supported"
    return None


def task_info(app: dict[str, Any], placement: Placement, *, agent_id: str, host: str, uuid: str,
              bridge_name: str = MESOS_BRIDGE_NAME) -> dict[str, Any]:
    task_id = new_task_id(app["id"], uuid)
    ports = port_assignments(app, placement.host_ports, task_id)
    variables = [{"name": k, "value": v} for k, v in sorted(environment(app, task_id, host, ports).items())]
    command: dict[str, Any] = {"environment": {"variables": variables}}
    if app.get("cmd"):
        command.update(shell=True, value=app["cmd"])
    elif app.get("args") and ((app.get("container") or {}).get("docker") or {}).get("image"):
        command.update(shell=False, arguments=list(app["args"]))  # after the image's Entrypoint, as Docker does
    elif app.get("args"):
        command.update(shell=False, value=app["args"][0], arguments=list(app["args"]))
    else:
        command.update(shell=False)
    uris = [{"value": f["uri"], "extract": bool(f.get("extract", True)), "executable": bool(f.get("executable", False)),
             "cache": bool(f.get("cache", False)), **({"output_file": f["destPath"]} if f.get("destPath") else {})}
            for f in app.get("fetch") or []]
    if uris:
        command["uris"] = uris
    if app.get("user"):
        command["user"] = app["user"]
    info: dict[str, Any] = {
        "name": task_name(app["id"]),
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": placement.resources,
        "command": command,
        "labels": {"labels": [{"key": k, "value": str(v)} for k, v in sorted((app.get("labels") or {}).items())]},
        "discovery": {"visibility": "FRAMEWORK", "name": task_name(app["id"]),
                      "ports": {"ports": discovery_ports(app, ports)}},
    }
    box = container_info(app, ports, bridge_name)
    if box is not None:
        info["container"] = box
    check = health_check(app, ports)
    if check is not None:
        info["health_check"] = check
    grace = app.get("taskKillGracePeriodSeconds")
    if grace:
        info["kill_policy"] = {"grace_period": {"nanoseconds": int(float(grace) * 1e9)}}
    return info
