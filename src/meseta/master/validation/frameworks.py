"""FrameworkInfo at the edge: SUBSCRIBE and UPDATE_FRAMEWORK (spec 1.3, 1.6).

    raw JSON --structured (types)--> rules --> FrameworkInfo record (frozen)
    rules: user and name are strings; roles: ``roles`` needs MULTI_ROLE, ``role`` and ``roles``
    not both, every role valid; failover_timeout a Duration's worth of seconds; id valid if given;
    offer_filters (per-role minimum offers) is not carried out, so a non-empty one is refused
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meseta.master.validation.errors import invalid
from meseta.master.validation.fields import checked_id, checked_role, seconds, structured
from meseta.protocol import messages


@dataclass(frozen=True, slots=True)
class FrameworkInfo:
    raw: dict[str, Any]  # forwarded to agents and shown in the views as the framework sent it
    user: str
    name: str
    id: str | None
    roles: tuple[str, ...]
    capabilities: frozenset[str]
    principal: str | None
    checkpoint: bool
    failover_timeout: float

    def with_id(self, framework_id: str) -> dict[str, Any]:
        """The FrameworkInfo JSON the master keeps: as sent, with its id."""
        return {**self.raw, "id": {"value": framework_id}}


PARSED_CACHE_SIZE = 1024  # FrameworkInfos kept parsed: every agent reports its frameworks after a failover
_parsed: dict[str, FrameworkInfo] = {}


def parse_framework_info(raw: Any, where: str = "framework_info") -> FrameworkInfo:
    """A FrameworkInfo record; the same JSON (10,000 agents re-registering report the same few
    frameworks) is parsed once and the frozen record shared."""
    key = repr(raw)
    known = _parsed.get(key)
    if known is None:
        known = _parse(raw, where)
        if len(_parsed) >= PARSED_CACHE_SIZE:
            _parsed.clear()
        _parsed[key] = known
    return known


def _parse(raw: Any, where: str) -> FrameworkInfo:
    info = structured(raw, messages.FrameworkInfo, where)
    for required in ("user", "name"):
        if getattr(info, required) is None:
            raise invalid(f"'{where}.{required}' is required and must be a string")
    if info.offer_filters:
        raise invalid(f"'{where}.offer_filters' is not supported by Meseta")
    capabilities = frozenset(c.type for c in info.capabilities if c.type is not None)
    multi = "MULTI_ROLE" in capabilities
    if multi and info.role not in (None, "*") and info.roles:
        raise invalid(f"'{where}.role' and '{where}.roles' cannot both be set")
    if not multi and info.roles:
        raise invalid(f"'{where}.roles' requires the MULTI_ROLE capability")
    roles = tuple(info.roles) if multi else (info.role or "*",)
    for index, role in enumerate(roles):
        checked_role(role, f"{where}.roles[{index}]" if multi else f"{where}.role")
    if len(set(roles)) != len(roles):
        raise invalid(f"'{where}.roles' lists a role more than once")
    framework_id = checked_id(f"{where}.id", info.id) if info.id is not None else None
    timeout = seconds(info.failover_timeout, f"{where}.failover_timeout", default=0.0)
    assert isinstance(raw, dict) and timeout is not None
    return FrameworkInfo(raw=raw, user=info.user or "", name=info.name or "", id=framework_id, roles=roles,
                         capabilities=capabilities, principal=info.principal, checkpoint=bool(info.checkpoint),
                         failover_timeout=timeout)
