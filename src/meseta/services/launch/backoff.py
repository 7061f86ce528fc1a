"""Launch delays per app (Marathon's backoff); pure: every call gets ``now``.

One :class:`Delay` per app, keyed to the app's *config* version::

    no delay --failure--> seconds = backoffSeconds                       until = failed_at + seconds
    delayed  --failure--> seconds = min(seconds * backoffFactor, maxLaunchDelaySeconds)
    delayed  --reset(app_id) | new config version | no failure until
               failed_at + seconds + maxLaunchDelaySeconds--> no delay

A failure is TASK_FAILED, TASK_FINISHED, TASK_ERROR or a kill by a failing health check; an
operator's TASK_KILLED is not. Reaching TASK_RUNNING resets nothing: a task that starts and
dies a moment later is a crash loop and must back off (Marathon reset on RUNNING once, and
crash loops spun at full speed). Only a quiet period, a new config, or ``reset`` clears it.

A scale (a new ``version`` whose ``versionInfo.lastConfigChangeAt`` is unchanged) keeps the
delay; any config change starts afresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from meseta.services.model import App

FAILURE_STATES = frozenset({"TASK_FAILED", "TASK_FINISHED", "TASK_ERROR"})
DEFAULT_BACKOFF_SECONDS = 1.0  # Marathon's defaults, for definitions that lack the fields
DEFAULT_BACKOFF_FACTOR = 1.15
DEFAULT_MAX_LAUNCH_DELAY_SECONDS = 300.0


def counts_as_failure(state: str, *, health_check_kill: bool = False) -> bool:
    """Whether a terminal status makes the app back off."""
    return health_check_kill or state in FAILURE_STATES


def config_version(app: App) -> str:
    """The version of the app's last config change (scales do not change it)."""
    info = app.get("versionInfo") or {}
    return str(info.get("lastConfigChangeAt") or app.get("version") or "")


@dataclass(frozen=True, slots=True)
class Delay:
    config_version: str
    seconds: float  # the current backoff
    failed_at: float  # the last failure counted
    max_seconds: float

    @property
    def until(self) -> float:
        """No launch before this."""
        return self.failed_at + self.seconds

    @property
    def forgotten_at(self) -> float:
        """Without another failure, the delay is dropped at this time."""
        return self.failed_at + self.seconds + self.max_seconds


class LaunchDelays:
    """The launch delays of all apps. A plain in-memory book: nothing here is stored."""

    def __init__(self) -> None:
        self._delays: dict[str, Delay] = {}

    def on_failure(self, app: App, now: float) -> Delay:
        """Count one failure of an instance of ``app`` (its current definition)."""
        app_id, version = str(app["id"]), config_version(app)
        limit = float(app.get("maxLaunchDelaySeconds", DEFAULT_MAX_LAUNCH_DELAY_SECONDS))
        current = self.get(app_id, now)
        if current is None or current.config_version != version:
            seconds = float(app.get("backoffSeconds", DEFAULT_BACKOFF_SECONDS))
        else:
            seconds = current.seconds * float(app.get("backoffFactor", DEFAULT_BACKOFF_FACTOR))
        delay = Delay(version, min(seconds, limit), now, limit)
        self._delays[app_id] = delay
        return delay

    def on_task_status(self, app: App, state: str, now: float, *, health_check_kill: bool = False) -> Delay | None:
        """Feed a terminal status: backs off when it counts, returns the delay then in force."""
        if counts_as_failure(state, health_check_kill=health_check_kill):
            return self.on_failure(app, now)
        return self.get(str(app["id"]), now)

    def on_app_version(self, app: App) -> None:
        """A definition was stored: a changed config clears the delay, a scale keeps it."""
        current = self._delays.get(str(app["id"]))
        if current is not None and current.config_version != config_version(app):
            del self._delays[str(app["id"])]

    def reset(self, app_id: str) -> bool:
        """``DELETE /v2/queue/{id}/delay`` (or the app is gone): launch at once. True if one was set."""
        return self._delays.pop(app_id, None) is not None

    def get(self, app_id: str, now: float) -> Delay | None:
        """The app's delay, unless it has been quiet long enough to be forgotten."""
        delay = self._delays.get(app_id)
        if delay is not None and now >= delay.forgotten_at:
            del self._delays[app_id]
            return None
        return delay

    def delay_left(self, app_id: str, now: float) -> float:
        """Seconds until the app may launch again (0.0: now)."""
        delay = self.get(app_id, now)
        return max(0.0, delay.until - now) if delay is not None else 0.0

    def overdue(self, app_id: str, now: float) -> bool:
        """The queue's ``overdue``: true when not backed off (only waiting for offers)."""
        return self.delay_left(app_id, now) == 0.0

    def launch_at(self, app_id: str, now: float) -> float:
        """When launching may resume: the time for the caller's timer."""
        return now + self.delay_left(app_id, now)

    def delay_json(self, app_id: str, now: float) -> dict[str, Any]:
        """The queue item's ``delay``; whole seconds rounded up, so backed off means > 0."""
        left = self.delay_left(app_id, now)
        return {"timeLeftSeconds": math.ceil(left), "overdue": left == 0.0}

    def expire(self, now: float) -> list[str]:
        """Drop every delay quiet long enough; returns the app ids dropped."""
        gone = [app_id for app_id, d in self._delays.items() if now >= d.forgotten_at]
        for app_id in gone:
            del self._delays[app_id]
        return gone

    def __contains__(self, app_id: object) -> bool:
        return app_id in self._delays

    def __len__(self) -> int:
        return len(self._delays)
