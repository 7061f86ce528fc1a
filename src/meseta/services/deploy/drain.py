"""Load balancer registrations and the drain waits before a kill (pure; a Meseta extension).

    PUT /v2/loadbalancers/{lbId} {"groups": [...], "ttlSeconds": t}  -> registered until now + t
        (a renewal replaces groups and ttl); DELETE, or now >= expiresAt: gone
    kill of a TASK_RUNNING instance of an app exposed to a live LB (not wiped or forced; the
    app's taskKillGracePeriodSeconds not 0):
        drain(task) {lbs: the matching live LBs, deadline: now + taskKillGracePeriodSeconds or 10 s}
        --POST /v2/loadbalancers/{lbId}/drained {"taskIds": [...]}: lbId leaves lbs-->
        no lb of lbs still live (confirmed, deleted or expired) | now >= deadline --> Kill sent

An app is exposed to an LB when one of its ports' groups (label ``HAPROXY_{n}_GROUP``, else
``HAPROXY_GROUP``, split on ``,``) is one of the LB's, or the LB's groups hold ``*`` (and the
app has a port). Registrations are soft state of the leader: never stored, re-sent by each LB
within its ttl after a leader change.

    registration JSON  {"id", "groups": [str], "ttlSeconds": int, "expiresAt": "<Marathon time>"}
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from meseta.services import wire
from meseta.services.model import App
from meseta.services.spec.app_ports import port_entries

DRAIN_DEFAULT_SECONDS = 10.0  # the wait when the app sets no taskKillGracePeriodSeconds
MAX_LB_ID = 128
MAX_GROUPS = 100
MAX_GROUP_LENGTH = 256
MAX_TTL_SECONDS = 3600
LB_ID = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(slots=True)
class Registration:
    lb_id: str
    groups: tuple[str, ...]
    ttl_seconds: int
    expires_at: float


@dataclass(slots=True)
class Drain:
    task_id: str
    app_id: str
    deadline: float
    waiting: set[str]  # the LBs (live at the start) that have not confirmed yet
    kill_grace: float | None  # the Kill's grace period (the app may be gone from the root by then)


def lb_id_problem(lb_id: str) -> str | None:
    """Why ``lb_id`` cannot name a load balancer, or None."""
    if not 1 <= len(lb_id) <= MAX_LB_ID or not LB_ID.fullmatch(lb_id):
        return f"must be 1 to {MAX_LB_ID} characters of A-Z a-z 0-9 . _ -"
    return None


def parse_registration(body: Any) -> tuple[tuple[str, ...], int, list[tuple[str, str]]]:
    """(groups, ttlSeconds, problems as (path, message)) from a PUT body."""
    if not isinstance(body, dict):
        return (), 0, [("/", "expected a JSON object with groups and ttlSeconds")]
    problems = [(f"/{key}", "unknown field") for key in body if key not in ("groups", "ttlSeconds")]
    groups = body.get("groups")
    if not isinstance(groups, list) or not 1 <= len(groups) <= MAX_GROUPS:
        problems.append(("/groups", f"must be a list of 1 to {MAX_GROUPS} group names"))
        groups = []
    for i, group in enumerate(groups):
        if not isinstance(group, str) or not 1 <= len(group) <= MAX_GROUP_LENGTH or not group.strip():
            problems.append((f"/groups({i})", f"must be a non-empty string of at most {MAX_GROUP_LENGTH} characters"))
    ttl = body.get("ttlSeconds")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL_SECONDS:
        problems.append(("/ttlSeconds", f"must be an integer from 1 to {MAX_TTL_SECONDS}"))
        ttl = 0
    return tuple(dict.fromkeys(str(g) for g in groups)), int(ttl), problems


def parse_drained(body: Any) -> tuple[list[str], list[tuple[str, str]]]:
    """(task ids, problems as (path, message)) from a POST .../drained body."""
    if not isinstance(body, dict):
        return [], [("/", "expected a JSON object with taskIds")]
    problems = [(f"/{key}", "unknown field") for key in body if key != "taskIds"]
    ids = body.get("taskIds")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return [], [*problems, ("/taskIds", "must be a list of task ids (strings)")]
    return list(ids), problems


def port_groups(app: App) -> list[set[str]]:
    """Each port's HAProxy groups: ``HAPROXY_{n}_GROUP``, else ``HAPROXY_GROUP``, split on ``,``."""
    labels = app.get("labels") or {}
    out = []
    for n in range(len(port_entries(app)[1])):
        text = labels.get(f"HAPROXY_{n}_GROUP", labels.get("HAPROXY_GROUP", ""))
        out.append({g.strip() for g in str(text).split(",") if g.strip()})
    return out


def exposed(app: App, lb_groups: Iterable[str]) -> bool:
    ports = port_groups(app)
    wanted = set(lb_groups)
    return bool(ports) and ("*" in wanted or any(groups & wanted for groups in ports))


@dataclass
class DrainBook:
    """The live registrations and the drains in progress (task id -> Drain)."""

    registrations: dict[str, Registration] = field(default_factory=dict)
    drains: dict[str, Drain] = field(default_factory=dict)
    deadlines: list[tuple[float, str]] = field(default_factory=list)  # a heap: (deadline, task id)
    lost: bool = False  # a registration went (expired or deleted) since the last full look

    def register(self, lb_id: str, groups: tuple[str, ...], ttl_seconds: int, now: float) -> Registration:
        registration = Registration(lb_id, groups, ttl_seconds, now + ttl_seconds)
        self.registrations[lb_id] = registration
        return registration

    def unregister(self, lb_id: str, now: float) -> bool:
        self.expire(now)
        gone = self.registrations.pop(lb_id, None) is not None
        self.lost |= gone
        return gone

    def live(self, lb_id: str, now: float) -> Registration | None:
        registration = self.registrations.get(lb_id)
        return registration if registration is not None and now < registration.expires_at else None

    def expire(self, now: float) -> list[str]:
        """Forget the registrations past their ttl (their ids)."""
        gone = [r.lb_id for r in self.registrations.values() if now >= r.expires_at]
        for lb_id in gone:
            del self.registrations[lb_id]
        self.lost |= bool(gone)
        return gone

    def matching(self, app: App, now: float) -> set[str]:
        """The live LBs that route to ``app``."""
        return {r.lb_id for r in self.registrations.values() if now < r.expires_at and exposed(app, r.groups)}

    def start(self, task_id: str, app_id: str, lbs: set[str], deadline: float, kill_grace: float | None) -> Drain:
        drain = Drain(task_id, app_id, deadline, set(lbs), kill_grace)
        self.drains[task_id] = drain
        heapq.heappush(self.deadlines, (deadline, task_id))
        return drain

    def confirm(self, lb_id: str, task_ids: Iterable[str]) -> None:
        for task_id in task_ids:
            drain = self.drains.get(task_id)
            if drain is not None:
                drain.waiting.discard(lb_id)

    def due(self, now: float, among: Iterable[str] | None = None) -> list[Drain]:
        """The drains over (every LB waited on confirmed or gone, or the deadline passed),
        removed from the book. ``among``: only those of these task ids (a confirmation's);
        otherwise those past their deadline, or all of them when a registration went."""
        self.expire(now)
        if among is None and self.lost:
            self.lost = False
        elif among is None:
            among = []
            while self.deadlines and self.deadlines[0][0] <= now:
                among.append(heapq.heappop(self.deadlines)[1])
        drains = self.drains.values() if among is None else filter(None, map(self.drains.get, among))
        over = [d for d in drains if now >= d.deadline or not any(self.live(lb, now) for lb in d.waiting)]
        for drain in over:
            self.drains.pop(drain.task_id, None)  # a task id named twice is over once
        if not self.drains:
            self.deadlines.clear()
        return over

    def forget(self, task_id: str) -> None:
        self.drains.pop(task_id, None)


def registration_json(registration: Registration) -> dict[str, Any]:
    return {"id": registration.lb_id, "groups": list(registration.groups), "ttlSeconds": registration.ttl_seconds,
            "expiresAt": wire.timestamp(registration.expires_at)}
