"""Readiness checks (Marathon's ``readinessChecks``): which instances to probe, where, and what an
answer means; pure (the HTTP GETs are made by ``services.readiness_prober``).

    deployment step starts -> an instance it launched turns TASK_RUNNING
        -> probed every intervalSeconds: GET <protocol>://<host>:<host port of portName><path>
           (a port without host port: <container IP>:<container port>, once a status told the IP)
        -> status in httpStatusCodesForReady -> ready (probing stops; the step may count it)
        -> any other status, a timeout or a refused connection -> not ready (probed again)
    the step ends, or the instance goes -> no more probes; results are dropped with it

Only instances started by the running step are probed: the ones a step finds already there are
exempt (``app_step`` counts them as serving). Results are shown in ``/v2/deployments``
(currentActions[].readinessCheckResults) and with ``embed=apps.readiness``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meseta.services import wire
from meseta.services.deploy.app_step import is_current
from meseta.services.launch.task_builder import port_assignments
from meseta.services.model import App, Instance

BODY_LIMIT = 4096  # characters of a preserved response body


@dataclass(frozen=True, slots=True)
class Probe:
    """One instance to check: GET ``url`` every ``interval`` s, giving up on one after ``timeout`` s."""

    task_id: str
    app_id: str
    name: str
    url: str
    interval: float
    timeout: float
    ready_codes: frozenset[int]
    preserve: bool


@dataclass(frozen=True, slots=True)
class Answer:
    """What a probe got: an HTTP status (0 when none came) and the response."""

    status: int
    content_type: str = ""
    body: str = ""


def probe_url(app: App, instance: Instance, check: dict[str, Any]) -> str | None:
    """Where ``check`` reaches ``instance`` on the port named ``portName``: the agent's host and
    its host port when it has one, else the container's IP (from the latest status; on the
    port's network when it names one) and its container port; None while that is unknown."""
    port = next((p for p in port_assignments(app, instance.host_ports, instance.task_id)
                 if p.name == check["portName"]), None)
    if port is None:
        return None
    if port.host_port is not None:
        where = f"{instance.host}:{port.host_port}"
    else:
        ips = [ip for ip in instance.ip_addresses
               if not port.network_names or ip.get("networkName") in port.network_names]
        ipv4 = [ip["ipAddress"] for ip in ips if ip.get("protocol") != "IPv6"]
        if not ipv4 or port.container_port is None:
            return None
        where = f"{ipv4[0]}:{port.container_port}"
    scheme = "https" if check.get("protocol") == "HTTPS" else "http"
    path = str(check.get("path") or "/")
    return f"{scheme}://{where}{path if path.startswith('/') else '/' + path}"


def probes_for(app: App, instances: list[Instance], step_started: float) -> list[Probe]:
    """The probes a running step wants for ``app``: its current-version instances launched since
    the step started, running and not yet ready."""
    checks = app.get("readinessChecks") or []
    if not checks:
        return []
    check = checks[0]
    out = []
    for inst in instances:
        if inst.ready is True or inst.state != "TASK_RUNNING" or inst.killing or inst.staged_at < step_started:
            continue
        if not is_current(app, inst):
            continue
        url = probe_url(app, inst, check)
        if url is not None:
            out.append(Probe(inst.task_id, app["id"], str(check["name"]), url, float(check["intervalSeconds"]),
                             float(check["timeoutSeconds"]), frozenset(check["httpStatusCodesForReady"]),
                             bool(check.get("preserveLastResponse"))))
    return out


def result_of(probe: Probe, answer: Answer) -> tuple[bool, dict[str, Any]]:
    """(ready, the readiness check result as Marathon shows it) for one answer."""
    ready = answer.status in probe.ready_codes
    response = (answer.status, answer.content_type, answer.body[:BODY_LIMIT]) if probe.preserve else None
    return ready, wire.readiness_result_json(probe.name, probe.task_id, ready, response)
