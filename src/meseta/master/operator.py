"""Operator settings and views: weights, quota and roles (pure, composed into the machine).

Settings change in two phases, so that the registry holds them before anyone sees them::

    prepare_*(payload) -> SaveSetting        validates (CallRejected 400 naming the field);
                                             nothing changes yet
    registry write (the actor, in a thread)
    apply_setting(SaveSetting, now) -> effects   the allocator and the machine take the value

Stored values (registry ``settings`` table)::

    weights      {"<role>": <weight>}
    quota        {"<role>": {"guarantees": {"cpus": 4.0}, "limits": {"cpus": 8.0}}}
    maintenance  see meseta.master.maintenance
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from meseta.alloc.quota import Quota, top_level
from meseta.core.resources import EMPTY, UNRESERVED, from_milli, to_milli, validate_role
from meseta.master.state import CallRejected, Effect, SaveSetting

if TYPE_CHECKING:
    from meseta.master.machine import MasterMachine


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CallRejected(400, f"{where} must be a finite number")
    return float(value)


def _role(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise CallRejected(400, f"{where} must be a string")
    problem = validate_role(value)
    if problem:
        raise CallRejected(400, f"{where}: {problem}")
    return value


def parse_weights(infos: Any) -> dict[str, float]:
    if not isinstance(infos, list):
        raise CallRejected(400, "'weight_infos' must be a list of {role, weight}")
    weights: dict[str, float] = {}
    for i, info in enumerate(infos):
        if not isinstance(info, dict):
            raise CallRejected(400, f"weight_infos[{i}] must be an object")
        role = _role(info.get("role"), f"weight_infos[{i}].role")
        weight = _number(info.get("weight"), f"weight_infos[{i}].weight")
        if weight <= 0:
            raise CallRejected(400, f"weight_infos[{i}].weight must be positive, got {weight}")
        if role == UNRESERVED:
            raise CallRejected(400, f"weight_infos[{i}].role '*' cannot have a weight")
        weights[role] = weight
    return weights


def _scalar_map(value: Any, where: str) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CallRejected(400, f"{where} must be an object of name -> {{\"value\": number}}")
    out: dict[str, float] = {}
    for name, quantity in value.items():
        amount = quantity.get("value") if isinstance(quantity, dict) else None
        amount = _number(amount, f"{where}.{name}.value")
        if amount < 0:
            raise CallRejected(400, f"{where}.{name}.value must be non-negative")
        out[name] = amount
    return out


def parse_quota_configs(configs: Any) -> dict[str, dict[str, dict[str, float]]]:
    if not isinstance(configs, list):
        raise CallRejected(400, "'quota_configs' must be a list of QuotaConfig")
    parsed: dict[str, dict[str, dict[str, float]]] = {}
    for i, config in enumerate(configs):
        where = f"quota_configs[{i}]"
        if not isinstance(config, dict):
            raise CallRejected(400, f"{where} must be an object")
        role = _role(config.get("role"), f"{where}.role")
        if "/" in role:
            raise CallRejected(400, f"{where}.role '{role}': quota can only be set on top-level roles")
        guarantees = _scalar_map(config.get("guarantees"), f"{where}.guarantees")
        limits = _scalar_map(config.get("limits"), f"{where}.limits")
        for name, amount in guarantees.items():
            if name in limits and limits[name] < amount:
                raise CallRejected(
                    400, f"{where}: guarantee of '{name}' ({amount}) is above its limit ({limits[name]})")
        parsed[role] = {"guarantees": guarantees, "limits": limits}
    return parsed


def legacy_guarantee(request: Any) -> tuple[str, dict[str, float], bool]:
    """SET_QUOTA / POST /quota: ``{role, guarantee: [Resource], force}`` (guarantee = limit)."""
    if not isinstance(request, dict):
        raise CallRejected(400, "'quota_request' must be an object")
    role = _role(request.get("role"), "quota_request.role")
    guarantee = request.get("guarantee")
    if not isinstance(guarantee, list) or not guarantee:
        raise CallRejected(400, "quota_request.guarantee must be a non-empty list of scalar resources")
    amounts: dict[str, float] = {}
    for i, item in enumerate(guarantee):
        named = isinstance(item, dict) and isinstance(item.get("name"), str)
        if not named or item.get("type", "SCALAR") != "SCALAR":
            raise CallRejected(400, f"quota_request.guarantee[{i}] must be a named SCALAR resource")
        if item.get("role", UNRESERVED) != UNRESERVED or item.get("reservations"):
            raise CallRejected(400, f"quota_request.guarantee[{i}] must not be reserved")
        value = _number((item.get("scalar") or {}).get("value"), f"quota_request.guarantee[{i}].scalar.value")
        if value < 0:
            raise CallRejected(400, f"quota_request.guarantee[{i}].scalar.value must be non-negative")
        amounts[item["name"]] = amounts.get(item["name"], 0.0) + value
    return role, amounts, bool(request.get("force", False))


def _milli(amounts: dict[str, float]) -> dict[str, int]:
    return {name: to_milli(value) for name, value in amounts.items()}


def _resources(amounts: dict[str, int]) -> list[dict[str, Any]]:
    return [{"name": n, "type": "SCALAR", "scalar": {"value": from_milli(v)}} for n, v in sorted(amounts.items())]


def _value_map(amounts: dict[str, int]) -> dict[str, dict[str, float]]:
    return {n: {"value": from_milli(v)} for n, v in sorted(amounts.items())}


class OperatorSettings:
    def __init__(self, machine: MasterMachine) -> None:
        self.m = machine
        self.weights: dict[str, float] = {}
        self.quota: dict[str, dict[str, dict[str, float]]] = {}

    # ------------------------------------------------------------- weights
    def prepare_weights(self, infos: Any) -> SaveSetting:
        return SaveSetting("weights", {**self.weights, **parse_weights(infos)})

    def weights_json(self) -> list[dict[str, Any]]:
        return [{"role": role, "weight": weight} for role, weight in sorted(self.weights.items())]

    # ------------------------------------------------------------- quota
    def prepare_quota(self, configs: Any, force: bool) -> SaveSetting:
        parsed = parse_quota_configs(configs)
        if not force:
            self._check_quota(parsed)
        merged = {**self.quota, **parsed}
        merged = {r: q for r, q in merged.items() if q["guarantees"] or q["limits"]}
        return SaveSetting("quota", merged)

    def prepare_set_quota(self, request: Any) -> SaveSetting:
        role, amounts, force = legacy_guarantee(request)
        if role in self.quota:
            raise CallRejected(400, f"quota for role '{role}' already exists")
        config = {"role": role, "guarantees": {n: {"value": v} for n, v in amounts.items()},
                  "limits": {n: {"value": v} for n, v in amounts.items()}}
        return self.prepare_quota([config], force)

    def prepare_remove_quota(self, role: Any) -> SaveSetting:
        role = _role(role, "role")
        if role not in self.quota:
            raise CallRejected(400, f"no quota is set for role '{role}'")
        return SaveSetting("quota", {r: q for r, q in self.quota.items() if r != role})

    def _check_quota(self, parsed: dict[str, dict[str, dict[str, float]]]) -> None:
        for role, config in sorted(parsed.items()):
            consumed = self.m.allocator.consumed(role)
            for name, limit in config["limits"].items():
                if to_milli(limit) < consumed.get(name, 0):
                    raise CallRejected(400, (
                        f"quota_configs: role '{role}' already consumes {from_milli(consumed[name])} {name}, "
                        f"above the new limit {limit} (use force)"))
        total = self.m.allocator.total()
        guaranteed: dict[str, int] = {}
        for config in {**self.quota, **parsed}.values():
            for name, amount in config["guarantees"].items():
                guaranteed[name] = guaranteed.get(name, 0) + to_milli(amount)
        for name, amount in sorted(guaranteed.items()):
            if amount > total.get(name, 0):
                raise CallRejected(400, (
                    f"quota_configs: guarantees of '{name}' ({from_milli(amount)}) exceed the cluster's "
                    f"{from_milli(total.get(name, 0))} (use force)"))

    def quota_json(self) -> dict[str, Any]:
        configs, infos = [], []
        for role, config in sorted(self.quota.items()):
            guarantees, limits = _milli(config["guarantees"]), _milli(config["limits"])
            configs.append({"role": role, "guarantees": _value_map(guarantees), "limits": _value_map(limits)})
            infos.append({"role": role, "guarantee": _resources(guarantees)})
        return {"infos": infos, "configs": configs}

    # ------------------------------------------------------------- apply (after the registry write)
    def apply(self, setting: SaveSetting, now: float) -> list[Effect]:
        effects: list[Effect] = []
        if setting.name == "weights":
            self.weights = {str(r): float(w) for r, w in dict(setting.value).items()}
            for role, weight in self.weights.items():
                self.m.allocator.set_weight(role, weight)
        elif setting.name == "quota":
            old = set(self.quota)
            self.quota = dict(setting.value)
            for role in old - set(self.quota):
                self.m.allocator.set_quota(role, Quota())
            for role, config in self.quota.items():
                self.m.allocator.set_quota(role, Quota(_milli(config["guarantees"]), _milli(config["limits"])))
                effects += self._rescind_over_limit(role)
        elif setting.name == "maintenance":
            return self.m.maintenance.apply(dict(setting.value), now)
        self.m.request_allocation(effects, now)
        return effects

    def _rescind_over_limit(self, role: str) -> list[Effect]:
        limits = _milli(self.quota[role]["limits"])
        consumed = self.m.allocator.consumed(role)
        if all(consumed.get(n, 0) <= limit for n, limit in limits.items()):
            return []
        effects: list[Effect] = []
        for offer in sorted(self.m.offers.values(), key=lambda o: o.id):
            if top_level(offer.role) == role:
                effects += self.m.rescind_offer(offer, notify=True)
        return effects

    # ------------------------------------------------------------- roles view
    def known_roles(self) -> list[str]:
        roles: set[str] = set(self.weights) | set(self.quota)
        for framework in self.m.frameworks.values():
            roles.update(framework.roles)
        for agent in self.m.agents.values():
            roles.update(k.role for k in agent.total if k.role != UNRESERVED)
        return sorted(roles)

    def roles_json(self, legacy: bool) -> list[dict[str, Any]]:
        out = []
        for role in self.known_roles():
            frameworks = sorted(f.id for f in self.m.frameworks.values() if role in f.roles)
            allocated = offered = None
            for framework in self.m.frameworks.values():
                for task in framework.tasks.values():
                    if task.role == role and not task.released:
                        allocated = task.resources if allocated is None else allocated + task.resources
            for offer in self.m.offers.values():
                if offer.role == role:
                    offered = offer.resources if offered is None else offered + offer.resources
            reserved = None
            for agent in self.m.agents.values():
                mine = agent.total.reserved(role)
                reserved = mine if reserved is None else reserved + mine
            entry: dict[str, Any] = {"name": role, "weight": self.weights.get(role, 1.0)}
            if legacy:
                entry["frameworks"] = frameworks
                entry["resources"] = ((allocated or EMPTY) + (offered or EMPTY)).summary()
                entry["allocated"] = (allocated or EMPTY).summary()
                entry["offered"] = (offered or EMPTY).summary()
                entry["reserved"] = (reserved or EMPTY).summary()
            else:
                entry["frameworks"] = [{"value": f} for f in frameworks]
                entry["resources"] = ((allocated or EMPTY) + (offered or EMPTY)).to_json()
            quota = self.quota.get(role)
            if quota is not None or legacy:
                consumed = self.m.allocator.consumed(role) if "/" not in role else {}
                q = quota or {"guarantees": {}, "limits": {}}
                entry["quota"] = {
                    "role": role,
                    "guarantee": _value_map(_milli(q["guarantees"])) if not legacy else
                    {n: v for n, v in q["guarantees"].items()},
                    "limit": _value_map(_milli(q["limits"])) if not legacy else {n: v for n, v in q["limits"].items()},
                    "consumed": {n: from_milli(v) for n, v in sorted(consumed.items())},
                }
            out.append(entry)
        return out
