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
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no name, no hash of it
            raise WireError(f"{what}: '{key}' is not valid Unicode") from None
    return value


def id_of(obj: Any, key: str, what: str) -> str:
    return _text(_get(obj, key, what), "value", f"{what}.{key}")


def _obj(value: Any, what: str) -> dict[str, Any]:
    """An optional object: absent (None) is empty; anything but an object is refused."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WireError(f"{what} must be an object")
    return value


def _arr(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WireError(f"{what} must be a list")
    return value


def _port(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536 else None


def ip_literal(text: Any) -> str | None:
    """``text`` if it is an IPv4 or IPv6 address, else None (host names are not resolved here)."""
    if not isinstance(text, str) or not text:
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
    return ip_literal(host), int(port) if port.isdigit() and 0 < int(port) < 65536 else None


def _ips(entries: Any) -> tuple[str, ...]:
    out: list[str] = []
    for info in _arr(entries, "ContainerStatus.network_infos"):
        info = _obj(info, "NetworkInfo")
        for entry in _arr(info.get("ip_addresses"), "NetworkInfo.ip_addresses"):
            ip = ip_literal(_obj(entry, "NetworkInfo.IPAddress").get("ip_address"))
            if ip:
                out.append(ip)
        single = ip_literal(info.get("ip_address"))
        if single:
            out.append(single)
    return tuple(out)


def parse_status(status: Any) -> StatusFacts:
    what = "TaskStatus"
    status = _obj(status, what)
    healthy = status.get("healthy")
    if healthy is not None and not isinstance(healthy, bool):
        raise WireError(f"{what}: 'healthy' must be a boolean")
    timestamp = status.get("timestamp", 0.0)
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        raise WireError(f"{what}: 'timestamp' must be a number")
    netinfo = _ips(_obj(status.get("container_status"), f"{what}.container_status").get("network_infos"))
    labels = _arr(_obj(status.get("labels"), f"{what}.labels").get("labels"), f"{what}.labels.labels")
    by_key = {label.get("key"): label.get("value") for label in labels if isinstance(label, dict)}
    label_ips: dict[str, tuple[str, ...]] = {}
    for source, key in IP_LABELS.items():
        ip = ip_literal(by_key.get(key))
        label_ips[source] = (ip,) if ip else ()
    return StatusFacts(id_of(status, "task_id", what), _text(status, "state", what), healthy, float(timestamp),
                       netinfo, label_ips)


def _host_ports(resources: Any) -> tuple[int, ...]:
    ports: list[int] = []
    for resource in _arr(resources, "Task.resources"):
        if not isinstance(resource, dict) or resource.get("name") != "ports":
            continue
        spans = _arr(_obj(resource.get("ranges"), "Task.resources ports 'ranges'").get("range"),
                     "Task.resources ports 'ranges.range'")
        for span in spans:
            span = _obj(span, "Task.resources ports range")
            begin, end = span.get("begin"), span.get("end")
            if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end < 65536):
                raise WireError("Task.resources: a 'ports' range needs 0 <= begin <= end < 65536")
            if len(ports) + end - begin + 1 > MAX_PORTS_PER_TASK:
                raise WireError("Task.resources: more ports than exist")
            ports.extend(range(begin, end + 1))
    return tuple(dict.fromkeys(ports))


def _discovery_ports(discovery: dict[str, Any]) -> tuple[DiscoveryPort, ...]:
    out = []
    for port in _arr(_obj(discovery.get("ports"), "DiscoveryInfo.ports").get("ports"), "DiscoveryInfo.ports.ports"):
        port = _obj(port, "DiscoveryInfo port")
        number = _port(port.get("number"))
        if number is None:
            raise WireError("DiscoveryInfo.ports: 'number' must be a port (1-65535)")
        protocol = port.get("protocol")
        protocol = protocol.lower() if isinstance(protocol, str) else ""
        if protocol not in ("", "tcp", "udp"):
            protocol = ""  # Mesos-DNS publishes an unknown protocol under both tcp and udp
        name = port.get("name")
        out.append(DiscoveryPort(number, name if isinstance(name, str) else "", protocol))
    return tuple(out)


def parse_task(task: Any) -> TaskFacts:
    what = "Task"
    task = _obj(task, what)
    discovery = task.get("discovery")
    if discovery is not None and not isinstance(discovery, dict):
        raise WireError(f"{what}: 'discovery' must be an object")
    statuses = _arr(task.get("statuses"), f"{what}.statuses")
    discovery_name = (discovery or {}).get("name")
    if discovery_name is not None and not isinstance(discovery_name, str):
        raise WireError("DiscoveryInfo: 'name' must be a string")
    return TaskFacts(
        task_id=id_of(task, "task_id", what), name=_text(task, "name", what) if "name" in task else "",
        framework_id=id_of(task, "framework_id", what), agent_id=id_of(task, "agent_id", what),
        state=_text(task, "state", what), host_ports=_host_ports(task.get("resources")),
        discovery_name=discovery_name or None,
        discovery_ports=_discovery_ports(discovery) if discovery else (), has_discovery=discovery is not None,
        statuses=tuple(parse_status(status) for status in statuses))


def parse_agent(agent: Any) -> AgentFacts:
    agent = _obj(agent, "GetAgents.Agent")
    info = _obj(_get(agent, "agent_info", "GetAgents.Agent"), "AgentInfo")
    agent_id = id_of(info, "id", "AgentInfo")
    ip, port = pid_address(agent.get("pid"))
    if ip is None:
        ip = ip_literal(info.get("hostname"))
    return AgentFacts(agent_id, ip, port if port is not None else _port(info.get("port")))


def parse_framework(framework: Any) -> FrameworkFacts:
    framework = _obj(framework, "GetFrameworks.Framework")
    info = _obj(_get(framework, "framework_info", "GetFrameworks.Framework"), "FrameworkInfo")
    ip, port = pid_address(framework.get("pid"))
    if ip is None:
        ip = ip_literal(info.get("hostname"))
    return FrameworkFacts(id_of(info, "id", "FrameworkInfo"), _text(info, "name", "FrameworkInfo"), ip, port)


def state_lists(get_state: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """SUBSCRIBED's ``get_state`` -> its frameworks, agents and (non-completed) tasks, unparsed."""
    what = "GetState"
    get_state = _obj(get_state, what)
    frameworks = _arr(_obj(_get(get_state, "get_frameworks", what), "get_frameworks").get("frameworks"), "frameworks")
    agents = _arr(_obj(_get(get_state, "get_agents", what), "get_agents").get("agents"), "agents")
    tasks = _arr(_obj(_get(get_state, "get_tasks", what), "get_tasks").get("tasks"), "tasks")
    return frameworks, agents, tasks


def parse_state(get_state: Any) -> tuple[list[FrameworkFacts], list[AgentFacts], list[TaskFacts]]:
    """SUBSCRIBED's ``get_state``: frameworks, agents and the (non-completed) tasks."""
    frameworks, agents, tasks = state_lists(get_state)
    return ([parse_framework(f) for f in frameworks], [parse_agent(a) for a in agents], [parse_task(t) for t in tasks])


def framework_info(body: dict[str, Any]) -> dict[str, Any]:
    """FRAMEWORK_REMOVED's ``framework_info``."""
    return _obj(_get(body, "framework_info", "FRAMEWORK_REMOVED"), "FrameworkInfo")
