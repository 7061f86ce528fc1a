"""Per-app offer statistics for ``/v2/queue``: the answer to "why is my app not launching".

One :class:`LaunchStats` per queued app, reset when a new launch attempt starts::

    restart(now) -> record(offer, reasons, now) ... -> summary_json(), last_unused_offers_json(now)
                    reasons empty: the offer was used; else it was declined for them

Counts follow Marathon's *funnel*: an unused offer is declined at the first of its reasons in
:data:`~meseta.services.launch.offer_matching.REASONS` order, and each step's ``processed`` is what
reached it. ``rejectSummaryLaunchAttempt`` covers every offer since the attempt began (its first
step's ``processed`` is ``processedOffersCount``); ``rejectSummaryLastOffers`` covers the latest
unused offer of each of the last ``window`` agents (so one chatty agent does not hide the rest;
an agent's entry goes when one of its offers is used). ``reason_counts`` counts every reason
that applied, for messages like "declined 12 offers for InsufficientMemory".

Offers are kept by reference and rendered only when asked for; callers must not mutate them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meseta.services.launch.offer_matching import REASONS
from meseta.services.wire import timestamp

WINDOW = 50  # agents whose last unused offer is kept: enough to see a pattern, small in the queue JSON


@dataclass(frozen=True, slots=True)
class UnusedOffer:
    offer: Mapping[str, Any]  # the v1 offer as received
    reasons: tuple[str, ...]
    at: float  # epoch seconds


@dataclass(slots=True)
class LaunchStats:
    """Offer outcomes for one app since its current launch attempt began (``since``)."""

    since: float
    window: int = WINDOW
    processed: int = 0
    unused: int = 0
    last_unused_at: float | None = None
    last_used_at: float | None = None
    first_reasons: Counter[str] = field(default_factory=Counter)  # funnel: one reason per unused offer
    all_reasons: Counter[str] = field(default_factory=Counter)  # every reason that applied
    last_unused: dict[str, UnusedOffer] = field(default_factory=dict)  # agent id -> latest, oldest first

    def restart(self, now: float) -> None:
        """A new launch attempt (new version, new instances queued): forget the old one."""
        self.since = now
        self.processed = self.unused = 0
        self.last_unused_at = self.last_used_at = None
        self.first_reasons.clear()
        self.all_reasons.clear()
        self.last_unused.clear()

    def record(self, offer: Mapping[str, Any], reasons: Sequence[str], now: float) -> None:
        """Count one offer processed for this app; ``reasons`` empty means it was used."""
        self.processed += 1
        agent_id = _value(offer.get("agent_id"))
        self.last_unused.pop(agent_id, None)  # re-inserted last, or gone when used
        if not reasons:
            self.last_used_at = now
            return
        self.unused += 1
        self.last_unused_at = now
        self.all_reasons.update(set(reasons))
        self.first_reasons[first_reason(reasons)] += 1
        self.last_unused[agent_id] = UnusedOffer(offer, tuple(reasons), now)
        while len(self.last_unused) > self.window:
            del self.last_unused[next(iter(self.last_unused))]

    def reason_counts(self) -> dict[str, int]:
        """Unused offers per reason (each offer under every reason it had), funnel order."""
        return {r: self.all_reasons[r] for r in REASONS if self.all_reasons[r]}

    def summary_json(self) -> dict[str, Any]:
        """Marathon's ``processedOffersSummary``."""
        window = Counter(first_reason(u.reasons) for u in self.last_unused.values())
        out: dict[str, Any] = {
            "processedOffersCount": self.processed,
            "unusedOffersCount": self.unused,
            "rejectSummaryLastOffers": funnel(window, len(self.last_unused)),
            "rejectSummaryLaunchAttempt": funnel(self.first_reasons, self.processed),
        }
        if self.last_unused_at is not None:
            out["lastUnusedOfferAt"] = timestamp(self.last_unused_at)
        if self.last_used_at is not None:
            out["lastUsedOfferAt"] = timestamp(self.last_used_at)
        return out

    def last_unused_offers_json(self) -> list[dict[str, Any]]:
        """Marathon's ``lastUnusedOffers`` (the ``embed=lastUnusedOffers`` view), newest first."""
        return [
            {"offer": offer_json(u.offer), "timestamp": timestamp(u.at), "reason": list(u.reasons)}
            for u in reversed(self.last_unused.values())
        ]


def first_reason(reasons: Sequence[str]) -> str:
    """The reason the funnel declines an offer under: the earliest in REASONS order."""
    known = [r for r in REASONS if r in reasons]
    return known[0] if known else reasons[0]


def funnel(declined: Mapping[str, int], processed: int) -> list[dict[str, Any]]:
    """``[{reason, declined, processed}]`` over every reason; each step sees what the last passed."""
    steps, left = [], processed
    for reason in REASONS:
        count = declined.get(reason, 0)
        steps.append({"reason": reason, "declined": count, "processed": left})
        left -= count
    return steps


# --------------------------------------------------------------------- rendering


def offer_json(offer: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 offer as Marathon shows it in ``lastUnusedOffers``."""
    return {
        "id": _value(offer.get("id")),
        "agentId": _value(offer.get("agent_id")),
        "hostname": str(offer.get("hostname", "")),
        "resources": [_resource_json(r) for r in offer.get("resources") or ()],
        "attributes": [_attribute_json(a) for a in offer.get("attributes") or ()],
    }


def _resource_json(resource: Mapping[str, Any]) -> dict[str, Any]:
    stack = resource.get("reservations")
    role = stack[-1].get("role", "*") if stack else resource.get("role", "*")
    return {"name": resource.get("name", ""), "role": role, **_value_json(resource)}


def _attribute_json(attribute: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": attribute.get("name", ""), **_value_json(attribute)}


def _value_json(item: Mapping[str, Any]) -> dict[str, Any]:
    kind = item.get("type", "SCALAR")
    if kind == "SCALAR":
        return {"scalar": (item.get("scalar") or {}).get("value", 0)}
    if kind == "RANGES":
        ranges = (item.get("ranges") or {}).get("range") or ()
        return {"ranges": [{"begin": r["begin"], "end": r["end"]} for r in ranges]}
    if kind == "SET":
        return {"set": list((item.get("set") or {}).get("item") or ())}
    return {"text": (item.get("text") or {}).get("value", "")}


def _value(wrapped: Any) -> str:
    """``{"value": "x"}`` -> ``"x"`` (ids on the v1 wire are wrapped)."""
    if isinstance(wrapped, Mapping):
        return str(wrapped.get("value", ""))
    return "" if wrapped is None else str(wrapped)
