"""The Marathon v2 JSON the services API emits, shaped for the ``marathon==0.13.0`` client; pure.

That client builds each model with ``Model(**snake_cased_json)``, so one unknown key breaks
every call that returns it: every object here is built from a whitelist. The layouts::

    AppInfo    app definition (whitelisted) + tasksStaged/Running/Healthy/Unhealthy,
               deployments [{id}], tasks? [Task], lastTaskFailure?, taskStats?, readinessCheckResults?
    Task       id appId host slaveId state stagedAt startedAt? version ports servicePorts
               ipAddresses [{ipAddress, protocol}] healthCheckResults? region? zone? role?
               (a task its load balancers are draining before its kill shows state TASK_KILLING:
               Marathon's word for an instance being killed, which marathon-lb also leaves out)
    Group      id apps groups dependencies version pods          (no enforceRole)
    Deployment id version affectedApps affectedPods steps [{actions: [{action, app}]}]
               currentActions [{action, app, readinessCheckResults}] currentStep totalSteps
    QueueItem  app count delay {timeLeftSeconds, overdue} since processedOffersSummary
               lastUnusedOffers?                                  (no role)
    Info       name version buildref elected leader frameworkId marathon_config
               zookeeper_config http_config (all three always objects) event_subscriber?
    422 body   {"message": "Object is not valid", "details": [{"path", "errors": [...]}]}

Timestamps are UTC with milliseconds and a literal ``Z`` (``2026-12-01T23:04:45.123Z``): the
only form the client parses. Being fixed-width, they also sort as strings.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from meseta.services.model import App, Instance
from meseta.services.spec import app_ids
from meseta.services.spec.app_ports import HOST, network_mode
from meseta.services.spec.app_ports import service_ports as service_ports  # re-exported: tasks and endpoints use it

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")
INVALID = "Object is not valid"

Action = tuple[str, str]  # (StartApplication | StopApplication | ScaleApplication | RestartApplication, app id)


def timestamp(epoch: float) -> str:
    """Epoch seconds as ``YYYY-MM-DDTHH:MM:SS.fffZ``."""
    seconds, millis = divmod(round(epoch * 1000), 1000)
    return f"{_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of a whole second (tasks staged together share theirs: a listing of
    10,000 tasks formats a few hundred seconds, not 20,000 timestamps)."""
    t = _EPOCH + timedelta(seconds=seconds)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def parse_timestamp(text: str) -> float | None:
    """Epoch seconds of a Marathon timestamp (with or without milliseconds), None if it is not one."""
    for form in _TIMESTAMP_FORMATS:
        try:
            return (datetime.strptime(text, form).replace(tzinfo=UTC) - _EPOCH).total_seconds()
        except (ValueError, TypeError):
            continue
    return None


def event(kind: str, timestamp: str, **payload: Any) -> dict[str, Any]:
    """One /v2/events event (shell/event_bus.py streams it)."""
    return {"eventType": kind, "timestamp": timestamp, **payload}


def _maybe_timestamp(epoch: float | None) -> str | None:
    return None if epoch is None else timestamp(epoch)


def _without_none(entries: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entries.items() if v is not None}


def _pick(entries: Mapping[str, Any], keys: Collection[str]) -> dict[str, Any]:
    return {k: v for k, v in entries.items() if k in keys}


# ----------------------------------------------------------------------------- apps

APP_KEYS = frozenset({
    "id", "cmd", "args", "user", "env", "instances", "cpus", "mem", "disk", "gpus", "executor", "constraints",
    "fetch", "backoffSeconds", "backoffFactor", "maxLaunchDelaySeconds", "container", "healthChecks",
    "readinessChecks", "dependencies", "upgradeStrategy", "labels", "acceptedResourceRoles", "version",
    "versionInfo", "killSelection", "unreachableStrategy", "requirePorts", "portDefinitions", "networks",
    "secrets", "taskKillGracePeriodSeconds", "role", "residency",
})  # a subset of what MarathonApp accepts (no tty, check, resourceLimits, executorResources)
PORT_MAPPING_KEYS = frozenset({"name", "containerPort", "hostPort", "servicePort", "protocol", "labels"})
PORT_DEFINITION_KEYS = frozenset({"port", "protocol", "name", "labels"})
VOLUME_KEYS = frozenset({"containerPath", "hostPath", "mode", "persistent", "external"})
READINESS_KEYS = frozenset({"name", "protocol", "path", "portName", "intervalSeconds", "httpStatusCodesForReady",
                            "preserveLastResponse", "timeoutSeconds"})
RESIDENCY_KEYS = frozenset({"relaunchEscalationTimeoutSeconds", "taskLostBehavior"})
EMBED_PREFIXES = ("group.apps.", "apps.", "app.")
# What AppInfo can embed (Marathon's InfoEmbedResolver; ``queue`` is Meseta's own), and the embed
# values each endpoint reads: an app's with the prefix apps., app. or none; a group's own three,
# and its apps' prefixed group.apps. (Marathon logs and drops the rest; Meseta refuses them: 400).
APP_EMBEDS = ("tasks", "counts", "deployments", "readiness", "lastTaskFailure", "failures", "taskStats", "queue")
APP_EMBED_VALUES = frozenset(prefix + name for prefix in ("", "app.", "apps.") for name in APP_EMBEDS)
GROUP_EMBED_VALUES = frozenset({"group.groups", "group.apps", "group.pods", *(f"group.apps.{n}" for n in APP_EMBEDS)})


def embed_names(values: Iterable[str]) -> set[str]:
    """``embed`` query values without their ``apps.``/``app.`` prefix; ``failures`` expanded."""
    names: set[str] = set()
    for value in values:
        name = next((value[len(p):] for p in EMBED_PREFIXES if value.startswith(p)), value)
        names.update(("tasks", "lastTaskFailure", "deployments") if name == "failures" else (name,))
    return names


def app_definition_json(app: App) -> dict[str, Any]:
    """The bare app definition (versions, queue, events); nested values are shared with ``app``."""
    result = _pick(app, APP_KEYS)
    host = network_mode(app.get("networks") or []) == HOST
    if "container" in app:
        result["container"] = _container_json(app["container"], host)
    if not host:
        result.pop("portDefinitions", None)
    else:
        result["portDefinitions"] = [_pick(p, PORT_DEFINITION_KEYS) for p in app.get("portDefinitions", [])]
    result["readinessChecks"] = [_pick(r, READINESS_KEYS) for r in app.get("readinessChecks", [])]
    if "residency" in app:
        result["residency"] = _pick(app["residency"], RESIDENCY_KEYS)
    return result


def _container_json(container: Mapping[str, Any], host: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"type": container.get("type", "DOCKER"),
                              "volumes": [_pick(v, VOLUME_KEYS) for v in container.get("volumes", [])]}
    if "docker" in container:
        result["docker"] = {k: v for k, v in container["docker"].items() if k not in ("network", "portMappings")}
    if not host and "portMappings" in container:
        result["portMappings"] = [_pick(m, PORT_MAPPING_KEYS) for m in container["portMappings"]]
    return result


def app_counts(app: App, instances: Iterable[Instance]) -> dict[str, int]:
    """tasksStaged/Running/Healthy/Unhealthy over the active instances (healthy needs health checks)."""
    checked = bool(app.get("healthChecks"))
    staged = running = healthy = unhealthy = 0
    for instance in instances:
        staged += instance.state in ("TASK_STAGING", "TASK_STARTING")
        running += instance.running
        healthy += checked and instance.running and instance.healthy is True
        unhealthy += checked and instance.active and instance.healthy is False
    return {"tasksStaged": staged, "tasksRunning": running, "tasksHealthy": healthy, "tasksUnhealthy": unhealthy}


def app_json(app: App, *, instances: Sequence[Instance], deployments: Sequence[str],
             last_failure: Mapping[str, Any] | None = None, embed: Collection[str] = frozenset(),
             now: float = 0.0, tasks: Sequence[Mapping[str, Any]] | None = None,
             readiness: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """AppInfo: the definition, counts and deployment ids always; the rest when ``embed`` names it.

    ``embed`` takes :func:`embed_names` output: tasks, lastTaskFailure, taskStats, readiness.
    ``tasks`` overrides the rendering of ``instances`` (to carry health results or IPs);
    ``now`` dates the task lifetimes in taskStats.
    """
    active = [i for i in instances if i.active]
    result = app_definition_json(app)
    result.update(app_counts(app, active))
    result["deployments"] = [{"id": plan_id} for plan_id in deployments]
    if "tasks" in embed:
        ports = service_ports(app)
        result["tasks"] = list(tasks) if tasks is not None else [task_json(i, app, service_ports_of_app=ports)
                                                                 for i in active]
    if "lastTaskFailure" in embed and last_failure is not None:
        result["lastTaskFailure"] = dict(last_failure)
    if "taskStats" in embed:
        result["taskStats"] = task_stats_json(app, active, now)
    if "readiness" in embed:
        result["readinessCheckResults"] = list(readiness)
    return result


def task_stats_json(app: App, instances: Sequence[Instance], now: float) -> dict[str, Any]:
    """taskStats: counts and lifetimes per category; categories without tasks are left out."""
    info = app.get("versionInfo") or {}
    scaled_at, changed_at = info.get("lastScalingAt", ""), info.get("lastConfigChangeAt", "")
    categories = {
        "startedAfterLastScaling": [i for i in instances if timestamp(i.staged_at) >= scaled_at],
        "withLatestConfig": [i for i in instances if i.version >= changed_at],
        "withOutdatedConfig": [i for i in instances if i.version < changed_at],
        "totalSummary": list(instances),
    }
    return {name: {"stats": _stats(app, members, now)} for name, members in categories.items() if members}


def _stats(app: App, instances: Sequence[Instance], now: float) -> dict[str, Any]:
    counts = app_counts(app, instances)
    result: dict[str, Any] = {"counts": {"staged": counts["tasksStaged"], "running": counts["tasksRunning"],
                                         "healthy": counts["tasksHealthy"], "unhealthy": counts["tasksUnhealthy"]}}
    lives = [now - i.started_at for i in instances if i.running and i.started_at is not None]
    if lives:
        result["lifeTime"] = {"averageSeconds": statistics.fmean(lives), "medianSeconds": statistics.median(lives)}
    return result


# ----------------------------------------------------------------------------- tasks


@dataclass(frozen=True, slots=True)
class HealthResult:
    """One health check's latest state for one task (times are epoch seconds)."""

    alive: bool
    consecutive_failures: int = 0
    first_success: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    last_failure_cause: str | None = None


def ip_addresses_json(instance: Instance) -> list[dict[str, str]]:
    """Task ``ipAddresses``: what the latest status's container_status reported."""
    return [{"ipAddress": str(ip.get("ipAddress")), "protocol": str(ip.get("protocol", "IPv4"))}
            for ip in instance.ip_addresses]


def task_state(instance: Instance) -> str:
    """The state a task shows: TASK_KILLING while its load balancers drain it (deploy.drain)."""
    return "TASK_KILLING" if instance.draining else instance.state


def task_json(instance: Instance, app: App, *, health: Sequence[HealthResult] | None = None,
              service_ports_of_app: Sequence[int] | None = None) -> dict[str, Any]:
    """Task: healthCheckResults only when the app has health checks (derived from ``healthy`` unless
    given). ``service_ports_of_app``: the app's, when many of its tasks are rendered. A draining
    task (deploy.drain) is TASK_KILLING: no key of Meseta's own, which marathon 0.13.0 would refuse."""
    result: dict[str, Any] = {
        "id": instance.task_id, "appId": instance.app_id, "host": instance.host, "slaveId": instance.agent_id,
        "state": task_state(instance),
        "stagedAt": timestamp(instance.staged_at), "version": instance.version,
        "ports": list(instance.host_ports),
        "servicePorts": list(service_ports_of_app) if service_ports_of_app is not None else service_ports(app),
        "ipAddresses": ip_addresses_json(instance),
    }
    if instance.started_at is not None:
        result["startedAt"] = timestamp(instance.started_at)
    if app.get("healthChecks"):
        if health is None:
            health = [] if instance.healthy is None else [HealthResult(
                alive=instance.healthy, consecutive_failures=instance.health_failures,
                first_success=instance.health_first_success, last_success=instance.health_last_success,
                last_failure=instance.health_last_failure, last_failure_cause=instance.health_failure_cause)]
        result["healthCheckResults"] = [health_result_json(r, instance.task_id) for r in health]
    for key, agent_field in (("region", "@region"), ("zone", "@zone")):
        if agent_field in instance.agent_fields:
            result[key] = instance.agent_fields[agent_field]
    if "role" in app:
        result["role"] = app["role"]
    return result


def health_result_json(result: HealthResult, task_id: str) -> dict[str, Any]:
    return _without_none({
        "alive": result.alive, "consecutiveFailures": result.consecutive_failures,
        "firstSuccess": _maybe_timestamp(result.first_success), "lastSuccess": _maybe_timestamp(result.last_success),
        "lastFailure": _maybe_timestamp(result.last_failure), "lastFailureCause": result.last_failure_cause,
        "taskId": task_id, "instanceId": task_id,
    })


def task_failure_json(instance: Instance, *, at: float) -> dict[str, Any]:
    """lastTaskFailure for a terminal instance."""
    return {"appId": instance.app_id, "host": instance.host, "message": instance.message, "taskId": instance.task_id,
            "instanceId": instance.task_id, "slaveId": instance.agent_id, "state": instance.state,
            "timestamp": timestamp(at), "version": instance.version}


# ----------------------------------------------------------------------------- groups and deployments


def group_json(group_id: str, *, apps: Sequence[Mapping[str, Any]], groups: Sequence[Mapping[str, Any]],
               dependencies: Sequence[str] = (), version: str) -> dict[str, Any]:
    """Group: ``apps`` and ``groups`` are already rendered (AppInfo / group_json)."""
    return {"id": group_id, "apps": list(apps), "groups": list(groups), "dependencies": list(dependencies),
            "version": version, "pods": []}


class GroupLike(Protocol):
    @property
    def dependencies(self) -> Sequence[str]: ...
    @property
    def version(self) -> str: ...


class GroupTree(Protocol):
    """A flat root: apps by id, explicit groups by id (intermediate groups are implied by the paths)."""

    @property
    def apps(self) -> Mapping[str, App]: ...
    @property
    def groups(self) -> Mapping[str, GroupLike]: ...
    @property
    def version(self) -> str: ...


def tree_json(root: GroupTree, group_id: str = app_ids.ROOT, *,
              render_app: Callable[[App], Mapping[str, Any]] = app_definition_json) -> dict[str, Any] | None:
    """The nested Group JSON of ``group_id`` (None if no such group); implied groups get the root's version."""
    children: dict[str, set[str]] = {app_ids.ROOT: set()}
    apps: dict[str, list[str]] = {}

    def link(gid: str) -> None:  # gid and its ancestors become groups, each listed under its parent
        while gid != app_ids.ROOT and gid not in linked:
            linked.add(gid)
            children.setdefault(gid, set())
            gid, child = app_ids.parent(gid), gid
            children.setdefault(gid, set()).add(child)

    linked: set[str] = set()
    for gid in root.groups:
        link(gid)
    for app_id in root.apps:
        link(app_ids.parent(app_id))
        apps.setdefault(app_ids.parent(app_id), []).append(app_id)
    if group_id not in children:
        return None

    def build(gid: str) -> dict[str, Any]:
        group = root.groups.get(gid)
        return group_json(gid, apps=[render_app(root.apps[a]) for a in sorted(apps.get(gid, ()))],
                          groups=[build(child) for child in sorted(children[gid])],
                          dependencies=list(group.dependencies) if group else (),
                          version=group.version if group and group.version else root.version)

    return build(group_id)


def plan_group_json(root: GroupTree) -> dict[str, Any]:
    """The root group as deployment events carry it (``plan.original`` / ``plan.target``)."""
    return tree_json(root) or group_json(app_ids.ROOT, apps=[], groups=[], version=root.version)


def _steps_json(steps: Sequence[Sequence[Action]]) -> list[dict[str, Any]]:
    return [{"actions": [{"action": action, "app": app_id} for action, app_id in step]} for step in steps]


def deployment_json(plan_id: str, version: str, steps: Sequence[Sequence[Action]], *, current_step: int,
                    affected_apps: Sequence[str] | None = None,
                    readiness: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> dict[str, Any]:
    """Deployment (GET /v2/deployments); ``current_step`` is 1-based, 0 before the first step starts."""
    current = steps[current_step - 1] if 1 <= current_step <= len(steps) else []
    affected = affected_apps if affected_apps is not None else sorted({app for step in steps for _, app in step})
    return {
        "id": plan_id, "version": version, "affectedApps": list(affected), "affectedPods": [],
        "steps": _steps_json(steps),
        "currentActions": [{"action": action, "app": app_id,
                            "readinessCheckResults": list((readiness or {}).get(app_id, ()))}
                           for action, app_id in current],
        "currentStep": current_step, "totalSteps": len(steps),
    }


def plan_json(plan_id: str, version: str, steps: Sequence[Sequence[Action]], *, original: Mapping[str, Any],
              target: Mapping[str, Any]) -> dict[str, Any]:
    """The heavy plan carried by deployment_* events: original and target root groups (group_json)."""
    return {"id": plan_id, "version": version, "steps": _steps_json(steps), "original": dict(original),
            "target": dict(target)}


def readiness_result_json(name: str, task_id: str, ready: bool,
                          last_response: tuple[int, str, str] | None = None) -> dict[str, Any]:
    """One readiness check result; ``last_response`` is (status, content type, body)."""
    result: dict[str, Any] = {"name": name, "taskId": task_id, "ready": ready}
    if last_response is not None:
        status, content_type, body = last_response
        result["lastResponse"] = {"status": status, "contentType": content_type, "body": body}
    return result


def deployment_result(plan_id: str, version: str) -> dict[str, str]:
    """The body of every deployable operation (also sent as the Marathon-Deployment-Id header)."""
    return {"deploymentId": plan_id, "version": version}


# ----------------------------------------------------------------------------- queue

def queue_item_json(app: App, *, count: int, time_left_seconds: float, overdue: bool, since: float,
                    summary: Mapping[str, Any] | None = None,
                    last_unused_offers: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """One /v2/queue entry; ``overdue`` true means waiting for offers, false means backed off.
    ``summary``: the processedOffersSummary (``launch_stats``), empty counts when none."""
    result = {"app": app_definition_json(app), "count": count,
              "delay": {"timeLeftSeconds": max(0, int(-(-time_left_seconds // 1))), "overdue": overdue},
              "since": timestamp(since),
              "processedOffersSummary": dict(summary) if summary is not None else {
                  "processedOffersCount": 0, "unusedOffersCount": 0,
                  "rejectSummaryLastOffers": [], "rejectSummaryLaunchAttempt": []}}
    if last_unused_offers is not None:
        result["lastUnusedOffers"] = list(last_unused_offers)
    return result


# ----------------------------------------------------------------------------- info and errors

MARATHON_CONFIG_KEYS = frozenset({
    "checkpoint", "executor", "failover_timeout", "features", "framework_name", "ha", "hostname",
    "leader_proxy_connection_timeout_ms", "leader_proxy_read_timeout_ms", "local_port_min", "local_port_max",
    "maintenance_mode", "master", "mesos_leader_ui_url", "mesos_role", "mesos_user", "new_group_enforce_role",
    "webui_url", "reconciliation_initial_delay", "reconciliation_interval", "task_launch_timeout",
    "marathon_store_timeout", "task_reservation_timeout", "access_control_allow_origin", "decline_offer_duration",
    "default_network_name", "env_vars_prefix", "launch_token", "launch_token_refresh_interval",
    "max_instances_per_offer", "mesos_bridge_name", "mesos_heartbeat_failure_threshold", "mesos_heartbeat_interval",
    "min_revive_offers_interval", "offer_matching_timeout", "on_elected_prepare_timeout",
    "revive_offers_for_new_apps", "revive_offers_repetitions", "scale_apps_initial_delay", "scale_apps_interval",
    "store_cache", "task_launch_confirm_timeout", "task_lost_expunge_initial_delay", "task_lost_expunge_interval",
})
ZOOKEEPER_CONFIG_KEYS = frozenset({
    "zk", "zk_future_timeout", "zk_hosts", "zk_max_versions", "zk_path", "zk_session_timeout", "zk_state",
    "zk_timeout", "zk_connection_timeout", "zk_compression", "zk_compression_threshold", "zk_max_node_size",
})
HTTP_CONFIG_KEYS = frozenset({"assets_path", "http_port", "https_port"})
EVENT_SUBSCRIBER_KEYS = frozenset({"type", "http_endpoints"})


def info_json(*, version: str, leader: str | None, elected: bool, framework_id: str | None,
              marathon_config: Mapping[str, Any], zookeeper_config: Mapping[str, Any],
              http_config: Mapping[str, Any], name: str = "marathon", buildref: str = "meseta",
              event_subscriber: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """GET /v2/info; keys the client does not know are dropped from each config object."""
    result: dict[str, Any] = {
        "name": name, "version": version, "buildref": buildref, "elected": elected, "leader": leader,
        "frameworkId": framework_id, "marathon_config": _pick(marathon_config, MARATHON_CONFIG_KEYS),
        "zookeeper_config": _pick(zookeeper_config, ZOOKEEPER_CONFIG_KEYS),
        "http_config": _pick(http_config, HTTP_CONFIG_KEYS),
    }
    if event_subscriber is not None:
        result["event_subscriber"] = _pick(event_subscriber, EVENT_SUBSCRIBER_KEYS)
    return result


def error_body(message: str, problems: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """``{"message", "details": [{"path", "errors"}]}``, details grouped by path in first-seen order."""
    grouped: dict[str, list[str]] = {}
    for path, text in problems:
        errors = grouped.setdefault(path, [])
        if text not in errors:
            errors.append(text)
    body: dict[str, Any] = {"message": message}
    if grouped:
        body["details"] = [{"path": path, "errors": errors} for path, errors in grouped.items()]
    return body


def invalid_body(problems: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The 422 body for a rejected definition."""
    return error_body(INVALID, problems)


def locked_body(deployment_ids: Sequence[str]) -> dict[str, Any]:
    """The 409 body when running deployments hold the app (``?force=true`` overrides)."""
    first = deployment_ids[0] if deployment_ids else ""
    return {"message": "App is locked by one or more deployments. Override with the option '?force=true'. "
                       f"View details at '/v2/deployments/{first}'.",
            "deployments": [{"id": plan_id} for plan_id in deployment_ids]}
