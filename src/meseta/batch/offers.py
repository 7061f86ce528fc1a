"""One offer as the batch planner sees it: whose it is, the agent's constraint fields, and the
resources left in it (``framework.offers.OfferPool``: the shared offer arithmetic); pure.

    offer --OfferSlice.of(offer, role, fields)--> offer id, agent id, hostname,
                                                   {constraint field: value} of the agent,
                                                   the pool tasks are cut from (thousandths)

Also where an offer's agent serves HTTP (``agent_address``), for reading sandboxes later.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from meseta.core.resources import to_milli
from meseta.framework.offers import OfferPool, attribute_text

HOSTNAME_ALIASES = {"@hostname": "hostname"}  # Marathon accepts both


def need_of(cpus: float, mem: float, disk: float) -> dict[str, float]:
    """One task's need (zero amounts left out: a task may take no disk)."""
    return {name: amount for name, amount in (("cpus", cpus), ("mem", mem), ("disk", disk)) if amount > 0}


@dataclass(slots=True)
class OfferSlice:
    """What is left of one offer while a plan cuts tasks from it."""

    offer_id: str
    agent_id: str
    hostname: str
    fields: dict[str, str]
    pool: OfferPool

    @classmethod
    def of(cls, offer: Mapping[str, Any], role: str, field_names: Collection[str]) -> OfferSlice:
        fields = {}
        for name in field_names:
            value = attribute_text(offer, HOSTNAME_ALIASES.get(name, name))
            if value is not None:
                fields[name] = value
        return cls(str(offer["id"]["value"]), str(offer["agent_id"]["value"]), str(offer.get("hostname", "")),
                   fields, OfferPool(offer, (role,)))

    def shortfall(self, need: Mapping[str, float]) -> str | None:
        """Which resource does not fit (``"cpus: 4 needed, 2 offered"``), or None when all do."""
        for name, amount in need.items():
            have = self.pool.left(name)
            if to_milli(have) < to_milli(amount):
                return f"{name}: {amount:g} needed, {have:g} offered"
        return None

    def take(self, need: Mapping[str, float]) -> list[dict[str, Any]]:
        """Cut ``need`` out of the offer (the caller checked ``shortfall``): the task's resources."""
        taken = self.pool.take(need)
        assert taken is not None, "take() after shortfall() said it fits"
        return taken


def agent_address(offer: Mapping[str, Any]) -> str | None:
    """``host:port`` of the offer's agent, from the offer's ``url`` (None when it has none)."""
    address = (offer.get("url") or {}).get("address") or {}
    host = address.get("ip") or address.get("hostname")
    port = address.get("port")
    if not isinstance(host, str) or not isinstance(port, int):
        return None
    return f"{host}:{port}"
