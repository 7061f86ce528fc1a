"""Reservations and persistent volumes as pure transformations of :class:`Resources`.

What an item carries lives in its key's ``extra`` JSON (see ``meseta.core.resources``)::

    cpus                          role "*"    extra ""                               unreserved
    cpus(ads)                     role "ads"  extra ""                               static
    cpus(ads) reserved at runtime role "ads"  extra {"reservations":[..DYNAMIC..]}   dynamic
    disk(ads) volume "db"         role "ads"  extra {"disk":{"persistence":{"id":"db"},
                                                    "volume":{"container_path":"data","mode":"RW"}},
                                                     "reservations":[...]}
    cpus revocable                role "*"    extra {"revocable":{}}

The offer operations and operator calls map resources to resources::

    RESERVE    source (one reservation fewer)  ->  target (dynamic reservation pushed)
    UNRESERVE  target                          ->  source
    CREATE     reserved disk (no volume)       ->  volume
    DESTROY    volume                          ->  reserved disk

Each ``apply_*`` checks the pool holds what the operation consumes and raises ResourceError
(naming the item and the problem) otherwise, so a rejected operation changes nothing.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from meseta.core.resources import (
    EMPTY,
    UNRESERVED,
    Quantity,
    ResourceError,
    ResourceKey,
    Resources,
    role_is_within,
)


class Unavailable(ResourceError):
    """The operation is well formed, but the resources it consumes are not there (or in use)."""


def extra_fields(key: ResourceKey) -> dict[str, Any]:
    return dict(json.loads(key.extra)) if key.extra else {}


def _with_extra(key: ResourceKey, role: str, fields: dict[str, Any]) -> ResourceKey:
    extra = json.dumps(fields, sort_keys=True, separators=(",", ":")) if fields else ""
    return ResourceKey(key.name, role, extra)


def reservation_stack(key: ResourceKey) -> list[dict[str, Any]]:
    """The reservations of an item, oldest first; a plain static reservation is one STATIC entry."""
    stack = extra_fields(key).get("reservations")
    if stack:
        return list(stack)
    return [] if key.role == UNRESERVED else [{"type": "STATIC", "role": key.role}]


def is_dynamic(key: ResourceKey) -> bool:
    stack = reservation_stack(key)
    return bool(stack) and stack[-1].get("type") == "DYNAMIC"


def is_revocable(key: ResourceKey) -> bool:
    return '"revocable"' in key.extra


def volume_of(key: ResourceKey) -> dict[str, Any] | None:
    """``{"id", "container_path", "mode"}`` for a persistent volume, else None."""
    disk = extra_fields(key).get("disk") or {}
    persistence = disk.get("persistence") or {}
    if key.name != "disk" or not persistence.get("id"):
        return None
    volume = disk.get("volume") or {}
    return {"id": persistence["id"], "container_path": volume.get("container_path", ""),
            "mode": volume.get("mode", "RW")}


def is_checkpointed(key: ResourceKey) -> bool:
    """What an agent must remember across restarts: dynamic reservations and volumes."""
    return is_dynamic(key) or volume_of(key) is not None


def checkpointed(resources: Resources) -> Resources:
    return resources.filter(is_checkpointed)


def as_revocable(resources: Resources) -> Resources:
    """The same quantities marked ``revocable: {}`` (an agent's oversubscription estimate)."""
    items: dict[ResourceKey, Quantity] = {}
    for key, qty in resources.items():
        items[_with_extra(key, key.role, {**extra_fields(key), "revocable": {}})] = qty
    return Resources(items)


def revocable(resources: Resources) -> Resources:
    return resources.filter(is_revocable)


def volumes(resources: Resources) -> list[tuple[str, dict[str, Any]]]:
    """(role, volume) for every persistent volume in ``resources``."""
    found = []
    for key in resources:
        volume = volume_of(key)
        if volume is not None:
            found.append((key.role, volume))
    return found


# --------------------------------------------------------------------- sources


def _popped(key: ResourceKey, where: str) -> ResourceKey:
    stack = reservation_stack(key)
    if not stack or stack[-1].get("type") != "DYNAMIC":
        raise ResourceError(f"{where}: '{key.name}' for role '{key.role}' is not dynamically reserved")
    fields = extra_fields(key)
    rest = stack[:-1]
    if rest and (len(rest) > 1 or any(r.get("type") == "DYNAMIC" or set(r) - {"type", "role"} for r in rest)):
        fields["reservations"] = rest
    else:
        fields.pop("reservations", None)
    return _with_extra(key, rest[-1]["role"] if rest else UNRESERVED, fields)


def _without_volume(key: ResourceKey, where: str) -> ResourceKey:
    if volume_of(key) is None:
        raise ResourceError(f"{where}: '{key.name}' for role '{key.role}' is not a persistent volume")
    fields = extra_fields(key)
    disk = {k: v for k, v in fields["disk"].items() if k not in ("persistence", "volume")}
    if disk:
        fields["disk"] = disk
    else:
        del fields["disk"]
    return _with_extra(key, key.role, fields)


def _mapped(resources: Resources, convert: Any, where: str) -> Resources:
    items: dict[ResourceKey, Quantity] = {}
    for key, qty in resources.items():
        items[convert(key, where)] = qty
    return Resources(items)


def _take(pool: Resources, consumed: Resources, where: str) -> Resources:
    if not pool.contains(consumed):
        raise Unavailable(f"{where}: the available resources do not contain {consumed.to_text()}")
    return pool - consumed


def stripped(resources: Resources) -> Resources:
    """What ``resources`` were before any volume or dynamic reservation was made of them."""
    items: dict[ResourceKey, Quantity] = {}
    for key, qty in resources.items():
        if volume_of(key) is not None:
            key = _without_volume(key, "strip")
        while is_dynamic(key):
            key = _popped(key, "strip")
        items[key] = qty if key not in items else (Resources({key: items[key]}) + Resources({key: qty}))[key]
    return Resources(items)


# --------------------------------------------------------------------- operations


def check_reserve(target: Resources, allocation_role: str | None) -> None:
    if target.is_empty():
        raise ResourceError("reserve: no resources given")
    for key in target:
        stack = reservation_stack(key)
        if not stack or stack[-1].get("type") != "DYNAMIC":
            raise ResourceError(f"reserve: '{key.name}' needs a DYNAMIC reservation (reservations[].type)")
        if key.role == UNRESERVED:
            raise ResourceError(f"reserve: '{key.name}' cannot be reserved for role '*'")
        if allocation_role is not None and not role_is_within(key.role, allocation_role):
            raise ResourceError(
                f"reserve: '{key.name}' role '{key.role}' is not the offer's role '{allocation_role}' or below it")
        if volume_of(key) is not None or is_revocable(key):
            raise ResourceError(f"reserve: '{key.name}' must be plain (no volume, not revocable)")


def apply_reserve(pool: Resources, target: Resources, allocation_role: str | None = None) -> Resources:
    check_reserve(target, allocation_role)
    source = _mapped(target, _popped, "reserve")
    return _take(pool, source, "reserve") + target


def apply_unreserve(pool: Resources, reserved: Resources, in_use: Resources = EMPTY) -> Resources:
    if reserved.is_empty():
        raise ResourceError("unreserve: no resources given")
    source = _mapped(reserved, _popped, "unreserve")
    for key in reserved:
        if volume_of(key) is not None:
            raise ResourceError(f"unreserve: '{key.name}' is a persistent volume; destroy it first")
    if not (pool - in_use).contains(reserved):
        raise Unavailable(f"unreserve: {reserved.to_text()} is not available (unknown or in use)")
    return pool - reserved + source


def check_volumes(volumes_: Resources, existing: Resources) -> None:
    if volumes_.is_empty():
        raise ResourceError("create: no volumes given")
    taken = {(role, v["id"]) for role, v in volumes(existing)}
    for index, key in enumerate(volumes_):
        where = f"volumes[{index}]"
        volume = volume_of(key)
        if volume is None:
            raise ResourceError(f"{where}: a volume needs name 'disk' and disk.persistence.id")
        if key.role == UNRESERVED:
            raise ResourceError(f"{where}: volume '{volume['id']}' must be on reserved disk")
        path = volume["container_path"]
        if not path or posixpath.isabs(path) or ".." in path.split("/"):
            raise ResourceError(f"{where}: disk.volume.container_path must be a relative path without '..'")
        if volume["mode"] != "RW":
            raise ResourceError(f"{where}: disk.volume.mode must be RW")
        if (key.role, volume["id"]) in taken:
            raise ResourceError(f"{where}: persistence id '{volume['id']}' already exists for role '{key.role}'")
        taken.add((key.role, volume["id"]))


def apply_create(pool: Resources, volumes_: Resources, existing: Resources) -> Resources:
    check_volumes(volumes_, existing)
    source = _mapped(volumes_, _without_volume, "create")
    return _take(pool, source, "create") + volumes_


def apply_destroy(pool: Resources, volumes_: Resources, in_use: Resources = EMPTY) -> Resources:
    if volumes_.is_empty():
        raise ResourceError("destroy: no volumes given")
    source = _mapped(volumes_, _without_volume, "destroy")
    if not (pool - in_use).contains(volumes_):
        raise Unavailable(f"destroy: {volumes_.to_text()} is not available (unknown or in use)")
    return pool - volumes_ + source
