"""How many instances of an app fit in one offer, and exactly what each one takes; pure.

``match`` walks an offer like this::

    offer -> AgentMaintenance? wrong allocation role (UnfulfilledRole)?   -> reasons, no placement
          -> pool: the offer's resources this app may use
               (role accepted, not revocable, disk not a volume or mount source)
          -> repeat up to min(count, max_per_offer):
               constraints against active instances + placements made so far in this offer
               cpus, mem, disk, gpus (in Mesos' thousandths, so 0.1 + 0.2 fits 0.3)
               host ports: fixed ones first, then dynamic ones from the offer's ranges
               -> Placement(resources sliced from the pool's items, host ports)
          -> Match(placements, reasons for the first instance that did not fit)

Every slice is a copy of the offer's resource object (role, reservations, allocation_info and
the rest preserved) with only its quantity replaced, which is what the TaskInfo must carry.
Reserved items are used before unreserved ones. :func:`rest_of_offer` is what an offer still
holds after some placements (one offer serves several apps, up to ``max_per_offer`` in all).
Dynamic ports start at an offset derived from the offer id (deterministic, yet spread out, so
a port just freed on the agent is not the first one reused: Marathon picks them at random for
the same reason).

``reasons`` lists every reason that applies, in Marathon's funnel order (:data:`REASONS`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from meseta.core.resources import (
    MAX_SCALAR,
    UNRESERVED,
    Ranges,
    from_milli,
    normalize_ranges,
    role_is_within,
    subtract_ranges,
    to_milli,
)
from meseta.services.launch.constraints import Constraint, Placed, agent_fields, violations
from meseta.services.model import App, Instance

# Marathon's NoOfferMatchReason funnel, in the order it checks them (launch_stats counts each
# unused offer under its first reason in this order).
REASONS = (
    "UnfulfilledRole",
    "UnfulfilledConstraint",
    "NoCorrespondingReservationFound",
    "AgentMaintenance",
    "InsufficientCpus",
    "InsufficientMemory",
    "InsufficientDisk",
    "InsufficientGpus",
    "InsufficientPorts",
    "DeclinedScarceResources",
)
SCALAR_REASONS = {"cpus": "InsufficientCpus", "mem": "InsufficientMemory", "disk": "InsufficientDisk",
                  "gpus": "InsufficientGpus"}
MAX_INSTANCES_PER_OFFER = 5  # Marathon's --max_instances_per_offer default
UNPLACEABLE = 2**63  # thousandths no offer holds: the need of a scalar beyond MAX_SCALAR


@dataclass(frozen=True, slots=True)
class PortRequest:
    """One host port an instance needs: ``port`` 0 is any port from the offer."""

    index: int  # position in portDefinitions (host mode) or container.portMappings
    port: int
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """One instance's share of the offer."""

    resources: list[dict[str, Any]]  # v1 Resource objects for TaskInfo.resources
    host_ports: list[int]  # aligned with port_requests(app)


@dataclass(frozen=True, slots=True)
class Match:
    """What one offer can do for one app: placements, or the reasons it could not."""

    offer_id: str
    agent_id: str
    hostname: str
    agent_fields: dict[str, str]
    placements: tuple[Placement, ...] = ()
    reasons: tuple[str, ...] = ()  # why the first instance that did not fit did not (empty: none were left)
    refused_by: tuple[Constraint, ...] = ()  # the constraints behind UnfulfilledConstraint

    @property
    def used(self) -> bool:
        return bool(self.placements)


# --------------------------------------------------------------------- the app's needs


def port_requests(app: App) -> list[PortRequest]:
    """The host ports one instance needs, in declaration order.

    Host networking: one per portDefinition, dynamic unless ``requirePorts`` (then the declared
    port itself). Bridge or container networking: one per portMapping that has a ``hostPort``
    (0 = dynamic); a mapping without one is not exposed on the host.
    """
    if _host_networking(app):
        definitions = app.get("portDefinitions")
        if definitions is None:
            definitions = [{"port": p} for p in app.get("ports") or ()]
        fixed = bool(app.get("requirePorts"))
        return [PortRequest(i, int(d.get("port") or 0) if fixed else 0, d.get("name"))
                for i, d in enumerate(definitions)]
    container = app.get("container") or {}
    mappings = container.get("portMappings") or (container.get("docker") or {}).get("portMappings") or ()
    return [PortRequest(i, int(m["hostPort"]), m.get("name"))
            for i, m in enumerate(mappings) if m.get("hostPort") is not None]


def _host_networking(app: App) -> bool:
    networks = app.get("networks")
    if networks:
        return all(n.get("mode", "host") == "host" for n in networks)
    legacy = ((app.get("container") or {}).get("docker") or {}).get("network")
    return legacy in (None, "HOST")


def scalar_needs(app: App) -> dict[str, int]:
    """Thousandths of each scalar one instance needs (zero needs left out)."""
    needs = {name: _milli_needed(app.get(name)) for name in SCALAR_REASONS}
    return {name: milli for name, milli in needs.items() if milli > 0}


def _milli_needed(value: Any) -> int:
    """A need in thousandths. Validation bounds every scalar to MAX_SCALAR; a definition stored
    before it did (1e308 cpus, NaN) needs more than any agent has, so it stays queued with
    InsufficientCpus instead of raising in the offers phase (that killed the framework: R2)."""
    try:
        number = float(value or 0)
    except (TypeError, ValueError):
        return UNPLACEABLE
    if not math.isfinite(number) or number > MAX_SCALAR:
        return UNPLACEABLE
    return max(0, to_milli(number))


def accepted_roles(app: App, framework_roles: Collection[str] | None = None) -> frozenset[str]:
    """Reservation roles the app may use: acceptedResourceRoles, else unreserved plus the
    framework's roles (default: the app's role)."""
    roles = app.get("acceptedResourceRoles")
    if roles:
        return frozenset(roles)
    mine = framework_roles if framework_roles is not None else [app.get("role") or UNRESERVED]
    return frozenset({UNRESERVED, *mine})


# --------------------------------------------------------------------- the pool of usable resources


@dataclass(slots=True)
class _Item:
    source: Mapping[str, Any]
    name: str
    milli: int = 0
    ranges: Ranges = ()


@dataclass(slots=True)
class _Pool:
    items: list[_Item] = field(default_factory=list)
    excluded_by_role: set[str] = field(default_factory=set)  # names of offered resources the roles ruled out

    def scalar(self, name: str) -> int:
        return sum(i.milli for i in self.items if i.name == name)

    def port_items(self) -> list[_Item]:
        return [i for i in self.items if i.name == "ports" and i.ranges]


def resource_role(resource: Mapping[str, Any]) -> str:
    """The role a resource is reserved to (the last of a refined stack), ``*`` when unreserved."""
    stack = resource.get("reservations")
    if stack:
        return str(stack[-1].get("role") or UNRESERVED)
    return str(resource.get("role") or UNRESERVED)


def _for_this_kind_of_app(resource: Mapping[str, Any]) -> bool:
    """Revocable resources, persistent volumes and mount disks are not for plain services."""
    if "revocable" in resource or "shared" in resource:
        return False
    disk = resource.get("disk") or {}
    return not (disk.get("persistence") or disk.get("source"))


def _build_pool(offer: Mapping[str, Any], roles: frozenset[str]) -> _Pool:
    pool = _Pool()
    reserved: list[_Item] = []
    unreserved: list[_Item] = []
    for resource in offer.get("resources") or ():
        name = resource.get("name")
        if not isinstance(name, str) or not _for_this_kind_of_app(resource):
            continue
        role = resource_role(resource)
        if not any(role_is_within(accepted, role) for accepted in roles):
            pool.excluded_by_role.add(name)
            continue
        item = _item(resource, name)
        if item is not None:
            (unreserved if role == UNRESERVED else reserved).append(item)
    pool.items = reserved + unreserved
    return pool


def _item(resource: Mapping[str, Any], name: str) -> _Item | None:
    kind = resource.get("type", "SCALAR")
    if kind == "SCALAR":
        return _Item(resource, name, milli=to_milli(float((resource.get("scalar") or {}).get("value") or 0)))
    if kind == "RANGES":
        pairs = [(int(r["begin"]), int(r["end"])) for r in (resource.get("ranges") or {}).get("range") or ()]
        return _Item(resource, name, ranges=normalize_ranges(pairs))
    return None


# --------------------------------------------------------------------- checks


def _in_maintenance(offer: Mapping[str, Any], now: float | None) -> bool:
    """The agent has a maintenance window that has not ended: start nothing new there.

    Without ``now`` every window counts; with it, only windows already over are ignored
    (future ones count too: a long-running service should not land on a machine about to go).
    """
    window = offer.get("unavailability")
    if not window:
        return False
    duration = (window.get("duration") or {}).get("nanoseconds")
    if now is None or duration is None:
        return True
    start = int((window.get("start") or {}).get("nanoseconds") or 0)
    return (start + int(duration)) / 1e9 > now


def _allocation_role(offer: Mapping[str, Any]) -> str | None:
    role = (offer.get("allocation_info") or {}).get("role")
    if role is None:
        for resource in offer.get("resources") or ():
            role = (resource.get("allocation_info") or {}).get("role")
            if role is not None:
                break
    return role


def _shortfalls(pool: _Pool, needs: Mapping[str, int], ports: list[PortRequest]) -> list[str]:
    short = [SCALAR_REASONS[name] for name, milli in needs.items() if pool.scalar(name) < milli]
    if ports and _pick_ports(pool, ports, 0) is None:
        short.append("InsufficientPorts")
    if short and pool.excluded_by_role & (set(needs) | ({"ports"} if ports else set())):
        short.append("UnfulfilledRole")
    return short


def _ordered(reasons: Iterable[str]) -> tuple[str, ...]:
    found = set(reasons)
    return tuple(r for r in REASONS if r in found)


# --------------------------------------------------------------------- taking resources


def _take_scalars(pool: _Pool, needs: Mapping[str, int]) -> list[dict[str, Any]]:
    used: list[dict[str, Any]] = []
    for name, milli in needs.items():
        left = milli
        for item in pool.items:
            if left == 0:
                break
            if item.name != name or item.milli == 0:
                continue
            part = min(left, item.milli)
            item.milli -= part
            left -= part
            used.append({**item.source, "scalar": {"value": from_milli(part)}})
    return used


def _pick_ports(pool: _Pool, requests: list[PortRequest], seed: int) -> list[tuple[_Item, int]] | None:
    """A host port for every request (fixed ones exact, all distinct), or None."""
    items = pool.port_items()
    taken: set[int] = set()  # a host port is one port, whichever items list it
    chosen: list[tuple[_Item, int] | None] = [None] * len(requests)
    for slot, request in enumerate(requests):
        if request.port == 0:
            continue
        owner = next((i for i in items if _has_port(i.ranges, request.port)), None)
        if owner is None or request.port in taken:
            return None
        taken.add(request.port)
        chosen[slot] = (owner, request.port)
    free = _free_ports(items, taken, seed)
    for slot in (slot for slot, r in enumerate(requests) if r.port == 0):
        picked = next(free, None)
        if picked is None:
            return None
        chosen[slot] = picked
    return [c for c in chosen if c is not None]


def _has_port(ranges: Ranges, port: int) -> bool:
    return any(b <= port <= e for b, e in ranges)


def _free_ports(items: list[_Item], taken: set[int], seed: int) -> Iterator[tuple[_Item, int]]:
    """Every untaken port of the pool once, starting ``seed`` ports in and wrapping around."""
    segments = [(item, b, e) for item in items for b, e in item.ranges]
    total = sum(e - b + 1 for _, b, e in segments)
    if total == 0:
        return
    for item, port in _rotated(segments, seed % total):
        if port not in taken:
            taken.add(port)
            yield item, port


def _rotated(segments: list[tuple[_Item, int, int]], start: int) -> Iterator[tuple[_Item, int]]:
    """The ports of ``segments`` in order, beginning at the ``start``-th one and wrapping around."""
    before: list[tuple[_Item, int, int]] = []
    offset = 0
    for item, b, e in segments:
        length = e - b + 1
        if offset + length <= start:
            before.append((item, b, e))
        else:
            split = b + max(0, start - offset)
            if split > b:
                before.append((item, b, split - 1))
            yield from ((item, p) for p in range(split, e + 1))
        offset += length
    for item, b, e in before:
        yield from ((item, p) for p in range(b, e + 1))


def _take_ports(pool: _Pool, picked: list[tuple[_Item, int]]) -> list[dict[str, Any]]:
    by_item: dict[int, tuple[_Item, list[int]]] = {}
    for item, port in picked:
        by_item.setdefault(id(item), (item, []))[1].append(port)
    used = []
    for item, ports in by_item.values():
        ranges = normalize_ranges((p, p) for p in ports)
        used.append({**item.source, "ranges": {"range": [{"begin": b, "end": e} for b, e in ranges]}})
    gone = normalize_ranges((port, port) for _, port in picked)
    for item in pool.port_items():  # every item: a port listed twice is still one port
        item.ranges = subtract_ranges(item.ranges, gone)
    return used


# --------------------------------------------------------------------- the decision


def match(
    app: App,
    offer: Mapping[str, Any],
    instances: Iterable[Instance] | Placed,
    *,
    count: int,
    max_per_offer: int = MAX_INSTANCES_PER_OFFER,
    framework_roles: Collection[str] | None = None,
    now: float | None = None,
    restrict_gpus: bool = False,
) -> Match:
    """Place up to ``min(count, max_per_offer)`` instances of ``app`` in ``offer``.

    ``instances`` are the app's instances (inactive ones are ignored) or their precomputed
    :class:`Placed` counts for the app's constraints (copied, never changed: a scheduler
    placing thousands of instances keeps one and ``add``s each launch, instead of recounting).
    ``restrict_gpus`` declines GPU agents for apps that need no GPUs (Marathon's
    ``--gpu_scheduling_behavior restricted``).
    """
    fields = agent_fields(offer)
    result = Match(str((offer.get("id") or {}).get("value", "")), str((offer.get("agent_id") or {}).get("value", "")),
                   str(offer.get("hostname", "")), fields)
    limit = min(count, max_per_offer)
    if limit <= 0:
        return result
    constraints = app.get("constraints") or []
    placed = instances.copy() if isinstance(instances, Placed) else Placed.of(constraints, instances)
    refused = violations(app, fields, placed)
    offer_level = _offer_reasons(app, offer, framework_roles, now, restrict_gpus)
    if offer_level:
        return _finish(result, [*offer_level, *(["UnfulfilledConstraint"] if refused else [])], refused)
    pool = _build_pool(offer, accepted_roles(app, framework_roles))
    needs, ports = scalar_needs(app), port_requests(app)
    seed = zlib.crc32(result.offer_id.encode())
    placements: list[Placement] = []
    while len(placements) < limit:
        short = _shortfalls(pool, needs, ports)
        if refused or short:
            return _finish(result, [*short, *(["UnfulfilledConstraint"] if refused else [])], refused, placements)
        placements.append(_place(pool, needs, ports, seed))
        placed.add(fields)
        refused = violations(app, fields, placed)
    return _finish(result, [], [], placements)


def _offer_reasons(app: App, offer: Mapping[str, Any], framework_roles: Collection[str] | None,
                   now: float | None, restrict_gpus: bool) -> list[str]:
    """Reasons that rule the whole offer out before its resources are looked at."""
    reasons = []
    if _in_maintenance(offer, now):
        reasons.append("AgentMaintenance")
    role, app_role = _allocation_role(offer), app.get("role")
    wrong_for_app = app_role is not None and role != app_role
    wrong_for_framework = framework_roles is not None and role not in framework_roles
    if role is not None and (wrong_for_app or wrong_for_framework):
        reasons.append("UnfulfilledRole")
    if restrict_gpus and not app.get("gpus") and any(r.get("name") == "gpus" for r in offer.get("resources") or ()):
        reasons.append("DeclinedScarceResources")
    return reasons


def _place(pool: _Pool, needs: Mapping[str, int], ports: list[PortRequest], seed: int) -> Placement:
    picked = (_pick_ports(pool, ports, seed) or []) if ports else []  # _shortfalls said they fit
    resources = _take_scalars(pool, needs) + _take_ports(pool, picked)
    return Placement(resources, [port for _, port in picked])


def _finish(result: Match, reasons: list[str], refused: list[Constraint],
            placements: list[Placement] | None = None) -> Match:
    return Match(result.offer_id, result.agent_id, result.hostname, result.agent_fields,
                 tuple(placements or ()), _ordered(reasons), tuple(refused))


def _quantity_free(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("scalar", "ranges")}


def _holds(ranges: Ranges, wanted: Ranges) -> bool:
    """Whether every range of ``wanted`` lies wholly inside one of ``ranges``."""
    return all(any(lo <= b and e <= hi for lo, hi in ranges) for b, e in wanted)


def rest_of_offer(offer: Mapping[str, Any], placements: Iterable[Placement]) -> dict[str, Any]:
    """``offer`` without what ``placements`` took from it (each slice names its source resource by
    every field but the quantity); resources left empty are dropped."""
    resources = [dict(r) for r in offer.get("resources") or ()]
    keys = [_quantity_free(r) for r in resources]
    for placement in placements:
        for used in placement.resources:
            key, name = _quantity_free(used), str(used.get("name"))
            gone = _item(used, name)
            if gone is None:
                continue
            for index in (i for i, k in enumerate(keys) if k == key):  # the entry the slice fits in
                left = resources[index]
                mine = _item(left, name)
                if mine is None:
                    continue
                if "ranges" in used and _holds(mine.ranges, gone.ranges):
                    rest = subtract_ranges(mine.ranges, gone.ranges)
                    left["ranges"] = {"range": [{"begin": b, "end": e} for b, e in rest]}
                    break
                if "ranges" not in used and mine.milli >= gone.milli:
                    left["scalar"] = {"value": from_milli(mine.milli - gone.milli)}
                    break
    kept = [r for r in resources
            if (r.get("ranges") or {}).get("range") or ("scalar" in r and r["scalar"].get("value"))
            or ("scalar" not in r and "ranges" not in r)]
    return {**offer, "resources": kept}

