"""The operator event stream's payloads (mesos-api 3.3, v1 JSON) as the few typed facts DNS needs.

    SUBSCRIBED      {get_state: {get_tasks: {tasks}, get_frameworks: {frameworks}, get_agents: {agents}}}
    TASK_ADDED      {task: Task}                       -> TaskFacts
    TASK_UPDATED    {framework_id, status, state}      -> StatusFacts
    AGENT_ADDED     {agent: GetAgents.Agent}           -> AgentFacts
    AGENT_REMOVED   {agent_id}                         -> agent id
    FRAMEWORK_ADDED / FRAMEWORK_UPDATED {framework}    -> FrameworkFacts
    FRAMEWORK_REMOVED {framework_info}                 -> framework id

Task fields read: task_id, name, framework_id, agent_id, state, resources (``ports`` RANGES),
statuses[].{state, timestamp, healthy, labels, container_status.network_infos}, discovery.
A payload without a field DNS needs raises :class:`WireError` naming it; unknown fields are ignored.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

MAX_PORTS_PER_TASK = 65536  # a ports range wider than every port there is is malformed, not big
# Status labels an executor may set with the container's IP (spec 1.4, IP sources "mesos", "docker").
IP_LABELS = {"mesos": "MesosContainerizer.NetworkSettings.IPAddress", "docker": "Docker.NetworkSettings.IPAddress"}


class WireError(ValueError):
    """A payload lacks a field DNS needs, or has it in the wrong shape."""


@dataclass(frozen=True)
class DiscoveryPort:
    number: int
    name: str
    protocol: str  # "tcp", "udp" or "" (both)


@dataclass(frozen=True)
class StatusFacts:
    task_id: str
    state: str
    healthy: bool | None
    timestamp: float
    netinfo_ips: tuple[str, ...]
    label_ips: dict[str, tuple[str, ...]]  # IP source ("mesos", "docker") -> IPs


@dataclass(frozen=True)
class TaskFacts:
    task_id: str
    name: str
    framework_id: str
    agent_id: str
    state: str
    host_ports: tuple[int, ...]
    discovery_name: str | None
    discovery_ports: tuple[DiscoveryPort, ...]
    has_discovery: bool
    statuses: tuple[StatusFacts, ...]


@dataclass(frozen=True)
class AgentFacts:
    agent_id: str
    ip: str | None
    port: int | None


@dataclass(frozen=True)
class FrameworkFacts:
    framework_id: str
    name: str
    ip: str | None
    port: int | None


def _get(obj: Any, key: str, what: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise WireError(f"{what}: missing '{key}'")
    return obj[key]


def _text(obj: Any, key: str, what: str) -> str:
    value = _get(obj, key, what)
    if not isinstance(value, str):
        raise WireError(f"{what}: '{key}' must be a string")
    return value


def id_of(obj: Any, key: str, what: str) -> str:
    return _text(_get(obj, key, what), "value", f"{what}.{key}")


def ip_literal(text: str | None) -> str | None:
    """``text`` if it is an IPv4 or IPv6 address, else None (host names are not resolved here)."""
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def pid_address(pid: Any) -> tuple[str | None, int | None]:
    """``name@ip:port`` -> (ip, port); (None, None) when absent or not an IP."""
    if not isinstance(pid, str) or "@" not in pid:
        return None, None
    host, _, port = pid.rsplit("@", 1)[1].rpartition(":")
    return ip_literal(host), int(port) if port.isdigit() and int(port) < 65536 else None


def _ips(entries: Any) -> tuple[str, ...]:
    out: list[str] = []
    for info in entries if isinstance(entries, list) else []:
        addresses = info.get("ip_addresses") if isinstance(info, dict) else None
        for entry in addresses if isinstance(addresses, list) else []:
            ip = ip_literal(entry.get("ip_address")) if isinstance(entry, dict) else None
            if ip:
                out.append(ip)
        single = ip_literal(info.get("ip_address")) if isinstance(info, dict) else None
        if single:
            out.append(single)
    return tuple(out)


def parse_status(status: Any) -> StatusFacts:
    what = "TaskStatus"
    healthy = status.get("healthy") if isinstance(status, dict) else None
    if healthy is not None and not isinstance(healthy, bool):
        raise WireError(f"{what}: 'healthy' must be a boolean")
    timestamp = status.get("timestamp", 0.0) if isinstance(status, dict) else 0.0
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        raise WireError(f"{what}: 'timestamp' must be a number")
    container = status.get("container_status") if isinstance(status, dict) else None
    netinfo = _ips(container.get("network_infos")) if isinstance(container, dict) else ()
    labels = (status.get("labels") or {}).get("labels") if isinstance(status, dict) else None
    by_key = {label.get("key"): label.get("value") for label in labels or [] if isinstance(label, dict)}
    label_ips: dict[str, tuple[str, ...]] = {}
    for source, key in IP_LABELS.items():
        ip = ip_literal(by_key.get(key))
        label_ips[source] = (ip,) if ip else ()
    return StatusFacts(id_of(status, "task_id", what), _text(status, "state", what), healthy, float(timestamp),
                       netinfo, label_ips)


def _host_ports(resources: Any) -> tuple[int, ...]:
    ports: list[int] = []
    for resource in resources if isinstance(resources, list) else []:
        if not isinstance(resource, dict) or resource.get("name") != "ports":
            continue
        for span in ((resource.get("ranges") or {}).get("range") or []):
            begin, end = span.get("begin"), span.get("end")
            if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end < 65536):
                raise WireError("Task.resources: a 'ports' range needs 0 <= begin <= end < 65536")
            if len(ports) + end - begin + 1 > MAX_PORTS_PER_TASK:
                raise WireError("Task.resources: more ports than exist")
            ports.extend(range(begin, end + 1))
    return tuple(dict.fromkeys(ports))


def _discovery_ports(discovery: dict[str, Any]) -> tuple[DiscoveryPort, ...]:
    out = []
    for port in ((discovery.get("ports") or {}).get("ports") or []):
        number = port.get("number") if isinstance(port, dict) else None
        if not isinstance(number, int) or not 0 < number < 65536:
            raise WireError("DiscoveryInfo.ports: 'number' must be a port (1-65535)")
        protocol = str(port.get("protocol") or "").lower()
        if protocol not in ("", "tcp", "udp"):
            protocol = ""  # Mesos-DNS publishes an unknown protocol under both tcp and udp
        out.append(DiscoveryPort(number, str(port.get("name") or ""), protocol))
    return tuple(out)


def parse_task(task: Any) -> TaskFacts:
    what = "Task"
    discovery = task.get("discovery") if isinstance(task, dict) else None
    if discovery is not None and not isinstance(discovery, dict):
        raise WireError(f"{what}: 'discovery' must be an object")
    statuses = task.get("statuses") or []
    if not isinstance(statuses, list):
        raise WireError(f"{what}: 'statuses' must be a list")
    return TaskFacts(
        task_id=id_of(task, "task_id", what), name=_text(task, "name", what) if "name" in task else "",
        framework_id=id_of(task, "framework_id", what), agent_id=id_of(task, "agent_id", what),
        state=_text(task, "state", what), host_ports=_host_ports(task.get("resources")),
        discovery_name=(discovery or {}).get("name") or None,
        discovery_ports=_discovery_ports(discovery) if discovery else (), has_discovery=discovery is not None,
        statuses=tuple(parse_status(status) for status in statuses))


def parse_agent(agent: Any) -> AgentFacts:
    info = _get(agent, "agent_info", "GetAgents.Agent")
    agent_id = id_of(info, "id", "AgentInfo")
    ip, port = pid_address(agent.get("pid"))
    if ip is None:
        ip = ip_literal(info.get("hostname"))
    return AgentFacts(agent_id, ip, port if port is not None else info.get("port"))


def parse_framework(framework: Any) -> FrameworkFacts:
    info = _get(framework, "framework_info", "GetFrameworks.Framework")
    ip, port = pid_address(framework.get("pid"))
    if ip is None:
        ip = ip_literal(info.get("hostname"))
    return FrameworkFacts(id_of(info, "id", "FrameworkInfo"), _text(info, "name", "FrameworkInfo"), ip, port)


def parse_state(get_state: Any) -> tuple[list[FrameworkFacts], list[AgentFacts], list[TaskFacts]]:
    """SUBSCRIBED's ``get_state``: frameworks, agents and the (non-completed) tasks."""
    what = "GetState"
    frameworks = (_get(get_state, "get_frameworks", what).get("frameworks") or [])
    agents = (_get(get_state, "get_agents", what).get("agents") or [])
    tasks = (_get(get_state, "get_tasks", what).get("tasks") or [])
    return ([parse_framework(f) for f in frameworks], [parse_agent(a) for a in agents], [parse_task(t) for t in tasks])
