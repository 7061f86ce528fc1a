"""Health checks of the built-in executors: the policy from ``TaskInfo.health_check`` and the
verdict after each probe (pure; the executor runs the probes and acts).

    TASK_RUNNING --delay_seconds--> probe --interval_seconds--> probe --> ...
        a probe is COMMAND (exit 0), HTTP (GET 127.0.0.1:port/path answers 200-399) or TCP
        (127.0.0.1:port accepts), and fails after timeout_seconds
    success            healthy; reported (TASK_RUNNING, healthy=true) when the task turns healthy
    failure            ignored within grace_period_seconds of the launch until a first success;
                       otherwise reported (healthy=false) every time, and after
                       consecutive_failures in a row the task is killed: TASK_KILLED, healthy=false

Reports carry reason REASON_TASK_HEALTH_CHECK_STATUS_UPDATED, as Mesos's executors send them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HEALTH_REASON = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"


class HealthCheckError(ValueError):
    """A health check that cannot run; the message names the field."""


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    kind: str  # COMMAND, HTTP or TCP
    delay: float = 15.0
    interval: float = 10.0
    timeout: float = 20.0  # 0: none
    consecutive_failures: int = 3
    grace_period: float = 10.0
    command: str = ""
    port: int = 0
    path: str = "/"
    scheme: str = "http"

    @classmethod
    def from_json(cls, check: Mapping[str, Any]) -> HealthPolicy:
        kind = str(check.get("type") or ("HTTP" if "http" in check else "COMMAND" if "command" in check else ""))
        timing = (float(check.get("delay_seconds", 15.0)), float(check.get("interval_seconds", 10.0)),
                  float(check.get("timeout_seconds", 20.0)), int(check.get("consecutive_failures", 3)),
                  float(check.get("grace_period_seconds", 10.0)))
        if kind == "COMMAND":
            command = str((check.get("command") or {}).get("value") or "")
            if not command:
                raise HealthCheckError("health_check.command.value: a COMMAND check needs a command")
            return cls(kind, *timing, command=command)
        if kind in ("HTTP", "TCP"):
            spec = check.get(kind.lower()) or {}
            port = int(spec.get("port") or 0)
            if not 0 < port < 65536:
                raise HealthCheckError(f"health_check.{kind.lower()}.port: a {kind} check needs a port")
            scheme = str(spec.get("scheme") or "http")
            if scheme not in ("http", "https"):
                raise HealthCheckError("health_check.http.scheme: only http and https are supported")
            return cls(kind, *timing, port=port, path=str(spec.get("path") or "/"), scheme=scheme)
        raise HealthCheckError(f"health_check.type: '{kind}' is not one of COMMAND, HTTP, TCP")


@dataclass(frozen=True, slots=True)
class Verdict:
    report: bool | None  # send TASK_RUNNING with this ``healthy``, or nothing
    kill: bool = False


class HealthTracker:
    def __init__(self, policy: HealthPolicy, launched_at: float) -> None:
        self.policy = policy
        self.launched_at = launched_at
        self.healthy: bool | None = None
        self.succeeded_once = False
        self.failures = 0

    def record(self, ok: bool, now: float) -> Verdict:
        if ok:
            turned = self.healthy is not True
            self.healthy, self.succeeded_once, self.failures = True, True, 0
            return Verdict(True if turned else None)
        if not self.succeeded_once and now < self.launched_at + self.policy.grace_period:
            return Verdict(None)  # still starting up
        self.failures += 1
        self.healthy = False
        return Verdict(False, kill=self.failures >= self.policy.consecutive_failures)


def http_success(status: int) -> bool:
    return 200 <= status < 400
