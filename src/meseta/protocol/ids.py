"""Ids on the wire: every Mesos id (FrameworkID, AgentID, TaskID, OfferID, ExecutorID...) is
``{"value": "<string>"}``, and what its string may be (Mesos's id rule: ids become path
components on agents, so non-empty, at most NAME_MAX, not "." or "..", no "/", "\\" or control
characters)."""

from __future__ import annotations

import re

MAX_ID_LENGTH = 255  # NAME_MAX
_UNSAFE_IN_ID = re.compile(r"[\x00-\x1f\x7f/\\]")


def id_problem(kind: str, value: str) -> str | None:
    """Why ``value`` cannot be an id (naming ``kind``), or None."""
    if not value:
        return f"{kind} must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"{kind} '{value[:32]}...' is longer than {MAX_ID_LENGTH} characters"
    if value in (".", ".."):
        return f"{kind} '{value}' is not allowed"
    if _UNSAFE_IN_ID.search(value):
        return f"{kind} '{value}' contains '/', '\\\\' or a control character"
    return None


def id_json(value: str) -> dict[str, str]:
    """The wire form of an id."""
    return {"value": value}
