"""``--constraint FIELD:OPERATOR[:VALUE]``: where a job's tasks may run; pure.

``FIELD`` is ``hostname`` or ``@hostname`` (the offer's hostname) or the name of an agent attribute
(as ``framework.offers.attribute_text`` writes it: text as is, scalars as ``2`` or ``1.5``). The
operators (Marathon's, those that mean something for a batch)::

    UNIQUE          no two running tasks of the job share the field's value (one per agent for
                    hostname); an agent lacking the field is refused
    CLUSTER VALUE   the field equals VALUE
    CLUSTER         every task runs where the first one was placed (the value is pinned then)
    LIKE REGEX      REGEX matches the whole value; an agent lacking the field is refused
    UNLIKE REGEX    REGEX does not match the whole value; an agent lacking the field is accepted

GROUP_BY, MAX_PER and IS are refused by name (spreading and counting belong to long-running apps;
IS is CLUSTER VALUE). Anything else is refused as unknown.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

OPERATORS = ("UNIQUE", "CLUSTER", "LIKE", "UNLIKE")
NOT_SUPPORTED = ("GROUP_BY", "MAX_PER", "IS")  # Marathon's other operators
MAX_FIELD_CHARS = 128


@dataclass(frozen=True, slots=True)
class Constraint:
    field: str
    operator: str
    value: str | None = None
    pattern: re.Pattern[str] | None = dataclasses.field(default=None, compare=False, repr=False)

    def text(self) -> str:
        return ":".join(p for p in (self.field, self.operator, self.value) if p is not None)


def parse_constraint(text: str) -> Constraint:
    """``FIELD:OPERATOR[:VALUE]`` (VALUE may itself hold ':'), or ValueError saying why not."""
    parts = text.split(":", 2)
    if len(parts) < 2 or not parts[0]:
        raise ValueError(f"'{text[:64]}' is not FIELD:OPERATOR[:VALUE]")
    name, operator = parts[0], parts[1].upper()
    value = parts[2] if len(parts) == 3 else None
    if len(name) > MAX_FIELD_CHARS or any(not c.isprintable() or c.isspace() for c in name):
        raise ValueError(f"field '{name[:64]}' must be at most {MAX_FIELD_CHARS} printable characters")
    if operator in NOT_SUPPORTED:
        raise ValueError(f"operator {operator} is not supported by meseta submit (supported: {', '.join(OPERATORS)})")
    if operator not in OPERATORS:
        raise ValueError(f"unknown operator '{parts[1][:32]}' (supported: {', '.join(OPERATORS)})")
    if operator == "UNIQUE" and value is not None:
        raise ValueError("UNIQUE takes no value")
    if operator in ("LIKE", "UNLIKE", "CLUSTER") and value == "":
        raise ValueError(f"{operator} needs a non-empty value")
    if operator in ("LIKE", "UNLIKE"):
        if value is None:
            raise ValueError(f"{operator} needs a regular expression: {name}:{operator}:REGEX")
        try:
            return Constraint(name, operator, value, re.compile(value))
        except re.error as exc:
            raise ValueError(f"'{value[:64]}' is not a regular expression: {exc}") from None
    return Constraint(name, operator, value)


def violation(constraint: Constraint, fields: Mapping[str, str], placed: Collection[str],
              pinned: str | None) -> str | None:
    """Why an agent with ``fields`` breaks ``constraint``, given the field's values of the job's
    running tasks (``placed``) and the value CLUSTER pinned (if any); None when it does not."""
    value = fields.get(constraint.field)
    op = constraint.operator
    if value is None:
        return None if op == "UNLIKE" else f"{constraint.text()}: the agent has no '{constraint.field}'"
    if op == "UNIQUE" and value in placed:
        return f"{constraint.text()}: a task already runs on {constraint.field}={value}"
    if op == "CLUSTER":
        wanted = constraint.value if constraint.value is not None else pinned
        if wanted is not None and value != wanted:
            return f"{constraint.text()}: {constraint.field}={value}, not {wanted}"
    if constraint.pattern is not None:
        matches = constraint.pattern.fullmatch(value) is not None
        if matches != (op == "LIKE"):
            return f"{constraint.text()}: {constraint.field}={value}"
    return None
