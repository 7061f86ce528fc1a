"""Operator calls at the edge (``POST /api/v1`` and the legacy endpoints, spec 3.2): every payload
becomes a frozen record, every field checked, before any state or registry changes::

    UPDATE_WEIGHTS             Weights({role: weight})
    UPDATE_QUOTA               QuotaUpdate({role: QuotaConfig}, force)
    SET_QUOTA / REMOVE_QUOTA   QuotaUpdate (guarantee = limit, ``exclusive``) / QuotaRemoval(role)
    UPDATE_MAINTENANCE_SCHEDULE  Schedule(windows)
    START_/STOP_MAINTENANCE    Machines(kind, machines)
    RESERVE_/UNRESERVE_RESOURCES, CREATE_/DESTROY_VOLUMES   AgentResources(kind, agent_id, resources)
    DRAIN_AGENT                Drain(agent_id, max_grace_seconds, mark_gone)
    DEACTIVATE_/REACTIVATE_AGENT, MARK_AGENT_GONE            AgentCall(kind, agent_id)
    TEARDOWN                   TeardownFramework(framework_id)

Stored settings (weights, quota, maintenance) are written by the master itself and read back
with the same parsers, so a registry value can never hold what a call could not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from meseta.core.resources import MAX_SCALAR, UNRESERVED, Resources
from meseta.master.validation.errors import CallRejected, invalid
from meseta.master.validation.fields import NANOS, checked_role, raw_id, resources

SETTING_CALLS = ("UPDATE_WEIGHTS", "UPDATE_QUOTA", "SET_QUOTA", "REMOVE_QUOTA", "UPDATE_MAINTENANCE_SCHEDULE",
                 "START_MAINTENANCE", "STOP_MAINTENANCE")
RESOURCE_CALLS = {"RESERVE_RESOURCES": "resources", "UNRESERVE_RESOURCES": "resources",
                  "CREATE_VOLUMES": "volumes", "DESTROY_VOLUMES": "volumes"}
AGENT_CALLS = ("DEACTIVATE_AGENT", "REACTIVATE_AGENT", "MARK_AGENT_GONE")
MAX_NANOS = 2**63 - 1  # a TimeInfo or DurationInfo is int64 nanoseconds

Machine = tuple[str, str]  # (hostname, ip): Mesos's MachineID, either may be empty but not both


@dataclass(frozen=True, slots=True)
class Window:
    machines: tuple[Machine, ...]
    start_ns: int
    duration_ns: int | None

    def unavailability(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": {"nanoseconds": self.start_ns}}
        if self.duration_ns is not None:
            out["duration"] = {"nanoseconds": self.duration_ns}
        return out


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    guarantees: dict[str, float]
    limits: dict[str, float]


@dataclass(frozen=True, slots=True)
class Weights:
    weights: dict[str, float]


@dataclass(frozen=True, slots=True)
class QuotaUpdate:
    configs: dict[str, QuotaConfig]
    force: bool
    exclusive: bool = False  # SET_QUOTA: refused if the role has a quota already


@dataclass(frozen=True, slots=True)
class QuotaRemoval:
    role: str


@dataclass(frozen=True, slots=True)
class Schedule:
    windows: tuple[Window, ...]


@dataclass(frozen=True, slots=True)
class Machines:
    kind: str  # START_MAINTENANCE or STOP_MAINTENANCE
    machines: tuple[Machine, ...]


@dataclass(frozen=True, slots=True)
class AgentResources:
    kind: str  # RESERVE_RESOURCES, UNRESERVE_RESOURCES, CREATE_VOLUMES or DESTROY_VOLUMES
    agent_id: str
    resources: Resources


@dataclass(frozen=True, slots=True)
class Drain:
    agent_id: str
    max_grace_seconds: float | None
    mark_gone: bool


@dataclass(frozen=True, slots=True)
class AgentCall:
    kind: str  # DEACTIVATE_AGENT, REACTIVATE_AGENT or MARK_AGENT_GONE
    agent_id: str


@dataclass(frozen=True, slots=True)
class TeardownFramework:
    framework_id: str


Setting = Weights | QuotaUpdate | QuotaRemoval | Schedule | Machines
AgentAction = AgentResources | Drain | AgentCall | TeardownFramework


def parse_setting(kind: str, payload: dict[str, Any]) -> Setting:
    if kind == "UPDATE_WEIGHTS":
        return Weights(parse_weights(payload.get("weight_infos")))
    if kind == "UPDATE_QUOTA":
        return QuotaUpdate(parse_quota_configs(payload.get("quota_configs")), _flag(payload, "force"))
    if kind == "SET_QUOTA":
        return parse_set_quota(payload.get("quota_request"))
    if kind == "REMOVE_QUOTA":
        return QuotaRemoval(quota_role(payload.get("role"), "role"))
    if kind == "UPDATE_MAINTENANCE_SCHEDULE":
        return Schedule(parse_schedule(payload.get("schedule")))
    if kind in ("START_MAINTENANCE", "STOP_MAINTENANCE"):
        return Machines(kind, parse_machines(payload.get("machines")))
    raise CallRejected(501, f"Operator call '{kind}' is not implemented")


def parse_agent_action(kind: str, payload: dict[str, Any]) -> AgentAction:
    if kind == "TEARDOWN":
        return TeardownFramework(raw_id(payload.get("framework_id"), "teardown.framework_id"))
    where = kind.lower()
    agent_id = raw_id(payload.get("agent_id"), f"{where}.agent_id")
    if kind in RESOURCE_CALLS:
        field = RESOURCE_CALLS[kind]
        if not isinstance(payload.get(field), list):
            raise invalid(f"'{where}.{field}' must be a list of Resource objects")
        return AgentResources(kind, agent_id, resources(payload[field], f"{where}.{field}"))
    if kind == "DRAIN_AGENT":
        grace = payload.get("max_grace_period")
        seconds = None if grace is None else duration_nanos(grace, "drain_agent.max_grace_period") / NANOS
        return Drain(agent_id, seconds, _flag(payload, "mark_gone"))
    if kind in AGENT_CALLS:
        return AgentCall(kind, agent_id)
    raise CallRejected(501, f"Operator call '{kind}' is not implemented")


def _flag(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name, False)
    if not isinstance(value, bool):
        raise invalid(f"'{name}' must be a boolean")
    return value


# ----------------------------------------------------------------------------- weights and quota


def _amount(value: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(f"'{where}' must be a finite number")
    if value < 0 or (positive and value == 0) or value > MAX_SCALAR:
        bound = "positive" if positive else "non-negative"
        raise invalid(f"'{where}' must be {bound} and at most {MAX_SCALAR:g}, got {value}")
    return float(value)


def parse_weights(infos: Any) -> dict[str, float]:
    if not isinstance(infos, list):
        raise invalid("'weight_infos' must be a list of {role, weight}")
    weights: dict[str, float] = {}
    for i, info in enumerate(infos):
        if not isinstance(info, dict):
            raise invalid(f"'weight_infos[{i}]' must be an object")
        role = checked_role(info.get("role"), f"weight_infos[{i}].role")
        if role == UNRESERVED:
            raise invalid(f"'weight_infos[{i}].role' '*' cannot have a weight")
        weights[role] = _amount(info.get("weight"), f"weight_infos[{i}].weight", positive=True)
    return weights


def _scalar_map(value: Any, where: str) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"'{where}' must be an object of name -> {{\"value\": number}}")
    out: dict[str, float] = {}
    for name, quantity in value.items():
        amount = quantity.get("value") if isinstance(quantity, dict) else None
        out[name] = _amount(amount, f"{where}.{name}.value")
    return out


def quota_role(value: Any, where: str) -> str:
    """A role quota may be set on: a valid, top-level role other than the default role '*'."""
    role = checked_role(value, where)
    if role == UNRESERVED:
        raise invalid(f"'{where}': quota cannot be set for the default role '*'")
    if "/" in role:
        raise invalid(f"'{where}' '{role}': quota can only be set on top-level roles")
    return role


def parse_quota_configs(configs: Any) -> dict[str, QuotaConfig]:
    if not isinstance(configs, list):
        raise invalid("'quota_configs' must be a list of QuotaConfig")
    parsed: dict[str, QuotaConfig] = {}
    for i, config in enumerate(configs):
        where = f"quota_configs[{i}]"
        if not isinstance(config, dict):
            raise invalid(f"'{where}' must be an object")
        role = quota_role(config.get("role"), f"{where}.role")
        guarantees = _scalar_map(config.get("guarantees"), f"{where}.guarantees")
        limits = _scalar_map(config.get("limits"), f"{where}.limits")
        for name, amount in guarantees.items():
            if name in limits and limits[name] < amount:
                raise invalid(f"{where}: guarantee of '{name}' ({amount}) is above its limit ({limits[name]})")
        parsed[role] = QuotaConfig(guarantees, limits)
    return parsed


def parse_set_quota(request: Any) -> QuotaUpdate:
    """SET_QUOTA / POST /quota: ``{role, guarantee: [Resource], force}`` (guarantee = limit)."""
    if not isinstance(request, dict):
        raise invalid("'quota_request' must be an object")
    role = quota_role(request.get("role"), "quota_request.role")
    guarantee = request.get("guarantee")
    if not isinstance(guarantee, list) or not guarantee:
        raise invalid("'quota_request.guarantee' must be a non-empty list of scalar resources")
    amounts: dict[str, float] = {}
    for i, item in enumerate(guarantee):
        named = isinstance(item, dict) and isinstance(item.get("name"), str)
        if not named or item.get("type", "SCALAR") != "SCALAR":
            raise invalid(f"'quota_request.guarantee[{i}]' must be a named SCALAR resource")
        if item.get("role", UNRESERVED) != UNRESERVED or item.get("reservations"):
            raise invalid(f"'quota_request.guarantee[{i}]' must not be reserved")
        scalar = item.get("scalar")
        value = _amount(scalar.get("value") if isinstance(scalar, dict) else None,
                        f"quota_request.guarantee[{i}].scalar.value")
        amounts[item["name"]] = min(amounts.get(item["name"], 0.0) + value, MAX_SCALAR)
    force = request.get("force", False)
    if not isinstance(force, bool):
        raise invalid("'quota_request.force' must be a boolean")
    return QuotaUpdate({role: QuotaConfig(dict(amounts), dict(amounts))}, force, exclusive=True)


# ----------------------------------------------------------------------------- maintenance


def machine_key(machine_id: Any, where: str) -> Machine:
    if not isinstance(machine_id, dict):
        raise invalid(f"'{where}' must be an object {{hostname, ip}}")
    hostname, ip = machine_id.get("hostname") or "", machine_id.get("ip") or ""
    if not isinstance(hostname, str) or not isinstance(ip, str) or not (hostname or ip):
        raise invalid(f"'{where}' needs a 'hostname' or an 'ip' (strings)")
    return hostname, ip


def machine_json(key: Machine) -> dict[str, str]:
    out = {}
    if key[0]:
        out["hostname"] = key[0]
    if key[1]:
        out["ip"] = key[1]
    return out


def duration_nanos(value: Any, where: str) -> int:
    """A duration as Mesos JSON gives it, in whole nanoseconds: ``{"nanoseconds": n}``,
    ``{"seconds": s, "nanos": n}`` (google.protobuf.Duration) or ``"10s"``."""
    try:
        if isinstance(value, dict) and "nanoseconds" in value:
            nanos = _whole(value["nanoseconds"])
        elif isinstance(value, dict):
            nanos = _whole(value.get("seconds", 0) or 0) * NANOS + _whole(value.get("nanos", 0) or 0)
        elif isinstance(value, str) and value.endswith("s"):
            nanos = round(float(value[:-1]) * NANOS)
        else:
            raise invalid(f"'{where}' must be a duration ({{\"nanoseconds\": n}} or \"<seconds>s\")")
    except (TypeError, ValueError, OverflowError):
        raise invalid(f"'{where}' is not a valid duration") from None
    if not 0 <= nanos <= MAX_NANOS:
        raise invalid(f"'{where}' must be from 0 to {MAX_NANOS} nanoseconds")
    return nanos


def _whole(value: Any) -> int:
    """An integer given as a JSON number (whole) or a numeric string, as Mesos parses int64."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return int(value)


def parse_machines(machines: Any) -> tuple[Machine, ...]:
    if not isinstance(machines, list) or not machines:
        raise invalid("'machines' must be a non-empty list of {hostname, ip}")
    return tuple(machine_key(m, f"machines[{i}]") for i, m in enumerate(machines))


def parse_schedule(schedule: Any) -> tuple[Window, ...]:
    if not isinstance(schedule, dict):
        raise invalid("'schedule' must be an object with 'windows'")
    windows_json = schedule.get("windows") or []
    if not isinstance(windows_json, list):
        raise invalid("'schedule.windows' must be a list")
    windows: list[Window] = []
    seen: set[Machine] = set()
    for i, raw in enumerate(windows_json):
        where = f"schedule.windows[{i}]"
        if not isinstance(raw, dict):
            raise invalid(f"'{where}' must be an object")
        ids = raw.get("machine_ids")
        if not isinstance(ids, list) or not ids:
            raise invalid(f"'{where}.machine_ids' must be a non-empty list")
        machines = tuple(machine_key(m, f"{where}.machine_ids[{j}]") for j, m in enumerate(ids))
        for key in machines:
            if key in seen:
                raise invalid(f"{where}: machine {machine_json(key)} is in more than one window")
            seen.add(key)
        unavailability = raw.get("unavailability")
        if not isinstance(unavailability, dict) or "start" not in unavailability:
            raise invalid(f"'{where}.unavailability.start' is required")
        start = duration_nanos(unavailability["start"], f"{where}.unavailability.start")
        duration = unavailability.get("duration")
        duration_ns = None if duration is None else duration_nanos(duration, f"{where}.unavailability.duration")
        windows.append(Window(machines, start, duration_ns))
    return tuple(windows)
