"""Placement constraints (Marathon's seven operators) as a pure matcher.

A constraint is ``[field, OPERATOR]`` or ``[field, OPERATOR, value]``. ``field`` names one of
an agent's *constraint fields*, all strings (see :func:`agent_fields`)::

    hostname, @hostname   the offer's hostname
    @region, @zone        the agent's fault domain (absent when it has none)
    <attribute name>      text as is; scalar "2", "1.5"; ranges "[1-5,8-9]"; set "{a,b}"

What each operator asks of an offer whose field value is ``v``, given the values of the
app's active instances (``placed``)::

    UNIQUE              v differs from every placed value
    CLUSTER value       v == value
    CLUSTER             v == the value of the first placement (anything while none is placed)
    GROUP_BY [n]        v is new, or at least n values are in use and v's group is a smallest one
    LIKE regex          regex matches all of v
    UNLIKE regex        regex does not match all of v; the only operator that accepts agents
                        lacking the field
    MAX_PER n           fewer than n placed on v
    IS value            v == value (scalars also compare as numbers: "2" IS "2.0")

Instances whose agent lacks the field are left out of the counts. Malformed constraints
(unknown operator, bad regex, missing number) refuse every offer here;
:func:`constraint_problem` is what definition validation reports as a 422.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from meseta.services.model import App, Instance

Constraint = Sequence[str]  # [field, OPERATOR] or [field, OPERATOR, value]

OPERATORS = ("UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS")
HOSTNAME_FIELDS = ("hostname", "@hostname")
_VALUE_REQUIRED = frozenset({"LIKE", "UNLIKE", "MAX_PER", "IS"})


# --------------------------------------------------------------------- agent fields


def agent_fields(offer: Mapping[str, Any]) -> dict[str, str]:
    """The constraint fields of the agent behind a v1 offer, every value formatted as a string."""
    fields: dict[str, str] = {}
    for attribute in offer.get("attributes") or ():
        name = attribute.get("name")
        if isinstance(name, str) and name:
            fields[name] = format_attribute(attribute)
    hostname = offer.get("hostname")
    if isinstance(hostname, str):
        fields["hostname"] = fields["@hostname"] = hostname
    fault_domain = (offer.get("domain") or {}).get("fault_domain") or {}
    for level in ("region", "zone"):
        name = (fault_domain.get(level) or {}).get("name")
        if isinstance(name, str):
            fields["@" + level] = name
    return fields


def format_attribute(attribute: Mapping[str, Any]) -> str:
    """An attribute's value as constraints see it: text, ``2``/``1.5``, ``[1-5,8-9]``, ``{a,b}``."""
    kind = attribute.get("type", "TEXT")
    if kind == "SCALAR":
        return format_scalar(float((attribute.get("scalar") or {}).get("value", 0.0)))
    if kind == "RANGES":
        ranges = sorted((int(r["begin"]), int(r["end"])) for r in (attribute.get("ranges") or {}).get("range") or ())
        return "[" + ",".join(f"{b}-{e}" for b, e in ranges) + "]"
    if kind == "SET":
        return "{" + ",".join(sorted((attribute.get("set") or {}).get("item") or ())) + "}"
    return str((attribute.get("text") or {}).get("value", ""))


def format_scalar(value: float) -> str:
    """Mesos' three decimal digits, without trailing zeros: 2.0 -> "2", 1.50 -> "1.5"."""
    return f"{round(value, 3):.15g}"


def instance_field(instance: Instance, name: str) -> str | None:
    """An instance's value of a constraint field (its host when the field is the hostname)."""
    value = instance.agent_fields.get(name)
    if value is None and name in HOSTNAME_FIELDS and instance.host:
        return instance.host
    return value


# --------------------------------------------------------------------- placed counts


@dataclass(slots=True)
class Placed:
    """Per constraint field: how many active instances sit on each value, and the first value.

    Built once per offer from the app's instances (``Placed.of``); ``add`` counts a placement
    made in the same offer so the next one is checked against it. ``copy`` before adding when
    the value is shared.
    """

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)  # CLUSTER without value: the earliest placement's

    @classmethod
    def of(cls, constraints: Iterable[Constraint], instances: Iterable[Instance]) -> Placed:
        names = sorted({str(c[0]) for c in constraints if len(c) >= 2})
        placed = cls({name: Counter() for name in names})
        if not names:
            return placed
        earliest: dict[str, tuple[float, str]] = {}
        for instance in instances:
            if not instance.active:
                continue
            for name in names:
                value = instance_field(instance, name)
                if value is None:
                    continue
                placed.counts[name][value] += 1
                key = (instance.staged_at, instance.task_id)
                if name not in earliest or key < earliest[name]:
                    earliest[name] = key
                    placed.first[name] = value
        return placed

    def add(self, fields: Mapping[str, str]) -> None:
        for name, counter in self.counts.items():
            value = fields.get(name)
            if value is not None:
                counter[value] += 1
                self.first.setdefault(name, value)

    def copy(self) -> Placed:
        return Placed({name: Counter(c) for name, c in self.counts.items()}, dict(self.first))


# --------------------------------------------------------------------- matching


def meets(constraint: Constraint, fields: Mapping[str, str], placed: Placed) -> bool:
    """Whether an agent with ``fields`` may take one more instance under ``constraint``."""
    if len(constraint) < 2:
        return False
    name, op = str(constraint[0]), str(constraint[1])
    arg = str(constraint[2]) if len(constraint) > 2 else None
    value = fields.get(name)
    if op == "UNLIKE":
        if arg is None or (pattern := _regex(arg)) is None:
            return False
        return value is None or pattern.fullmatch(value) is None
    if value is None:
        return False
    counts = placed.counts.get(name, Counter())
    if op == "UNIQUE":
        return counts[value] == 0
    if op == "CLUSTER":
        if arg:
            return value == arg
        return placed.first.get(name, value) == value
    if op == "GROUP_BY":
        return _group_by_accepts(value, counts, arg)
    if op == "LIKE":
        return arg is not None and (pattern := _regex(arg)) is not None and pattern.fullmatch(value) is not None
    if op == "MAX_PER":
        limit = _int(arg)
        return limit is not None and counts[value] < limit
    if op == "IS":
        return arg is not None and _equal(value, arg)
    return False


def _group_by_accepts(value: str, counts: Counter[str], arg: str | None) -> bool:
    """New values are always welcome; a used one only once ``expected`` values are in use and
    its group is among the smallest (Marathon's rule; the expected count defaults to 0)."""
    in_use = {v: n for v, n in counts.items() if n > 0}
    if value not in in_use:
        return True
    expected = _int(arg) if arg else 0
    if expected is None:
        return False
    return len(in_use) >= expected and in_use[value] == min(in_use.values())


def violations(app: App, fields: Mapping[str, str], instances: Iterable[Instance] | Placed) -> list[Constraint]:
    """The app's constraints an agent with ``fields`` fails, given its instances (or their counts)."""
    constraints = app.get("constraints") or []
    if not constraints:
        return []
    placed = instances if isinstance(instances, Placed) else Placed.of(constraints, instances)
    return [c for c in constraints if not meets(c, fields, placed)]


def describe(constraint: Constraint) -> str:
    """``hostname:UNIQUE``, ``rack:GROUP_BY:3``: the form Marathon uses in messages."""
    return ":".join(str(part) for part in constraint)


def constraint_problem(constraint: Any) -> str | None:
    """What is wrong with one constraint, or None: for the definition's 422 details."""
    if not isinstance(constraint, list | tuple) or not 2 <= len(constraint) <= 3:
        return "Each constraint must have either 2 or 3 fields"
    if not all(isinstance(part, str) for part in constraint):
        return "Constraint fields must be strings"
    name, op = constraint[0], constraint[1]
    arg = constraint[2] if len(constraint) == 3 else None
    if not name:
        return "Missing field and operator"
    if op not in OPERATORS:
        return f"Constraint operator must be one of {', '.join(OPERATORS)}"
    if op in _VALUE_REQUIRED and arg is None:
        return f"Value is required for operator {op}"
    if op == "UNIQUE" and arg is not None:
        return "Value specified but not used"
    if op in ("LIKE", "UNLIKE") and _regex(str(arg)) is None:
        return f"'{arg}' is not a valid regular expression"
    if op == "MAX_PER" and (_int(arg) is None or (_int(arg) or 0) < 0):
        return "Value for MAX_PER must be a non-negative integer"
    if op == "GROUP_BY" and arg and (_int(arg) is None or (_int(arg) or 0) < 0):
        return "Value for GROUP_BY must be a non-negative integer"
    return None


# --------------------------------------------------------------------- scale-down


def select_kills(app: App, instances: Sequence[Instance], count: int) -> list[Instance]:
    """Which ``count`` instances a scale-down kills: always one from the fullest GROUP_BY or
    MAX_PER group (so the spread stays even), ties broken by ``killSelection``
    (YOUNGEST_FIRST by default: the most recently staged first)."""
    youngest_first = app.get("killSelection", "YOUNGEST_FIRST") != "OLDEST_FIRST"
    ordered = sorted(instances, key=lambda i: (i.staged_at, i.task_id), reverse=youngest_first)
    spread = [str(c[0]) for c in app.get("constraints") or [] if len(c) >= 2 and c[1] in ("GROUP_BY", "MAX_PER")]
    if not spread or count >= len(ordered):
        return ordered[: max(0, count)]
    # Instances sharing every spread value are interchangeable: keep them in kill order per bucket.
    buckets: dict[tuple[str | None, ...], deque[tuple[int, Instance]]] = {}
    counts: dict[str, Counter[str]] = {name: Counter() for name in spread}
    for position, instance in enumerate(ordered):
        key = tuple(instance_field(instance, name) for name in spread)
        buckets.setdefault(key, deque()).append((position, instance))
        for name, value in zip(spread, key, strict=True):
            if value is not None:
                counts[name][value] += 1

    def fullness(key: tuple[str | None, ...]) -> tuple[tuple[int, ...], int]:
        sizes = tuple(counts[n][v] if v is not None else 0 for n, v in zip(spread, key, strict=True))
        return sizes, -buckets[key][0][0]

    chosen: list[Instance] = []
    for _ in range(count):
        key = max(buckets, key=fullness)
        chosen.append(buckets[key].popleft()[1])
        if not buckets[key]:
            del buckets[key]
        for name, value in zip(spread, key, strict=True):
            if value is not None:
                counts[name][value] -= 1
    return chosen


# --------------------------------------------------------------------- small parsers


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(str(text))
    except ValueError:
        return None


def _equal(value: str, wanted: str) -> bool:
    if value == wanted:
        return True
    try:
        return round(float(value), 3) == round(float(wanted), 3)
    except ValueError:
        return False
