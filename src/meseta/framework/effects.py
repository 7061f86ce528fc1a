"""What a framework's pure machine asks its shell to do (frozen data; executed in order by
client.effect_runner). Services and jobs both speak it.

    Store      write these (kind, key, value|None) changes durably, before what follows;
               sync=False: may be written a moment later, together with others
    Launch     ACCEPT one offer with these TaskInfos, refusing what is left of it for
               ``refuse_seconds`` (0: offered again at the next allocation)
    Decline    DECLINE offers, refusing them for ``refuse_seconds``
    Kill       KILL a task (with its kill policy grace)
    Reconcile  RECONCILE these tasks (empty: implicit, every task)
    Revive / Suppress   offers wanted again / not wanted
    Emit       publish an event (the framework's event stream or log)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Change = tuple[str, str, Any]  # (kind, key, value or None to delete)


@dataclass(frozen=True, slots=True)
class Store:
    changes: tuple[Change, ...]
    sync: bool = True


@dataclass(frozen=True, slots=True)
class Launch:
    offer_id: str
    tasks: tuple[dict[str, Any], ...]
    refuse_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Decline:
    offer_ids: tuple[str, ...]
    refuse_seconds: float


@dataclass(frozen=True, slots=True)
class Kill:
    task_id: str
    agent_id: str
    grace_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Reconcile:
    tasks: tuple[tuple[str, str], ...]  # (task id, agent id)


@dataclass(frozen=True, slots=True)
class Revive:
    pass


@dataclass(frozen=True, slots=True)
class Suppress:
    pass


@dataclass(frozen=True, slots=True)
class Emit:
    event: dict[str, Any]


Effect = Store | Launch | Decline | Kill | Reconcile | Revive | Suppress | Emit
