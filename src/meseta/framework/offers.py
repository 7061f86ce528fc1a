"""Offer arithmetic for framework authors: what an offer holds, and taking tasks' resources from it.

    offer --OfferPool(offer, roles)--> pool of scalar items (reserved to our roles first, then '*')
    pool.take({"cpus": 0.5, "mem": 64}) -> the TaskInfo ``resources`` (each part keeps its source's
        role, reservations and allocation_info), or None and nothing taken when it does not fit
    attribute_text(offer, "rack") -> the attribute as text ('hostname' is implicit), for constraints

Amounts are held in thousandths (core.resources' fixed point), so 10 tasks of 0.1 CPU fit 1 CPU.
Revocable resources, persistent volumes and mount disks are left alone: plain tasks do not use them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from meseta.core.resources import UNRESERVED, from_milli, role_is_within, to_milli


@dataclass(slots=True)
class _Item:
    source: Mapping[str, Any]
    name: str
    milli: int


def resource_role(resource: Mapping[str, Any]) -> str:
    """The role a resource is reserved to (the last of a refined stack), ``*`` when unreserved."""
    stack = resource.get("reservations")
    if stack:
        return str(stack[-1].get("role") or UNRESERVED)
    return str(resource.get("role") or UNRESERVED)


def _plain(resource: Mapping[str, Any]) -> bool:
    if "revocable" in resource or "shared" in resource or resource.get("type", "SCALAR") != "SCALAR":
        return False
    disk = resource.get("disk") or {}
    return not (disk.get("persistence") or disk.get("source"))


class OfferPool:
    """The plain scalar resources of one offer that a framework of ``roles`` may use (unreserved ones,
    and those reserved to one of the roles or an ancestor of one), being used up task by task."""

    def __init__(self, offer: Mapping[str, Any], roles: Collection[str] = ()) -> None:
        reserved: list[_Item] = []
        unreserved: list[_Item] = []
        for resource in offer.get("resources") or ():
            name = resource.get("name")
            if not isinstance(name, str) or not _plain(resource):
                continue
            role = resource_role(resource)
            if role != UNRESERVED and not any(role_is_within(accepted, role) for accepted in roles):
                continue
            milli = to_milli(float((resource.get("scalar") or {}).get("value") or 0))
            (unreserved if role == UNRESERVED else reserved).append(_Item(resource, name, milli))
        self.items = reserved + unreserved

    def left(self, name: str) -> float:
        return from_milli(sum(item.milli for item in self.items if item.name == name))

    def fits(self, needs: Mapping[str, float]) -> bool:
        return all(sum(i.milli for i in self.items if i.name == name) >= to_milli(amount)
                   for name, amount in needs.items() if amount > 0)

    def take(self, needs: Mapping[str, float]) -> list[dict[str, Any]] | None:
        """The resources for one task needing ``needs`` (zero amounts are skipped), or None."""
        if not self.fits(needs):
            return None
        used: list[dict[str, Any]] = []
        for name, amount in needs.items():
            left = to_milli(amount)
            for item in self.items:
                if left == 0:
                    break
                if item.name != name or item.milli == 0:
                    continue
                part = min(left, item.milli)
                item.milli -= part
                left -= part
                used.append({**item.source, "scalar": {"value": from_milli(part)}})
        return used


def attribute_text(offer: Mapping[str, Any], name: str) -> str | None:
    """The agent's attribute ``name`` as text (TEXT as is, SCALAR as a number, RANGES and SET
    as Mesos prints them), ``hostname`` being implicit; None when the agent does not have it."""
    if name == "hostname":
        return str(offer.get("hostname", ""))
    for attribute in offer.get("attributes") or ():
        if attribute.get("name") != name:
            continue
        kind = attribute.get("type", "TEXT")
        if kind == "TEXT":
            return str((attribute.get("text") or {}).get("value", ""))
        if kind == "SCALAR":
            value = float((attribute.get("scalar") or {}).get("value", 0.0))
            return f"{value:g}"
        if kind == "RANGES":
            ranges = (attribute.get("ranges") or {}).get("range") or ()
            return "[" + ", ".join(f"{r.get('begin')}-{r.get('end')}" for r in ranges) + "]"
        if kind == "SET":
            return "{" + ", ".join(str(item) for item in (attribute.get("set") or {}).get("item") or ()) + "}"
    return None
