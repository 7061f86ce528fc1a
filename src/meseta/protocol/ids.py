"""Ids on the wire: every Mesos id (FrameworkID, AgentID, TaskID, OfferID, ExecutorID...) is
``{"value": "<string>"}``."""

from __future__ import annotations

from typing import Any


def id_json(value: str) -> dict[str, str]:
    """The wire form of an id."""
    return {"value": value}


def id_value(message: Any) -> str | None:
    """The string inside an id object, or None when ``message`` is not one."""
    if isinstance(message, dict):
        value = message.get("value")
        if isinstance(value, str):
            return value
    return None
