"""Stored JSON forms of the services records (pure): what ``services.store`` keeps.

    instance     {"task_id", "app_id", "version", "agent_id", "host", "state", ...}  (Instance fields;
                 one stored before a field existed gets its default, e.g. ip_addresses [])
    deployment   {"id", "version", "original": root, "target": root, "steps": [[action, ...]],
                  "step": i, "step_started": t}
    root         {"apps": {id: app}, "groups": {id: {"dependencies": [...], "version"}}, "version"}
    action       {"kind": "ScaleApplication", "app_id", "scale_to", "sentenced": [...]}

Values written by an older version may hold what the REST edge refuses today (a lone surrogate
answered 500 on every listing: R3); ``repaired`` makes them writable again on load.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

import msgspec

from meseta.services.deploy.app_step import Action, ActionKind
from meseta.services.deploy.deployments import DeploymentPlan
from meseta.services.deploy.groups import Group, RootGroup
from meseta.services.model import Instance

_INSTANCE_FIELDS = tuple(f.name for f in fields(Instance))
_encode = msgspec.json.Encoder().encode
_SURROGATE = re.compile("[\ud800-\udfff]")  # in a str from json.loads, only lone ones remain


def repaired(value: Any, where: str = "") -> tuple[Any, list[str]]:
    """``value`` with every string that is not valid Unicode (lone surrogates) made valid (each
    surrogate becomes U+FFFD), and the places changed; ``value`` itself when nothing was.

    Runs on every stored value at each start and failover: a clean value (nearly all) is told
    by one C encode (~5 us an app), and only one that fails it is walked and copied (~60 us)."""
    try:
        _encode(value)
        return value, []
    except (TypeError, ValueError, OverflowError):  # a lone surrogate (UnicodeEncodeError), or not plain JSON
        pass
    places: list[str] = []

    def fix(item: Any, path: str) -> Any:
        if isinstance(item, str):
            text = _SURROGATE.sub("\ufffd", item)
            if text != item:
                places.append(path or "/")
            return text
        if isinstance(item, dict):
            return {fix(k, f"{path}/<key>"): fix(v, f"{path}/{k}") for k, v in item.items()}
        if isinstance(item, list):
            return [fix(v, f"{path}({i})") for i, v in enumerate(item)]
        return item

    fixed = fix(value, where)
    return (fixed, places) if places else (value, [])


def instance_json(instance: Instance) -> dict[str, Any]:
    """Every field (``dataclasses.asdict`` without its deep copy walk: written per status update)."""
    out = {name: getattr(instance, name) for name in _INSTANCE_FIELDS}
    out["host_ports"] = list(instance.host_ports)
    out["agent_fields"] = dict(instance.agent_fields)
    out["ip_addresses"] = [dict(ip) for ip in instance.ip_addresses]
    return out


def instance_from_json(data: dict[str, Any]) -> Instance:
    return Instance(**{k: v for k, v in data.items() if k in _INSTANCE_FIELDS})


def root_json(root: RootGroup) -> dict[str, Any]:
    return {"apps": dict(root.apps), "version": root.version,
            "groups": {gid: {"dependencies": list(g.dependencies), "version": g.version}
                       for gid, g in root.groups.items()}}


def root_from_json(data: dict[str, Any]) -> RootGroup:
    groups = {gid: Group(gid, tuple(g.get("dependencies") or ()), str(g.get("version", "")))
              for gid, g in (data.get("groups") or {}).items()}
    return RootGroup(dict(data.get("apps") or {}), groups, str(data.get("version", "")))


def action_json(action: Action) -> dict[str, Any]:
    return {"kind": action.kind.value, "app_id": action.app_id, "scale_to": action.scale_to,
            "sentenced": list(action.sentenced)}


def action_from_json(data: dict[str, Any]) -> Action:
    return Action(ActionKind(data["kind"]), data["app_id"], data.get("scale_to"), tuple(data.get("sentenced") or ()))


def plan_json(plan: DeploymentPlan) -> dict[str, Any]:
    return {"id": plan.id, "version": plan.version, "original": root_json(plan.original),
            "target": root_json(plan.target), "steps": [[action_json(a) for a in step] for step in plan.steps]}


def plan_from_json(data: dict[str, Any]) -> DeploymentPlan:
    return DeploymentPlan(data["id"], data["version"], root_from_json(data["original"]), root_from_json(data["target"]),
                          tuple(tuple(action_from_json(a) for a in step) for step in data["steps"]))
