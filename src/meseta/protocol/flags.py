"""Mesos flag value syntaxes, parsed with errors that name the flag and the problem (ValueError):
stout durations (``10mins``, ``1.5secs``), rates (``1/10mins``), percentages (``50%``) and role
weights (``eng=2,ads=0.5``)."""

from __future__ import annotations

import re

from meseta.core.resources import validate_role

STOUT_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "secs": 1.0, "mins": 60.0, "hrs": 3600.0, "days": 86400.0,
               "weeks": 604800.0}  # the duration units Mesos flags accept
_STOUT_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)\s*")


def flag_duration(text: str, where: str) -> float:
    """A duration as Mesos flags write it, in seconds: ``10mins``, ``1.5secs``, ``100ms``.
    ValueError names ``where`` and the problem."""
    match = _STOUT_DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{where}: '{text}' is not a duration like '10mins' or '1.5secs'")
    number, unit = match.groups()
    if unit not in STOUT_UNITS:
        raise ValueError(f"{where}: unknown duration unit '{unit}' in '{text}' (use one of {', '.join(STOUT_UNITS)})")
    return float(number) * STOUT_UNITS[unit]


def parse_rate_limit(text: str | None, where: str = "agent_removal_rate_limit") -> tuple[int, float] | None:
    """``--agent_removal_rate_limit``: ``<count>/<duration>`` such as ``1/10mins`` or ``2/1secs``,
    as (count, seconds); None or empty means no limit. ValueError names the problem."""
    if text is None or not text.strip():
        return None
    count_text, slash, duration_text = text.partition("/")
    if not slash:
        raise ValueError(f"{where}: '{text}' must be '<count>/<duration>', e.g. '1/10mins'")
    try:
        count = int(count_text.strip())
    except ValueError:
        raise ValueError(f"{where}: '{count_text}' in '{text}' is not a whole number of agents") from None
    if count < 1:
        raise ValueError(f"{where}: the count in '{text}' must be at least 1")
    seconds = flag_duration(duration_text, where)
    if seconds <= 0:
        raise ValueError(f"{where}: the duration in '{text}' must be positive")
    return count, seconds


def parse_weights_flag(text: str) -> dict[str, float]:
    """``--weights "eng=2,ads=0.5"``; raises ValueError naming the bad entry."""
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        role, sep, value = item.partition("=")
        problem = validate_role(role.strip()) if sep else "expected role=weight"
        if problem:
            raise ValueError(f"--weights entry '{item}': {problem}")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"--weights entry '{item}': weight is not a number") from None
        if not weight > 0 or weight == float("inf"):
            raise ValueError(f"--weights entry '{item}': weight must be positive")
        weights[role.strip()] = weight
    return weights


def parse_percentage(text: str) -> float:
    """``--recovery-agent-removal-limit``: "100%" or "0.5" -> a fraction in [0, 1]."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValueError(f"'{text}' is not a percentage like 50%") from None
    if not 0 <= value <= 1:
        raise ValueError(f"'{text}' must be between 0% and 100%")
    return value
