"""Resources: the immutable algebra of CPUs, memory, disk, ports and friends.

A :class:`Resources` value maps a :class:`ResourceKey` to a quantity::

    ResourceKey(name="cpus",  role="*",   extra="")  ->  4000          scalar, in thousandths
    ResourceKey(name="mem",   role="ads", extra="")  ->  1024000       reserved for role "ads"
    ResourceKey(name="ports", role="*",   extra="")  ->  ((31000, 32000),)   inclusive ranges
    ResourceKey(name="zones", role="*",   extra="")  ->  frozenset({"a", "b"})

Scalars keep Mesos' three decimal digits as integers, so sums and differences are exact.
``extra`` is the canonical JSON of the fields this module does not interpret (reservation
principal and labels, disk info, revocable, ...): resources that differ there never merge,
and they round-trip unchanged through the v1 JSON form.

Subtraction saturates: a quantity never goes below zero, and empty entries vanish.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple, TypeAlias

Ranges: TypeAlias = tuple[tuple[int, int], ...]
Quantity: TypeAlias = int | Ranges | frozenset[str]

SCALE = 1000  # Mesos scalars carry three decimal digits.
# The largest scalar a resource may hold: its thousandths still fit a double exactly (2^53), far above
# any machine (a million CPUs, an exabyte of memory in MB). Larger values are refused where they enter.
MAX_SCALAR = float(2**53 // SCALE)
MAX_RANGE_VALUE = 2**64 - 1  # Value.Range's begin and end are uint64
UNRESERVED = "*"
_KNOWN_FIELDS = frozenset(
    {"name", "type", "scalar", "ranges", "set", "role", "allocation_info", "reservations"}
)
_ITEM = re.compile(r"^\s*([^():;\s]+)\s*(?:\(([^()]*)\))?\s*:\s*(.+?)\s*$")


class ResourceError(ValueError):
    """A resource description is malformed; the message names the item and the problem."""


class ResourceKey(NamedTuple):
    """Identity of a resource item; a tuple, so hashing and ordering run in C (hot in the allocator)."""

    name: str
    role: str = UNRESERVED
    extra: str = ""


def to_milli(value: float) -> int:
    """A scalar in thousandths, rounded the way Mesos rounds (to the nearest)."""
    return round(value * SCALE)


def from_milli(milli: int) -> float:
    return milli / SCALE


# --------------------------------------------------------------------- range arithmetic


def normalize_ranges(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sort and merge overlapping or adjacent inclusive ranges."""
    merged: list[list[int]] = []
    for begin, end in sorted(ranges):
        if begin > end:
            raise ResourceError(f"range [{begin}-{end}] has begin > end")
        if merged and begin <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return tuple((b, e) for b, e in merged)


def subtract_ranges(left: Ranges, right: Ranges) -> Ranges:
    result: list[tuple[int, int]] = []
    for begin, end in left:
        pieces = [(begin, end)]
        for rb, re_ in right:
            next_pieces = []
            for pb, pe in pieces:
                if re_ < pb or rb > pe:
                    next_pieces.append((pb, pe))
                    continue
                if pb < rb:
                    next_pieces.append((pb, rb - 1))
                if re_ < pe:
                    next_pieces.append((re_ + 1, pe))
            pieces = next_pieces
        result.extend(pieces)
    return normalize_ranges(result)


def ranges_contain(outer: Ranges, inner: Ranges) -> bool:
    return all(any(ob <= b and e <= oe for ob, oe in outer) for b, e in inner)


# --------------------------------------------------------------------- quantity algebra


def _add(a: Quantity, b: Quantity) -> Quantity:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return a | b
    if isinstance(a, tuple) and isinstance(b, tuple):
        return normalize_ranges(a + b)
    raise ResourceError("cannot add resources of different types")


def _subtract(a: Quantity, b: Quantity) -> Quantity:
    if isinstance(a, int) and isinstance(b, int):
        return max(0, a - b)
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return a - b
    if isinstance(a, tuple) and isinstance(b, tuple):
        return subtract_ranges(a, b)
    raise ResourceError("cannot subtract resources of different types")


def _contains(a: Quantity, b: Quantity) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a >= b
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return b <= a
    if isinstance(a, tuple) and isinstance(b, tuple):
        return ranges_contain(a, b)
    return False


def _is_empty(q: Quantity) -> bool:
    return not q  # 0, () and frozenset() are all falsy


# --------------------------------------------------------------------- the value type


class Resources(Mapping[ResourceKey, Quantity]):
    """An immutable bag of resources. Hashable; ``+``, ``-``, ``contains``, ``<=``."""

    __slots__ = ("_hash", "_items", "_scalars", "_unreserved_only")

    def __init__(self, items: Mapping[ResourceKey, Quantity] | None = None) -> None:
        self._items: dict[ResourceKey, Quantity] = (
            {k: v for k, v in items.items() if not _is_empty(v)} if items else {}
        )
        self._hash: int | None = None
        self._scalars: dict[str, int] | None = None  # scalar_totals, computed once (hot in the allocator)
        self._unreserved_only: bool | None = None  # no reserved item: the role filters return fast

    # Mapping protocol
    def __getitem__(self, key: ResourceKey) -> Quantity:
        return self._items[key]

    def __iter__(self) -> Iterator[ResourceKey]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._items.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Resources):
            return self._items == other._items
        return NotImplemented

    def __repr__(self) -> str:
        return f"Resources({self.to_text()!r})"

    # algebra
    def __add__(self, other: Resources) -> Resources:
        if not other._items:
            return self
        if not self._items:
            return other
        items = dict(self._items)
        for key, qty in other._items.items():
            have = items.get(key)
            items[key] = qty if have is None else _add(have, qty)
        return Resources(items)

    def __sub__(self, other: Resources) -> Resources:
        if not other._items:
            return self
        if self._items == other._items:  # a whole agent taken by one offer
            return EMPTY
        items = dict(self._items)
        for key, qty in other._items.items():
            have = items.get(key)
            if have is not None:
                items[key] = _subtract(have, qty)
        return Resources(items)

    def contains(self, other: Resources) -> bool:
        items = self._items
        if items == other._items:  # one C-level comparison; the usual case for decline filters
            return True
        for key, qty in other._items.items():
            have = items.get(key)
            if have is None or not _contains(have, qty):
                return False
        return True

    def __le__(self, other: Resources) -> bool:
        return other.contains(self)

    def __ge__(self, other: Resources) -> bool:
        return self.contains(other)

    def is_empty(self) -> bool:
        return not self._items

    # queries
    def scalar(self, name: str) -> float:
        """Total of a scalar resource over all roles, as a float."""
        return self.scalar_milli(name) / SCALE

    def scalar_milli(self, name: str) -> int:
        return sum(q for k, q in self._items.items() if k.name == name and isinstance(q, int))

    def ranges(self, name: str) -> Ranges:
        found: list[tuple[int, int]] = []
        for k, q in self._items.items():
            if k.name == name and isinstance(q, tuple):
                found.extend(q)
        return normalize_ranges(found)

    def names(self) -> set[str]:
        return {k.name for k in self._items}

    def scalar_totals(self) -> Mapping[str, int]:
        """Thousandths per scalar name, over all roles (the DRF view). Read-only: it is cached."""
        totals = self._scalars
        if totals is None:
            totals = {}
            for k, q in self._items.items():
                if isinstance(q, int):
                    totals[k.name] = totals.get(k.name, 0) + q
            self._scalars = totals
        return totals

    def filter(self, predicate: Any) -> Resources:
        """The items whose key satisfies ``predicate``; ``self`` when that is all of them."""
        kept = {k: q for k, q in self._items.items() if predicate(k)}
        return self if len(kept) == len(self._items) else Resources(kept)

    def is_unreserved(self) -> bool:
        """No item is reserved (cached: the allocator asks this of every agent's free resources)."""
        if self._unreserved_only is None:
            self._unreserved_only = all(k.role == UNRESERVED for k in self._items)
        return self._unreserved_only

    def unreserved(self) -> Resources:
        if self.is_unreserved():
            return self
        return self.filter(lambda k: k.role == UNRESERVED)

    def allocatable_to(self, role: str) -> Resources:
        """Unreserved resources plus those reserved to ``role`` or one of its ancestors."""
        if self.is_unreserved():
            return self
        return self.filter(lambda k: k.role == UNRESERVED or role_is_within(role, k.role))

    def reserved(self, role: str | None = None) -> Resources:
        if self.is_unreserved():
            return EMPTY
        if role is None:
            return self.filter(lambda k: k.role != UNRESERVED)
        return self.filter(lambda k: k.role == role)

    # conversions
    @classmethod
    def parse(cls, text: str, default_role: str = UNRESERVED) -> Resources:
        return parse_text(text, default_role)

    @classmethod
    def from_json(cls, items: Iterable[Mapping[str, Any]]) -> Resources:
        """Resources from their v1 JSON list. Values are immutable and clusters repeat the same
        requests (every instance of an app, every task an agent reports after a failover), so
        parses are shared through a bounded cache keyed by the list's text (``repr``: one C pass,
        the same for equal JSON values, different for different ones)."""
        if not isinstance(items, list):
            return parse_json(items)
        key = repr(items)
        parsed = _PARSED.get(key)
        if parsed is None:
            parsed = parse_json(items)
            if len(_PARSED) >= PARSE_CACHE_SIZE:
                _PARSED.clear()
            _PARSED[key] = parsed
        return parsed

    def to_json(self, allocation_role: str | None = None) -> list[dict[str, Any]]:
        return [resource_to_json(k, q, allocation_role) for k, q in sorted(self._items.items())]

    def to_text(self) -> str:
        return ";".join(_item_to_text(k, q) for k, q in sorted(self._items.items()))

    def summary(self) -> dict[str, Any]:
        """The legacy JSON summary: cpus/gpus/mem/disk always present, ranges as "[a-b, c-d]"."""
        out: dict[str, Any] = {"cpus": 0.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0}
        for name, milli in self.scalar_totals().items():
            out[name] = from_milli(milli)
        for name in sorted(self.names()):
            rngs = self.ranges(name)
            if rngs:
                out[name] = "[" + ", ".join(f"{b}-{e}" for b, e in rngs) + "]"
        for k, q in self._items.items():
            if isinstance(q, frozenset):
                out[k.name] = "{" + ", ".join(sorted(q)) + "}"
        return out


EMPTY = Resources()


# --------------------------------------------------------------------- roles


def share_of_ranges(resources: Resources, index: int, count: int) -> Resources:
    """``resources`` with every range resource cut into ``count`` contiguous shares and only the
    ``index``-th kept: agents sharing one host (``meseta local``) must not hand out the same
    host ports."""
    items: dict[ResourceKey, Quantity] = {}
    for key, quantity in resources.items():
        if isinstance(quantity, tuple):
            values = [v for b, e in quantity for v in range(b, e + 1)]
            size = -(-len(values) // count)
            part = values[index * size:(index + 1) * size]
            quantity = normalize_ranges((v, v) for v in part)
            if not quantity:
                continue
        items[key] = quantity
    return Resources(items)


def role_is_within(role: str, ancestor: str) -> bool:
    """True if ``role`` is ``ancestor`` or a descendant of it (``eng/web`` is within ``eng``)."""
    return role == ancestor or role.startswith(ancestor + "/")


def validate_role(role: str) -> str | None:
    """The problem with a role name, or None when it is valid (Mesos' rules)."""
    if role == UNRESERVED:
        return None
    if not role:
        return "role name is empty"
    if role.startswith("/") or role.endswith("/") or "//" in role:
        return f"role '{role}' may not start or end with '/' or contain '//'"
    for part in role.split("/"):
        if part in (".", "..", "*"):
            return f"role '{role}' has an invalid component '{part}'"
        if part.startswith("-"):
            return f"role '{role}' has a component starting with '-'"
        if any(c.isspace() or c < " " or c == "\x7f" for c in part):
            return f"role '{role}' contains whitespace or control characters"
    return None


# --------------------------------------------------------------------- text form


def parse_text(text: str, default_role: str = UNRESERVED) -> Resources:
    """Parse ``cpus:4;mem(ads):1024;ports:[31000-32000];zones:{a,b}``."""
    result: dict[ResourceKey, Quantity] = {}
    for raw in text.split(";"):
        if not raw.strip():
            continue
        match = _ITEM.match(raw)
        if not match:
            raise ResourceError(f"resource item '{raw.strip()}' is not of the form name(role):value")
        name, role, value = match.group(1), match.group(2), match.group(3)
        role = (role or default_role).strip() or default_role
        problem = validate_role(role)
        if problem:
            raise ResourceError(f"resource '{name}': {problem}")
        key = ResourceKey(name, role)
        qty = _parse_text_value(name, value)
        result[key] = qty if key not in result else _add(result[key], qty)
    return Resources(result)


def _parse_text_value(name: str, value: str) -> Quantity:
    if value.startswith("["):
        if not value.endswith("]"):
            raise ResourceError(f"resource '{name}': ranges must end with ']'")
        return normalize_ranges(_parse_range(name, part) for part in _split_list(value[1:-1]))
    if value.startswith("{"):
        if not value.endswith("}"):
            raise ResourceError(f"resource '{name}': sets must end with '}}'")
        return frozenset(_split_list(value[1:-1]))
    return _parse_scalar(name, value)


def _split_list(body: str) -> list[str]:
    return [p.strip() for p in body.split(",") if p.strip()]


def _parse_range(name: str, text: str) -> tuple[int, int]:
    begin, sep, end = text.partition("-")
    try:
        b = int(begin)
        e = int(end) if sep else b
    except ValueError:
        raise ResourceError(f"resource '{name}': range '{text}' is not 'begin-end'") from None
    if b < 0 or b > e or e > MAX_RANGE_VALUE:
        raise ResourceError(f"resource '{name}': range '{text}' is empty or negative (or beyond 2^64-1)")
    return (b, e)


def _parse_scalar(name: str, text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ResourceError(f"resource '{name}': '{text}' is not a number") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_SCALAR:
        raise ResourceError(f"resource '{name}': scalar must be finite and non-negative, at most "
                            f"{MAX_SCALAR:g}, got {text}")
    return to_milli(value)


def _item_to_text(key: ResourceKey, qty: Quantity) -> str:
    role = "" if key.role == UNRESERVED else f"({key.role})"
    if isinstance(qty, int):
        body = f"{from_milli(qty):g}"
    elif isinstance(qty, tuple):
        body = "[" + ",".join(f"{b}-{e}" for b, e in qty) + "]"
    else:
        body = "{" + ",".join(sorted(qty)) + "}"
    return f"{key.name}{role}:{body}"


# --------------------------------------------------------------------- v1 JSON form


def parse_json(items: Iterable[Mapping[str, Any]]) -> Resources:
    """Parse a list of v1 ``Resource`` objects (pre- or post-refinement reservations)."""
    result: dict[ResourceKey, Quantity] = {}
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ResourceError(f"resources[{index}] is not an object")
        key, qty = _resource_from_json(index, item)
        result[key] = qty if key not in result else _add(result[key], qty)
    return Resources(result)


PARSE_CACHE_SIZE = 4096  # distinct resource lists kept parsed: far more shapes than a cluster's apps
_PARSED: dict[str, Resources] = {}


def _resource_from_json(index: int, item: Mapping[str, Any]) -> tuple[ResourceKey, Quantity]:
    where = f"resources[{index}]"
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ResourceError(f"{where}.name is required")
    kind = item.get("type", "SCALAR")
    qty = _json_quantity(where, kind, item)
    role = _json_role(where, item)
    _check_disk(where, item.get("disk"))
    extra_fields = {k: v for k, v in item.items() if k not in _KNOWN_FIELDS and v is not None}
    reservations = item.get("reservations")
    legacy = extra_fields.pop("reservation", None)  # pre-refinement dynamic reservation: {principal, labels}
    if legacy is not None and role != UNRESERVED and not reservations:
        reservations = [{**(legacy if isinstance(legacy, Mapping) else {}), "type": "DYNAMIC", "role": role}]
    if reservations and (
        len(reservations) > 1 or any(r.get("type") == "DYNAMIC" or set(r) - {"type", "role"} for r in reservations)
    ):
        extra_fields["reservations"] = reservations  # dynamic or refined: the whole stack is kept
    extra = json.dumps(extra_fields, sort_keys=True, separators=(",", ":")) if extra_fields else ""
    return ResourceKey(name, role, extra), qty


def _json_quantity(where: str, kind: Any, item: Mapping[str, Any]) -> Quantity:
    if kind == "SCALAR":
        value = _field(where, item, "scalar").get("value")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ResourceError(f"{where}.scalar.value '{value}' is not a number") from None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ResourceError(f"{where}.scalar.value is required for a SCALAR resource")
        if not math.isfinite(value) or not 0 <= value <= MAX_SCALAR:
            raise ResourceError(f"{where}.scalar.value must be finite and non-negative, at most {MAX_SCALAR:g}")
        return to_milli(value)
    if kind == "RANGES":
        raw = _field(where, item, "ranges").get("range") or []
        if not isinstance(raw, list) or not all(isinstance(r, Mapping) for r in raw):
            raise ResourceError(f"{where}.ranges.range must be a list of {{begin, end}} objects")
        try:
            pairs = [(_range_bound(r["begin"]), _range_bound(r["end"])) for r in raw]
        except (KeyError, TypeError, ValueError):
            raise ResourceError(f"{where}.ranges.range entries need integer begin and end, from 0 to 2^64-1") from None
        return normalize_ranges(pairs)
    if kind == "SET":
        raw_items = _field(where, item, "set").get("item") or []
        if not isinstance(raw_items, list) or not all(isinstance(x, str) for x in raw_items):
            raise ResourceError(f"{where}.set.item must be a list of strings")
        return frozenset(raw_items)
    raise ResourceError(f"{where}.type '{kind}' is not one of SCALAR, RANGES, SET")


def _check_disk(where: str, disk: Any) -> None:
    """DiskInfo's parts that volumes are made of: objects, with a string persistence id and path."""
    if disk is None:
        return
    if not isinstance(disk, Mapping):
        raise ResourceError(f"{where}.disk must be an object")
    for part, fields in (("persistence", ("id", "principal")), ("volume", ("container_path", "host_path", "mode"))):
        value = disk.get(part)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise ResourceError(f"{where}.disk.{part} must be an object")
        for name in fields:
            if value.get(name) is not None and not isinstance(value[name], str):
                raise ResourceError(f"{where}.disk.{part}.{name} must be a string")


def _field(where: str, item: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """``item[name]`` as an object ({} when unset), or a ResourceError naming it."""
    value = item.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ResourceError(f"{where}.{name} must be an object")
    return value


def _range_bound(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    number = int(value)
    if not 0 <= number <= MAX_RANGE_VALUE:
        raise ValueError(value)
    return number


def _json_role(where: str, item: Mapping[str, Any]) -> str:
    reservations = item.get("reservations")
    if reservations is not None and (
        not isinstance(reservations, list) or not all(isinstance(r, Mapping) for r in reservations)
    ):
        raise ResourceError(f"{where}.reservations must be a list of objects")
    for position, reservation in enumerate(reservations or []):
        if not isinstance(reservation.get("role"), str):
            raise ResourceError(f"{where}.reservations[{position}].role is required")
    role = reservations[-1].get("role") if reservations else item.get("role")
    if role is None:
        return UNRESERVED
    if not isinstance(role, str):
        raise ResourceError(f"{where}.role must be a string")
    problem = validate_role(role)
    if problem:
        raise ResourceError(f"{where}: {problem}")
    return role


def resource_to_json(key: ResourceKey, qty: Quantity, allocation_role: str | None = None) -> dict[str, Any]:
    """One v1 ``Resource`` object, in the pre-refinement form (``role``) that pymesos reads."""
    out: dict[str, Any] = {"name": key.name}
    if isinstance(qty, int):
        out["type"] = "SCALAR"
        out["scalar"] = {"value": from_milli(qty)}
    elif isinstance(qty, tuple):
        out["type"] = "RANGES"
        out["ranges"] = {"range": [{"begin": b, "end": e} for b, e in qty]}
    else:
        out["type"] = "SET"
        out["set"] = {"item": sorted(qty)}
    out["role"] = key.role
    if key.role != UNRESERVED:
        out["reservations"] = [{"type": "STATIC", "role": key.role}]
    if key.extra:
        out.update(json.loads(key.extra))
    if allocation_role is not None:
        out["allocation_info"] = {"role": allocation_role}
    return out


def parse_attributes(text: str) -> list[dict[str, Any]]:
    """Agent ``--attributes`` (``rack:a;level:10;ports:[1-5]``) as v1 ``Attribute`` objects."""
    attributes: list[dict[str, Any]] = []
    for raw in text.split(";"):
        if not raw.strip():
            continue
        name, sep, value = raw.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ResourceError(f"attribute '{raw.strip()}' is not of the form name:value")
        attributes.append(_attribute(name, value))
    return attributes


def _attribute(name: str, value: str) -> dict[str, Any]:
    if value.startswith("[") and value.endswith("]"):
        ranges = normalize_ranges(_parse_range(name, p) for p in _split_list(value[1:-1]))
        return {"name": name, "type": "RANGES", "ranges": {"range": [{"begin": b, "end": e} for b, e in ranges]}}
    try:
        number = float(value)
    except ValueError:
        return {"name": name, "type": "TEXT", "text": {"value": value}}
    return {"name": name, "type": "SCALAR", "scalar": {"value": number}}


def attributes_summary(attributes: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The legacy /state rendering: name -> number, "[a-b, c-d]", "{x, y}" or text."""
    out: dict[str, Any] = {}
    for attr in attributes:
        kind = attr.get("type")
        if kind == "SCALAR":
            out[attr["name"]] = attr["scalar"]["value"]
        elif kind == "RANGES":
            out[attr["name"]] = "[" + ", ".join(f"{r['begin']}-{r['end']}" for r in attr["ranges"]["range"]) + "]"
        elif kind == "SET":
            out[attr["name"]] = "{" + ", ".join(attr["set"]["item"]) + "}"
        else:
            out[attr["name"]] = attr.get("text", {}).get("value", "")
    return out
