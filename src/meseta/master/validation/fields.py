"""Field rules shared by every parser of the master's edge: ids, roles, durations, base64 bytes,
and the structural check of a JSON value against its ``mesos.v1`` message."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, TypeVar

from meseta.core.resources import ResourceError, Resources, validate_role
from meseta.master.validation.errors import invalid
from meseta.protocol.ids import id_problem
from meseta.protocol.messages import ID, NonConforming, conform

T = TypeVar("T")
NANOS = 1_000_000_000
# A Duration is int64 nanoseconds: the longest any timeout (failover, grace, window) can be, ~292 years.
MAX_DURATION_SECONDS = (2**63 - 1) / NANOS


def structured(raw: Any, kind: type[T], where: str) -> T:
    """``raw`` as the typed message, or a 400 naming the field that would not parse."""
    if not isinstance(raw, dict):
        raise invalid(f"'{where}' must be an object")
    try:
        return conform(raw, kind, where)
    except NonConforming as exc:
        raise invalid(str(exc)) from None


def checked_id(kind: str, value: ID | None) -> str:
    """The id's string, or a 400 saying what is wrong with it (Mesos's id rules)."""
    return _id_string(kind, None if value is None else value.value)


def raw_id(raw: Any, kind: str) -> str:
    """An id given as raw JSON (``{"value": "..."}``), checked like ``checked_id``."""
    return _id_string(kind, raw.get("value") if isinstance(raw, dict) else None)


def _id_string(kind: str, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(f"'{kind}' is required (an object {{\"value\": \"...\"}})")
    problem = id_problem(f"'{kind}'", value)
    if problem:
        raise invalid(problem)
    return value


def checked_role(role: Any, where: str) -> str:
    if not isinstance(role, str):
        raise invalid(f"'{where}' must be a string")
    problem = validate_role(role)
    if problem:
        raise invalid(f"'{where}': {problem}")
    return role


def seconds(value: Any, where: str, *, default: float | None = None) -> float | None:
    """A non-negative, finite number of seconds no longer than a Duration can hold."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(f"'{where}' must be a finite number of seconds")
    if not 0 <= value <= MAX_DURATION_SECONDS:
        raise invalid(f"'{where}' must be from 0 to {MAX_DURATION_SECONDS:.0f} seconds, got {value}")
    return float(value)


def base64_bytes(value: str | None, where: str) -> None:
    """A ``bytes`` field: standard base64 with padding (Mesos answers 400 otherwise)."""
    if value is None:
        return
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"'{where}' is not valid base64") from None


def uuid_bytes(value: Any, where: str) -> str:
    """A status update's uuid: base64 of exactly 16 bytes."""
    if not isinstance(value, str):
        raise invalid(f"'{where}' must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"'{where}' is not valid base64") from None
    if len(raw) != 16:
        raise invalid(f"'{where}' must decode to 16 bytes, got {len(raw)}")
    return value


def resources(raw: Any, where: str) -> Resources:
    """Resources from their JSON list, or a 400 naming the item and the problem."""
    if raw is None:
        return Resources()
    if not isinstance(raw, list):
        raise invalid(f"'{where}' must be a list of Resource objects")
    try:
        return Resources.from_json(raw)
    except ResourceError as exc:
        raise invalid(f"'{where}': {exc}") from None
