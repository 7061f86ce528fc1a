"""Small wire facts shared by master, agent and clients: uuids and the /version document."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from meseta import MESOS_COMPAT_VERSION, __version__


def version_json() -> dict[str, Any]:
    return {
        "version": MESOS_COMPAT_VERSION,
        "meseta_version": __version__,
        "build_date": "2026-11-22 00:00:00",
        "build_time": 1795305600.0,
        "build_user": "meseta",
    }



def uuid_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "'uuid' must be a base64 string"
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "'uuid' is not valid base64"
    if len(raw) != 16:
        return f"'uuid' must decode to 16 bytes, got {len(raw)}"
    return None
