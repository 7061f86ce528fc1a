"""Health and readiness checks of an app definition, with Marathon's defaults; pure.

A normalised health check always carries its timings; the rest depends on the protocol::

    every protocol   protocol, gracePeriodSeconds 300, intervalSeconds 60, timeoutSeconds 20,
                     maxConsecutiveFailures 3, delaySeconds 15
    HTTP(S), MESOS_HTTP(S)   + path "/" and portIndex (default 0) or port; HTTP(S) + ignoreHttp1xx
    TCP, MESOS_TCP           + portIndex or port
    COMMAND                  + command {"value": "<shell>"}  (inferred when only a command is given)

``portIndex`` addresses the app's port entries (portDefinitions, or container.portMappings
in bridge/container mode). A readiness check names its port by ``portName`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meseta.services.spec.app_fields import MISSING, Problem, Reader, is_whole

HEALTH_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP")
HTTP_PROTOCOLS = ("HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS")
MESOS_PROTOCOLS = ("MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP")
READINESS_PROTOCOLS = ("HTTP", "HTTPS")
PORT_INDEX_PROBLEM = "Health check port indices must address an element of the ports array or container port mappings."


def read_health_checks(app: Reader, port_count: int) -> list[dict[str, Any]]:
    """``healthChecks`` with defaults; ``port_count`` is how many port entries the app has."""
    checks = [_read_health_check(check, port_count) for check in app.objects("healthChecks") or []]
    if sum(check["protocol"] in MESOS_PROTOCOLS for check in checks) > 1:
        app.problem(None, "AppDefinition can contain at most one Mesos health check")
    return checks


HEALTH_KEYS = frozenset({"protocol", "gracePeriodSeconds", "intervalSeconds", "timeoutSeconds",
                         "maxConsecutiveFailures", "delaySeconds", "command", "port", "portIndex", "path",
                         "ignoreHttp1xx"})
READINESS_KEYS = frozenset({"name", "protocol", "path", "portName", "intervalSeconds", "timeoutSeconds",
                            "httpStatusCodesForReady", "preserveLastResponse"})


def _read_health_check(check: Reader, port_count: int) -> dict[str, Any]:
    check.only(HEALTH_KEYS)
    inferred = "COMMAND" if check.has("command") else "HTTP"
    protocol = check.choice("protocol", inferred, HEALTH_PROTOCOLS)
    entry: dict[str, Any] = {
        "protocol": protocol,
        "gracePeriodSeconds": check.integer("gracePeriodSeconds", 300, low=0),
        "intervalSeconds": check.integer("intervalSeconds", 60, low=1),
        "timeoutSeconds": check.integer("timeoutSeconds", 20, low=1),
        "maxConsecutiveFailures": check.integer("maxConsecutiveFailures", 3, low=0),
        "delaySeconds": check.integer("delaySeconds", 15, low=0),
    }
    if protocol == "COMMAND":
        command = _read_command(check)
        if command is not None:
            entry["command"] = {"value": command}
        return entry
    port = check.optional_integer("port", low=0, high=65535)
    index = check.optional_integer("portIndex", low=0)
    if port is not None:
        entry["port"] = port  # a fixed port overrides portIndex
    if port is None or index is not None:
        entry["portIndex"] = index or 0
        if entry["portIndex"] >= port_count:
            check.problem(None, PORT_INDEX_PROBLEM)
    if protocol in HTTP_PROTOCOLS:
        entry["path"] = check.string("path", "/") or "/"
    if protocol in ("HTTP", "HTTPS"):
        entry["ignoreHttp1xx"] = check.boolean("ignoreHttp1xx", False)
    return entry


def _read_command(check: Reader) -> str | None:
    value = check.data.get("command")
    if isinstance(value, Mapping):
        value = value.get("value")
    if isinstance(value, str) and value:
        return value
    check.problem("command", MISSING if value is None else 'must be {"value": "<shell command>"}')
    return None


def read_readiness_checks(app: Reader, port_names: list[str]) -> list[dict[str, Any]]:
    """``readinessChecks`` (at most one) with defaults; ``portName`` must name one of the app's ports."""
    checks = app.objects("readinessChecks") or []
    if len(checks) > 1:
        app.problem("readinessChecks", f"got {len(checks)}, expected 1 or less")
    return [_read_readiness_check(check, port_names) for check in checks]


def _read_readiness_check(check: Reader, port_names: list[str]) -> dict[str, Any]:
    check.only(READINESS_KEYS)
    entry: dict[str, Any] = {
        "name": check.string("name", "readinessCheck", non_empty=True),
        "protocol": check.choice("protocol", "HTTP", READINESS_PROTOCOLS),
        "path": check.string("path", "/") or "/",
        "portName": check.string("portName", "http-api", non_empty=True),
        "intervalSeconds": check.integer("intervalSeconds", 30, low=1),
        "timeoutSeconds": check.integer("timeoutSeconds", 10, low=1),
        "httpStatusCodesForReady": _read_status_codes(check),
        "preserveLastResponse": check.boolean("preserveLastResponse", False),
    }
    if entry["portName"] not in port_names:
        check.problem("portName", f"No port definition reference for portName {entry['portName']}")
    if entry["timeoutSeconds"] >= entry["intervalSeconds"]:
        check.problem("timeoutSeconds", f"got {entry['timeoutSeconds']}, expected less than {entry['intervalSeconds']}")
    return entry


def _read_status_codes(check: Reader) -> list[int]:
    codes = []
    for index, code in enumerate(check.array("httpStatusCodesForReady") or []):
        if is_whole(code) and 100 <= code <= 599:
            codes.append(int(code))
        else:
            check.problems.append(Problem(f"{check.at('httpStatusCodesForReady')}({index})",
                                          "must be an HTTP status code (100 to 599)"))
    return codes or [200]
