"""Operator settings and the roles view: weights, quota and the maintenance schedule.

Settings change in two phases, so that the registry holds them before anyone sees them::

    prepare(record) -> SaveSetting       checked against the current state (CallRejected 400
                                         naming the field); nothing changes yet
    registry write (the actor, in a thread)
    apply(SaveSetting, now) -> effects   the allocator and the machine take the value

Stored values (registry ``settings`` table)::

    weights      {"<role>": <weight>}
    quota        {"<role>": {"guarantees": {"cpus": 4.0}, "limits": {"cpus": 8.0}}}
    maintenance  see meseta.master.schedule (MaintenanceSchedule.setting_value)
"""

from __future__ import annotations

from typing import Any

from meseta.alloc.quota import Quota, top_level
from meseta.core.resources import EMPTY, UNRESERVED, from_milli, to_milli
from meseta.master.books import Books
from meseta.master.core import MasterCore
from meseta.master.effects import Effect, SaveSetting
from meseta.master.maintenance import Maintenance
from meseta.master.offers import OfferDesk
from meseta.master.validation import operator as ops
from meseta.master.validation.errors import CallRejected

StoredQuota = dict[str, dict[str, float]]  # {"guarantees": {name: amount}, "limits": {name: amount}}


def _milli(amounts: dict[str, float]) -> dict[str, int]:
    return {name: to_milli(value) for name, value in amounts.items()}


def _resources(amounts: dict[str, int]) -> list[dict[str, Any]]:
    return [{"name": n, "type": "SCALAR", "scalar": {"value": from_milli(v)}} for n, v in sorted(amounts.items())]


def _value_map(amounts: dict[str, int]) -> dict[str, dict[str, float]]:
    return {n: {"value": from_milli(v)} for n, v in sorted(amounts.items())}


class Settings:
    def __init__(self, core: MasterCore, books: Books, offers: OfferDesk, maintenance: Maintenance) -> None:
        self.core, self.books, self.offers, self.maintenance = core, books, offers, maintenance
        self.weights: dict[str, float] = {}
        self.quota: dict[str, StoredQuota] = {}

    # ------------------------------------------------------------- prepare (before the registry write)
    def prepare(self, call: ops.Setting) -> SaveSetting:
        if isinstance(call, ops.Weights):
            return SaveSetting("weights", {**self.weights, **call.weights})
        if isinstance(call, ops.QuotaUpdate):
            return self._prepare_quota(call)
        if isinstance(call, ops.QuotaRemoval):
            if call.role not in self.quota:
                raise CallRejected(400, f"no quota is set for role '{call.role}'")
            return SaveSetting("quota", {r: q for r, q in self.quota.items() if r != call.role})
        return self.maintenance.prepare(call)

    def _prepare_quota(self, call: ops.QuotaUpdate) -> SaveSetting:
        if call.exclusive:
            for role in sorted(set(call.configs) & set(self.quota)):
                raise CallRejected(400, f"quota for role '{role}' already exists")
        parsed = {role: {"guarantees": dict(c.guarantees), "limits": dict(c.limits)}
                  for role, c in call.configs.items()}
        if not call.force:
            self._check_quota(parsed)
        merged = {**self.quota, **parsed}
        return SaveSetting("quota", {r: q for r, q in merged.items() if q["guarantees"] or q["limits"]})

    def _check_quota(self, parsed: dict[str, StoredQuota]) -> None:
        allocator = self.core.allocator
        for role, config in sorted(parsed.items()):
            consumed = allocator.consumed(role)
            for name, limit in config["limits"].items():
                if to_milli(limit) < consumed.get(name, 0):
                    raise CallRejected(400, (
                        f"quota_configs: role '{role}' already consumes {from_milli(consumed[name])} {name}, "
                        f"above the new limit {limit} (use force)"))
        total = allocator.total()
        guaranteed: dict[str, int] = {}
        for config in {**self.quota, **parsed}.values():
            for name, amount in config["guarantees"].items():
                guaranteed[name] = guaranteed.get(name, 0) + to_milli(amount)
        for name, amount in sorted(guaranteed.items()):
            if amount > total.get(name, 0):
                raise CallRejected(400, (
                    f"quota_configs: guarantees of '{name}' ({from_milli(amount)}) exceed the cluster's "
                    f"{from_milli(total.get(name, 0))} (use force)"))

    # ------------------------------------------------------------- apply (after the registry write)
    def apply(self, setting: SaveSetting, now: float) -> list[Effect]:
        allocator = self.core.allocator
        effects: list[Effect] = []
        if setting.name == "weights":
            self.weights = {str(r): float(w) for r, w in dict(setting.value).items()}
            for role, weight in self.weights.items():
                allocator.set_weight(role, weight)
        elif setting.name == "quota":
            old = set(self.quota)
            self.quota = dict(setting.value)
            for role in old - set(self.quota):
                allocator.set_quota(role, Quota())
            for role, config in self.quota.items():
                allocator.set_quota(role, Quota(_milli(config["guarantees"]), _milli(config["limits"])))
                effects += self._rescind_over_limit(role)
        elif setting.name == "maintenance":
            return self.maintenance.apply(dict(setting.value), now)
        self.core.request_allocation(effects, now)
        return effects

    def _rescind_over_limit(self, role: str) -> list[Effect]:
        limits = _milli(self.quota[role]["limits"])
        consumed = self.core.allocator.consumed(role)
        if all(consumed.get(n, 0) <= limit for n, limit in limits.items()):
            return []
        effects: list[Effect] = []
        for offer in sorted(self.books.offers, key=lambda o: o.id):
            if top_level(offer.role) == role:
                effects += self.offers.rescind(offer, notify=True)
        return effects

    # ------------------------------------------------------------- views
    def weights_json(self) -> list[dict[str, Any]]:
        return [{"role": role, "weight": weight} for role, weight in sorted(self.weights.items())]

    def quota_json(self) -> dict[str, Any]:
        configs, infos = [], []
        for role, config in sorted(self.quota.items()):
            guarantees, limits = _milli(config["guarantees"]), _milli(config["limits"])
            configs.append({"role": role, "guarantees": _value_map(guarantees), "limits": _value_map(limits)})
            infos.append({"role": role, "guarantee": _resources(guarantees)})
        return {"infos": infos, "configs": configs}

    # ------------------------------------------------------------- roles view
    def known_roles(self) -> list[str]:
        roles: set[str] = set(self.weights) | set(self.quota)
        for framework in self.books.frameworks:
            roles.update(framework.roles)
        for agent in self.books.agents:
            roles.update(k.role for k in agent.total if k.role != UNRESERVED)
        return sorted(roles)

    def roles_json(self, legacy: bool) -> list[dict[str, Any]]:
        out = []
        for role in self.known_roles():
            frameworks = sorted(f.id for f in self.books.frameworks if role in f.roles)
            allocated = offered = None
            for framework in self.books.frameworks:
                for task in framework.tasks.values():
                    if task.role == role and not task.released:
                        allocated = task.resources if allocated is None else allocated + task.resources
            for offer in self.books.offers:
                if offer.role == role:
                    offered = offer.resources if offered is None else offered + offer.resources
            reserved = None
            for agent in self.books.agents:
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
                consumed = self.core.allocator.consumed(role) if "/" not in role else {}
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
