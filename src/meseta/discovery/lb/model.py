"""Apps (``GET /v2/apps?embed=apps.tasks&embed=apps.readiness``) -> the LB's desired model; pure.

    Model
      services  one per exposed service port of an app, sorted by name
        Service  name "<app id, / -> _>_<bind port>" (frontend and backend), app_id, bind_addr, port,
                 mode tcp|http, balance, vhosts, paths, weight, redirect_https, hsts, check?, servers
          Server  key "<task id>#<port index>", task_id, ip, port, draining
      rejected  app id -> reason (a bad label, a port outside --lb-port-range or already bound...)
      draining  task ids the services scheduler is draining (to confirm, in rotation or not)

A port of an app is exposed when its groups (``HAPROXY_{n}_GROUP``, else ``HAPROXY_GROUP``) meet the
LB's groups, or the LB serves ``*``. A task is a server when it is TASK_RUNNING, healthy (every
``healthCheckResults`` alive, if the app has health checks) and not reported ``ready: false`` by a
readiness check; ``"draining": true`` keeps it as a draining server. Addresses: host and
container/bridge networking -> the agent host (resolved by the caller) and the task's host ports;
container networking -> the task's first IP and the mapping's containerPort.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meseta.discovery.lb.labels import LabelError, PortLabels, check_known, port_labels

HTTP_CHECKS = ("HTTP", "MESOS_HTTP")
TCP_CHECKS = ("TCP", "MESOS_TCP")
NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
CHECK_PATH = re.compile(r"/[A-Za-z0-9._~!&()*+,=:@%/?-]{0,200}")


@dataclass(frozen=True, slots=True)
class Settings:
    groups: tuple[str, ...]
    bind_addr: str = "127.0.0.1"
    port_range: tuple[int, int] = (10000, 20000)
    reserved_ports: frozenset[int] = frozenset()  # the LB's own (stats, http) ports
    http_port: int | None = None  # the shared vhost frontend; None: VHOST labels are refused


@dataclass(frozen=True, slots=True)
class Server:
    key: str
    task_id: str
    ip: str
    port: int
    draining: bool = False


@dataclass(frozen=True, slots=True)
class Check:
    """An HAProxy active check taken from the app's Marathon health check for this port."""

    interval: int
    fall: int
    timeout: int
    http_path: str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    app_id: str
    bind_addr: str
    port: int
    mode: str
    balance: str
    vhosts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    weight: int = 0
    redirect_https: bool = False
    hsts: bool = False
    check: Check | None = None
    servers: tuple[Server, ...] = ()
    instances: int = 0  # the app's instance count: slots are sized for twice it (a rolling upgrade)


@dataclass(frozen=True, slots=True)
class Model:
    services: tuple[Service, ...] = ()
    rejected: Mapping[str, str] = field(default_factory=dict)
    draining: frozenset[str] = frozenset()

    def without(self, app_ids: set[str], reasons: Mapping[str, str]) -> Model:
        """The model with these apps left out and reported."""
        return Model(tuple(s for s in self.services if s.app_id not in app_ids), {**self.rejected, **reasons},
                     self.draining)


def backend_name(app_id: str, port: int) -> str:
    return f"{NAME_CHARS.sub('_', app_id.strip('/').replace('/', '_'))}_{port}"


def build(apps: Sequence[Mapping[str, Any]], settings: Settings,
          addresses: Mapping[str, str] | None = None) -> Model:
    """The desired model; ``addresses`` maps agent host names to IPv4 (IP literals need no entry)."""
    services: list[Service] = []
    rejected: dict[str, str] = {}
    draining: set[str] = set()
    bound: dict[int, str] = {}
    for app in sorted((a for a in apps if isinstance(a, Mapping)), key=lambda a: str(a.get("id", ""))):
        app_id = str(app.get("id", ""))
        try:
            exposed = _services(app, settings, addresses or {})
        except LabelError as error:
            rejected[app_id] = str(error)
            continue
        except (ValueError, TypeError, AttributeError, KeyError) as error:
            rejected[app_id] = f"malformed app JSON: {error}"
            continue
        clash = next((f"port {s.port} is already bound by {bound[s.port]}" for s in exposed if s.port in bound), None)
        if clash:
            rejected[app_id] = clash
            continue
        for service in exposed:
            bound[service.port] = app_id
        services.extend(exposed)
        if exposed:
            draining.update(str(t.get("id")) for t in app.get("tasks") or () if t.get("draining") is True)
    return Model(tuple(sorted(services, key=lambda s: s.name)), rejected, frozenset(draining))


def _services(app: Mapping[str, Any], settings: Settings, addresses: Mapping[str, str]) -> list[Service]:
    labels = {str(k): v for k, v in (app.get("labels") or {}).items()}
    check_known(labels)
    mode = _network_mode(app)
    mappings = list((app.get("container") or {}).get("portMappings") or [])
    service_ports = ([int(m.get("servicePort", 0)) for m in mappings] if mode != "host"
                     else [int(p.get("port", 0)) for p in app.get("portDefinitions") or []])
    found: list[Service] = []
    for index, service_port in enumerate(service_ports):
        wanted = port_labels(labels, index)
        if not (set(wanted.groups) & set(settings.groups) or ("*" in settings.groups)):
            continue
        found.append(_service(app, index, service_port, wanted, mode, mappings, settings, addresses))
    return found


def _service(app: Mapping[str, Any], index: int, service_port: int, wanted: PortLabels, mode: str,
             mappings: list[Any], settings: Settings, addresses: Mapping[str, str]) -> Service:
    app_id = str(app.get("id", ""))
    port = wanted.port or service_port
    low, high = settings.port_range
    if not low <= port <= high:
        raise LabelError(f"HAPROXY_{index}_PORT" if wanted.port else f"service port {index}",
                         f"port {port} is outside the LB's --lb-port-range {low}-{high}")
    if port in settings.reserved_ports or port == settings.http_port:
        raise LabelError(f"service port {index}", f"port {port} is the LB's own port")
    if wanted.vhosts and settings.http_port is None:
        raise LabelError(f"HAPROXY_{index}_VHOST", "this LB has no --http-port for virtual hosts")
    check = _check(app, index)
    http_check = check is not None and check.http_path is not None
    proxy_mode = wanted.mode or ("http" if wanted.vhosts or http_check else "tcp")
    if wanted.hsts and proxy_mode != "http":
        raise LabelError(f"HAPROXY_{index}_USE_HSTS", "needs http mode")
    return Service(name=backend_name(app_id, port), app_id=app_id, bind_addr=wanted.bind_addr or settings.bind_addr,
                   port=port, mode=proxy_mode, balance=wanted.balance, vhosts=wanted.vhosts, paths=wanted.paths,
                   weight=wanted.weight, redirect_https=wanted.redirect_https, hsts=wanted.hsts, check=check,
                   servers=tuple(_servers(app, index, mode, mappings, addresses)),
                   instances=max(0, min(int(app.get("instances", 0)), 10_000)))


def _network_mode(app: Mapping[str, Any]) -> str:
    networks = app.get("networks") or []
    return str(networks[0].get("mode", "host")) if networks else "host"


def _check(app: Mapping[str, Any], index: int) -> Check | None:
    for position, check in enumerate(app.get("healthChecks") or []):
        protocol = str(check.get("protocol", "HTTP"))
        if protocol not in HTTP_CHECKS + TCP_CHECKS or "port" in check or int(check.get("portIndex", 0)) != index:
            continue
        path = None
        if protocol in HTTP_CHECKS:
            path = str(check.get("path", "/"))
            if not CHECK_PATH.fullmatch(path):
                raise LabelError(f"healthChecks[{position}].path", f"{path!r} cannot go into an HAProxy check")
        return Check(interval=max(1, int(check.get("intervalSeconds", 60))),
                     fall=int(check.get("maxConsecutiveFailures", 3)) + 1,
                     timeout=max(1, int(check.get("timeoutSeconds", 20))), http_path=path)
    return None


def _servers(app: Mapping[str, Any], index: int, mode: str, mappings: list[Any],
             addresses: Mapping[str, str]) -> list[Server]:
    unready = {str(r.get("taskId")) for r in app.get("readinessCheckResults") or () if r.get("ready") is False}
    checked = bool(app.get("healthChecks"))
    servers = []
    for task in app.get("tasks") or ():
        task_id = str(task.get("id"))
        if task.get("state") != "TASK_RUNNING" or task_id in unready:
            continue
        results = task.get("healthCheckResults") or []
        if checked and not (results and all(r.get("alive") is True for r in results)):
            continue
        address = _address(task, index, mode, mappings, addresses)
        if address is not None:
            servers.append(Server(f"{task_id}#{index}", task_id, *address, draining=task.get("draining") is True))
    return sorted(servers, key=lambda s: s.key)


def _address(task: Mapping[str, Any], index: int, mode: str, mappings: list[Any],
             addresses: Mapping[str, str]) -> tuple[str, int] | None:
    if mode == "container":
        ips = task.get("ipAddresses") or []
        if not ips or index >= len(mappings):
            return None
        ip, port = str(ips[0].get("ipAddress", "")), int(mappings[index].get("containerPort", 0))
    else:
        ports = task.get("ports") or []
        if index >= len(ports):
            return None
        host = str(task.get("host", ""))
        ip, port = addresses.get(host, host), int(ports[index])
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        return None  # an unresolved host or an IPv6 container address: not routable by this LB
    return (ip, port) if 0 < port <= 65535 else None
