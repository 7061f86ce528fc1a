"""One offer as a pool that tasks are cut from; pure.

    offer resources --usable--> pool items (reserved ones first)  --take(need)--> task resources
                                 cpus, mem, disk scalars; not           (copies of the offer's items,
                                 revocable, disk not a volume/mount      quantity replaced: role,
                                                                         reservations kept)

Quantities are in Mesos's thousandths (``core.resources.to_milli``), so ten tasks of 0.1 cpus fit
one cpu exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meseta.batch.constraints import agent_fields
from meseta.core.resources import from_milli, to_milli

SCALARS = ("cpus", "mem", "disk")


def need_of(cpus: float, mem: float, disk: float) -> dict[str, int]:
    """One task's need in thousandths (zero amounts left out: a task may take no disk)."""
    need = {"cpus": to_milli(cpus), "mem": to_milli(mem), "disk": to_milli(disk)}
    return {name: milli for name, milli in need.items() if milli > 0}


def _usable(item: Mapping[str, Any]) -> bool:
    if item.get("name") not in SCALARS or item.get("type", "SCALAR") != "SCALAR" or "revocable" in item:
        return False
    disk = item.get("disk") or {}
    return not (disk.get("persistence") or disk.get("source"))


@dataclass(slots=True)
class OfferPool:
    """What is left of one offer while a plan cuts tasks from it."""

    offer_id: str
    agent_id: str
    hostname: str
    fields: dict[str, str]
    items: list[tuple[dict[str, Any], list[int]]] = field(default_factory=list)  # (item, [milli left])

    @classmethod
    def of(cls, offer: Mapping[str, Any]) -> OfferPool:
        usable = [item for item in offer.get("resources") or () if isinstance(item, dict) and _usable(item)]
        usable.sort(key=lambda item: not item.get("reservations") and item.get("role", "*") == "*")
        items = [(item, [to_milli(float((item.get("scalar") or {}).get("value", 0)))]) for item in usable]
        return cls(str(offer["id"]["value"]), str(offer["agent_id"]["value"]), str(offer.get("hostname", "")),
                   agent_fields(offer), items)

    def left(self, name: str) -> int:
        return sum(left[0] for item, left in self.items if item["name"] == name)

    def shortfall(self, need: Mapping[str, int]) -> str | None:
        """Which resource does not fit (``"cpus: 4 needed, 2 offered"``), or None when all do."""
        for name, milli in need.items():
            have = self.left(name)
            if have < milli:
                return f"{name}: {from_milli(milli):g} needed, {from_milli(have):g} offered"
        return None

    def take(self, need: Mapping[str, int]) -> list[dict[str, Any]]:
        """Cut ``need`` out of the pool (the caller checked ``shortfall``): the task's resources."""
        out = []
        for name, milli in need.items():
            for item, left in self.items:
                if item["name"] != name or not left[0] or not milli:
                    continue
                piece = min(left[0], milli)
                left[0] -= piece
                milli -= piece
                cut = copy.deepcopy(item)
                cut["scalar"] = {"value": from_milli(piece)}
                out.append(cut)
        return out


def agent_address(offer: Mapping[str, Any]) -> str | None:
    """``host:port`` of the offer's agent, from the offer's ``url`` (None when it has none)."""
    address = (offer.get("url") or {}).get("address") or {}
    host = address.get("ip") or address.get("hostname")
    port = address.get("port")
    if not isinstance(host, str) or not isinstance(port, int):
        return None
    return f"{host}:{port}"
