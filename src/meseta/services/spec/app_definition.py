"""App definitions: Marathon JSON in, the normalised :data:`~meseta.services.model.App` out; pure.

:func:`normalise` validates every field and fills every default, returning the app or the
problems (never both, never raising). The normalised layout, which everything downstream
reads (optional keys are absent when unset)::

    id                       "/prod/web" (absolute)
    cmd? | args?             at least one of cmd/args, or a container with an image
    user?, role?, acceptedResourceRoles?, taskKillGracePeriodSeconds?, container?, residency?
    instances 1, cpus 1.0, mem 128.0, disk 0.0, gpus 0, executor ""
    env {name: str | {"secret": name}}, secrets {name: {"source"}}, labels {str: str}
    constraints [[field, OP(, value)]], fetch [{uri, extract, executable, cache, destPath?}]
    backoffSeconds 1, backoffFactor 1.15, maxLaunchDelaySeconds 300
    networks [{mode, name?, labels?}], portDefinitions [...] (host mode, else []), requirePorts false
    healthChecks [...], readinessChecks [...]     (see app_checks), dependencies [abs ids]
    upgradeStrategy {minimumHealthCapacity 1, maximumOverCapacity 1}
    unreachableStrategy {inactiveAfterSeconds 0, expungeAfterSeconds 0} | "disabled"
    killSelection "YOUNGEST_FIRST", version <now>, versionInfo {lastScalingAt, lastConfigChangeAt}

Keys Meseta does not read are refused naming them (422), except what GET adds (tasks, counts...).
A normalised app normalises to itself.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from meseta.core.resources import MAX_SCALAR, validate_role
from meseta.services.model import App
from meseta.services.spec import app_ids
from meseta.services.spec.app_checks import read_health_checks, read_readiness_checks
from meseta.services.spec.app_fields import (
    EXPECTED_OBJECT,
    EXPECTED_STRING,
    KILL_SELECTIONS,
    Problem,
    Reader,
    read_constraints,
    read_dependencies,
    read_env,
    read_fetch,
    read_residency,
    read_secrets,
    read_unreachable_strategy,
    read_upgrade_strategy,
)
from meseta.services.spec.app_ports import (
    CONTAINER,
    HOST,
    LEGACY_DOCKER_NETWORKS,
    ServicePortsExhausted,
    assign_service_ports,
    changed_service_ports,
    network_mode,
    port_entries,
    port_names,
    read_networking,
    service_port_owners,
    service_ports,
)

__all__ = [
    "Problem", "ServicePortsExhausted", "apply_partial_update", "assign_service_ports", "carry_version_info",
    "changed_service_ports", "is_scale_only", "network_of", "normalise", "rollback_target", "service_port_owners",
    "service_ports",
]

CMD_ARGS_CONTAINER = "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
VERSION_ONLY = "The 'version' field may only be combined with the 'id' field."
DEFINITION_KEYS = frozenset({
    "id", "cmd", "args", "user", "env", "instances", "cpus", "mem", "disk", "gpus", "executor", "constraints",
    "fetch", "backoffSeconds", "backoffFactor", "maxLaunchDelaySeconds", "container", "healthChecks",
    "readinessChecks", "dependencies", "upgradeStrategy", "labels", "acceptedResourceRoles", "version",
    "versionInfo", "killSelection", "unreachableStrategy", "requirePorts", "portDefinitions", "ports", "networks",
    "secrets", "taskKillGracePeriodSeconds", "role", "residency", "ipAddress", "uris",
})  # what normalise reads (ipAddress, uris and ports: deprecated forms)
# What GET /v2/apps/{id} adds to a definition: a client PUTting back what it read sends them along.
APP_INFO_KEYS = frozenset({"tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments", "tasks",
                           "lastTaskFailure", "taskStats", "readinessCheckResults", "queue"})
_NOT_CONFIG = ("instances", "version", "versionInfo")  # what a scale changes; the rest is config


def normalise(raw: Any, *, now_version: str, base: str = app_ids.ROOT) -> tuple[App | None, list[Problem]]:
    """Validate ``raw`` and fill defaults; relative ids resolve against the group ``base``."""
    problems: list[Problem] = []
    if not isinstance(raw, Mapping):
        return None, [Problem("/", EXPECTED_OBJECT)]
    app = Reader(raw, "", problems)
    app.only(DEFINITION_KEYS | APP_INFO_KEYS)
    app_id = _read_id(app, base)
    secrets = read_secrets(app)
    net = read_networking(app, secrets)
    result: App = {"id": app_id}
    _read_command(app, result, net.container)
    result.update(
        instances=app.integer("instances", 1, low=0),
        cpus=app.number("cpus", 1.0, low=0.001, high=MAX_SCALAR),  # more than any agent has: 422, not a
        mem=app.number("mem", 128.0, low=0, high=MAX_SCALAR),       # task the framework cannot even build
        disk=app.number("disk", 0.0, low=0, high=MAX_SCALAR),
        gpus=app.integer("gpus", 0, low=0),
        executor=app.string("executor", "") or "",
        env=read_env(app, secrets),
        secrets=secrets,
        labels=app.string_map("labels"),
        constraints=read_constraints(app),
        fetch=read_fetch(app),
        backoffSeconds=app.integer("backoffSeconds", 1, low=0),
        backoffFactor=app.number("backoffFactor", 1.15, low=1),
        maxLaunchDelaySeconds=app.integer("maxLaunchDelaySeconds", 300, low=0),
        networks=net.networks,
        portDefinitions=net.port_definitions,
        requirePorts=net.require_ports,
    )
    if net.container is not None:
        result["container"] = net.container
    result.update(
        healthChecks=read_health_checks(app, len(port_entries(result)[1])),
        readinessChecks=read_readiness_checks(app, port_names(result)),
        dependencies=read_dependencies(app, app_id),
        upgradeStrategy=read_upgrade_strategy(app, resident=net.resident),
        unreachableStrategy=read_unreachable_strategy(app, resident=net.resident),
        killSelection=app.choice("killSelection", "YOUNGEST_FIRST", KILL_SELECTIONS),
        version=now_version,
        versionInfo={"lastScalingAt": now_version, "lastConfigChangeAt": now_version},
    )
    residency = read_residency(app, resident=net.resident)
    if residency is not None:
        result["residency"] = residency
    _read_placement(app, result)
    if result["gpus"] > 0 and (net.container or {}).get("type") == "DOCKER":
        app.problem("gpus", "GPU resources only work with the Mesos containerizer")
    return (None, list(dict.fromkeys(problems))) if problems else (result, [])  # a shared sub-object may repeat one


def _read_id(app: Reader, base: str) -> str:
    raw_id = app.string("id", required=True)
    if raw_id is None:
        return app_ids.ROOT
    for error in app_ids.validate_id(raw_id, base=base):
        app.problem("id", error)
    return app_ids.canonical(raw_id, base)


def _read_command(app: Reader, result: App, container: Mapping[str, Any] | None) -> None:
    cmd = app.string("cmd")
    if cmd == "":
        app.problem("cmd", "must not be an empty string")
    args = app.strings("args") or []
    has_image = container is not None and "docker" in container
    if not ((bool(cmd) != bool(args)) or (not (cmd and args) and has_image)):
        app.problem(None, CMD_ARGS_CONTAINER)
    if cmd:
        result["cmd"] = cmd
    if args:
        result["args"] = args


def _read_placement(app: Reader, result: App) -> None:
    """The optional who-and-where fields: user, role, acceptedResourceRoles, kill grace period."""
    user = app.string("user", non_empty=True)
    if user is not None:
        result["user"] = user
    role = app.string("role", non_empty=True)
    if role is not None and (problem := validate_role(role)):
        app.problem("role", problem)
    elif role is not None:
        result["role"] = role
    roles = app.strings("acceptedResourceRoles")
    if roles is not None and not roles:
        app.problem("acceptedResourceRoles", "must not be empty")
    for index, name in enumerate(roles or []):
        if problem := validate_role(name):
            app.problems.append(Problem(f"/acceptedResourceRoles({index})", problem))
    if roles:
        result["acceptedResourceRoles"] = sorted(set(roles), key=roles.index)
    grace = app.optional_integer("taskKillGracePeriodSeconds", low=0)
    if grace is not None:
        result["taskKillGracePeriodSeconds"] = grace


# ----------------------------------------------------------------------------- updates and versions


def apply_partial_update(old: App, patch: Mapping[str, Any]) -> dict[str, Any]:
    """The raw definition a ``PUT ?partialUpdate=true`` asks for: ``old`` with ``patch``'s fields over it.

    Fields absent (or null) in the patch keep their old values; ``id``, ``version`` and
    ``versionInfo`` never come from the patch. Setting one of a mutually exclusive pair (cmd/args,
    uris/fetch, ports/portDefinitions, networks/legacy docker.network or ipAddress) drops the other, and a
    change of network mode drops ports that belonged to the old mode. Normalise the result.
    """
    changes = {k: v for k, v in patch.items() if v is not None and k not in ("id", "version", "versionInfo")}
    merged = copy.deepcopy(dict(old))
    for given, cleared in (("cmd", "args"), ("args", "cmd"), ("uris", "fetch"), ("ports", "portDefinitions")):
        if given in changes and cleared not in changes:
            merged.pop(cleared, None)
    container = changes.get("container")
    docker = container.get("docker") if isinstance(container, Mapping) else None
    legacy_network = docker.get("network") if isinstance(docker, Mapping) else None
    legacy_address = changes.get("ipAddress")
    if (legacy_network is not None or legacy_address is not None) and "networks" not in changes:
        merged.pop("networks", None)
    merged.update(changes)
    new_mode = (CONTAINER if legacy_address is not None
                else LEGACY_DOCKER_NETWORKS.get(str(legacy_network), HOST) if legacy_network is not None
                else _mode_of(merged.get("networks")))
    discovery = legacy_address.get("discovery") if isinstance(legacy_address, Mapping) else None
    ports = discovery.get("ports") if isinstance(discovery, Mapping) else None
    if ports and "container" not in changes and isinstance(merged.get("container"), dict):
        merged["container"].pop("portMappings", None)  # the discovery ports replace them
    old_mode = _mode_of(old.get("networks"))
    if new_mode != old_mode and "ports" not in changes and "portDefinitions" not in changes:
        merged.pop("portDefinitions", None)  # they belonged to the old mode (in non-host modes always [])
    if new_mode == HOST and "container" not in changes and isinstance(merged.get("container"), dict):
        merged["container"].pop("portMappings", None)
    return merged


def _mode_of(networks: Any) -> str:
    if isinstance(networks, list) and networks and isinstance(networks[0], Mapping):
        return str(networks[0].get("mode", "container"))
    return HOST


def is_scale_only(old: App, new: App) -> bool:
    """True when ``new`` differs from ``old`` at most in ``instances`` (a scale, not a restart)."""
    return _config(old) == _config(new)


def _config(app: App) -> dict[str, Any]:
    return {k: v for k, v in app.items() if k not in _NOT_CONFIG}


def carry_version_info(old: App | None, new: App) -> App:
    """``new`` with its versionInfo: a scale keeps ``old``'s lastConfigChangeAt, anything else moves both."""
    result = dict(new)
    version = new["version"]
    if old is not None and is_scale_only(old, new):
        changed_at = old["versionInfo"]["lastConfigChangeAt"]
        result["versionInfo"] = {"lastScalingAt": version, "lastConfigChangeAt": changed_at}
    else:
        result["versionInfo"] = {"lastScalingAt": version, "lastConfigChangeAt": version}
    return result


def rollback_target(body: Any) -> tuple[str | None, list[Problem]]:
    """For a PUT body: the version it rolls back to (``{"version": v}``, optionally with ``id``), or None."""
    if not isinstance(body, Mapping) or body.get("version") is None:
        return None, []
    if any(value is not None for key, value in body.items() if key not in ("id", "version")):
        return None, [Problem("/", VERSION_ONLY)]
    if not isinstance(body["version"], str):
        return None, [Problem("/version", EXPECTED_STRING)]
    return body["version"], []


def network_of(app: App) -> str:
    """The app's network mode: host, container/bridge or container."""
    return network_mode(app.get("networks") or [])

