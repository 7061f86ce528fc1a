"""What one deployment action does next for its app; pure, called whenever anything changes.

``step_app(action, app, instances, now)`` looks at the app's instances (and how many launches
already wait in the launch queue) and answers with an :class:`AppStep`: launches to queue,
queued launches to drop, task ids to kill, whether the action is done, and what it waits for.
It keeps no state: the same inputs give the same answer, so it is safe to call on every status
update, health result, timer or failover.

How an instance counts (``now`` decides UnreachableInactive)::

    terminal, or unreachable past inactiveAfterSeconds   ignored (a replacement is launched)
    killing (a kill was sent)                            dying: still takes capacity, serves nobody
    otherwise                                            live; *serving* when TASK_RUNNING and
                                                         healthy (apps with health checks) and,
                                                         for new instances, ready (readiness)

Rolling restart (RestartApplication, spec 3.3), with N the target count::

    minHealthy  = ceil(N x minimumHealthCapacity)
    maxCapacity = floor(N x (1 + maximumOverCapacity))   (+1 when equal to minHealthy, so that
                                                          1/0 can progress; resident apps instead
                                                          go one below minHealthy)
    each call:  launch   min(N - new instances - queued, maxCapacity - (live + dying + queued))
                kill     old serving instances while serving instances stay >= minHealthy
                         (capacity 0: every old one at once; 1/1: only as new ones serve)
                kill     old non-serving instances only once a new serving instance stands in
                         for them, or when they hold capacity a launch needs: a replacement
                         starts before an unhealthy instance is killed when capacity allows
    done:       N new instances, all serving; no old, dying or queued ones left

Scale (ScaleApplication): sentenced tasks die first; surplus instances are dropped from the
queue, then killed in :func:`kill_order`; missing ones are queued; done when exactly N live
instances all serve and none is dying. Stop: kill everything, done when nothing is active.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from meseta.services.model import ACTIVE_STATES, App, Instance

ROLLING_EPSILON = 1e-9  # 25 x 0.28 is 7.000000000000001 in floats: it must not ceil to 8


class ActionKind(StrEnum):
    START = "StartApplication"
    STOP = "StopApplication"
    SCALE = "ScaleApplication"
    RESTART = "RestartApplication"


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    app_id: str
    scale_to: int | None = None  # target instances; None: the app's own count
    sentenced: tuple[str, ...] = ()  # task ids a kill-and-scale request names, killed first


@dataclass(frozen=True, slots=True)
class AppStep:
    launch: int = 0  # new launches to queue
    cancel_queued: int = 0  # queued launches to drop
    kill: tuple[str, ...] = ()  # task ids to kill now
    done: bool = False
    remaining: int = 0  # units of work left; progress is this reaching a new low
    waiting: str = ""  # e.g. "waiting for 3 instances of /web to become healthy"


def is_current(app: App, instance: Instance) -> bool:
    """Whether ``instance`` runs the app's present configuration: launched at its version, or
    (with versionInfo) at any scale-only version since its last config change. Marathon
    timestamps of one format compare as strings."""
    if instance.version == app["version"]:
        return True
    info = app.get("versionInfo")
    last_config = info.get("lastConfigChangeAt") if isinstance(info, dict) else None
    return isinstance(last_config, str) and last_config <= instance.version <= app["version"]


def _unreachable_for(app: App, inst: Instance, now: float, key: str) -> bool:
    strategy = app.get("unreachableStrategy", {})
    if inst.state != "TASK_UNREACHABLE" or not isinstance(strategy, dict):
        return False  # "disabled" never gives up on an unreachable instance
    since = inst.unreachable_since if inst.unreachable_since is not None else now
    return now - since >= float(strategy.get(key, 0))


def is_inactive(app: App, inst: Instance, now: float) -> bool:
    """Unreachable for inactiveAfterSeconds: no longer counted (a replacement is launched)."""
    return _unreachable_for(app, inst, now, "inactiveAfterSeconds")


def is_expunged(app: App, inst: Instance, now: float) -> bool:
    """Unreachable for expungeAfterSeconds: forgotten (killed if it ever reports again)."""
    return _unreachable_for(app, inst, now, "expungeAfterSeconds")


def rolling_bounds(app: App, target: int) -> tuple[int, int]:
    """(minHealthy, maxCapacity) of a restart to ``target`` instances, the extra rule applied."""
    strategy = app.get("upgradeStrategy") or {}
    min_healthy = math.ceil(target * float(strategy.get("minimumHealthCapacity", 1.0)) - ROLLING_EPSILON)
    max_capacity = math.floor(target * (1 + float(strategy.get("maximumOverCapacity", 1.0))) + ROLLING_EPSILON)
    if min_healthy == max_capacity:
        if _resident(app):
            min_healthy = max(0, min_healthy - 1)
        else:
            max_capacity += 1
    return min_healthy, max_capacity


def kill_order(instances: Iterable[Instance], kill_selection: str = "YOUNGEST_FIRST",
               sentenced: Sequence[str] = (), count: int | None = None) -> list[Instance]:
    """Scale-down victims, first to die first: sentenced, unreachable, staging (newest staged
    first), starting, then running by killSelection; task id breaks ties. ``count``: only the
    first so many (without sorting the rest)."""
    named = {task_id: i for i, task_id in enumerate(sentenced)}
    youngest = kill_selection != "OLDEST_FIRST"

    def rank(inst: Instance) -> tuple[int, float, str]:
        if inst.task_id in named:
            return 0, named[inst.task_id], inst.task_id
        if inst.state == "TASK_UNREACHABLE":
            return 1, 0.0, inst.task_id
        if inst.state in ("TASK_STAGING", "TASK_STARTING"):
            return (2 if inst.state == "TASK_STAGING" else 3), -inst.staged_at, inst.task_id
        age = inst.started_at if inst.started_at is not None else inst.staged_at
        return 4, -age if youngest else age, inst.task_id

    if count is None:
        return sorted(instances, key=rank)
    return heapq.nsmallest(count, instances, key=rank) if count > 0 else []


def step_app(action: Action, app: App, instances: Sequence[Instance], now: float, *,
             queued: int = 0, since: float | None = None) -> AppStep:
    """The next move of ``action`` on ``app``. ``queued``: launches of the app already waiting
    in the launch queue; ``since``: when the step started (instances staged before it are
    exempt from readiness, which Marathon checks only on tasks a deployment starts)."""
    view = _View(app, instances, now, since)
    if action.kind is ActionKind.STOP:
        return _stop(view, queued)
    if action.kind is ActionKind.START and not action.scale_to:
        return AppStep(done=True)
    target = action.scale_to if action.scale_to is not None else int(app["instances"])
    if action.kind is ActionKind.RESTART:
        return _restart(view, target, queued)
    return _scale(view, target, queued, action.sentenced)


# ---- the pieces -------------------------------------------------------------------------


def _resident(app: App) -> bool:
    volumes = (app.get("container") or {}).get("volumes") or ()
    return any(isinstance(v, dict) and v.get("persistent") for v in volumes)


def _plural(count: int) -> str:
    return f"{count} instance{'' if count == 1 else 's'}"


class _View:
    """The app's instances sorted into live and dying, with the serving predicates."""

    def __init__(self, app: App, instances: Sequence[Instance], now: float, since: float | None) -> None:
        self.app, self.since = app, since
        self.health_checked = bool(app.get("healthChecks"))
        self.readiness_checked = bool(app.get("readinessChecks"))
        self.dying: list[Instance] = []
        self.live: list[Instance] = []
        for inst in instances:  # one pass: apps in deployments may have tens of thousands
            state = inst.state
            if state not in ACTIVE_STATES or (state == "TASK_UNREACHABLE" and is_inactive(app, inst, now)):
                continue
            (self.dying if inst.killing or state == "TASK_KILLING" else self.live).append(inst)

    def healthy(self, inst: Instance) -> bool:
        return inst.running and (not self.health_checked or inst.healthy is True)

    def serving(self, inst: Instance) -> bool:
        exempt = self.since is not None and inst.staged_at < self.since
        ready = not self.readiness_checked or exempt or inst.ready is True
        return self.healthy(inst) and ready

    def unserving(self, instances: Iterable[Instance]) -> int:
        if not self.health_checked and not self.readiness_checked:
            return sum(1 for i in instances if i.state != "TASK_RUNNING")
        return sum(1 for i in instances if not self.serving(i))

    def order(self, instances: Iterable[Instance], sentenced: Sequence[str] = (),
              count: int | None = None) -> list[Instance]:
        return kill_order(instances, str(self.app.get("killSelection", "YOUNGEST_FIRST")), sentenced, count)

    def waiting_to_serve(self, count: int) -> str:
        what = ("become healthy" if self.health_checked else
                "become ready" if self.readiness_checked else "start running")
        return f"waiting for {_plural(count)} of {self.app['id']} to {what}"


def _waiting(view: _View, unlaunched: int, unserving: int, doomed: int) -> str:
    app_id = view.app["id"]
    parts = [f"waiting for {_plural(unlaunched)} of {app_id} to launch" if unlaunched > 0 else "",
             view.waiting_to_serve(unserving) if unserving > 0 else "",
             f"waiting for {_plural(doomed)} of {app_id} to be killed" if doomed > 0 else ""]
    return "; ".join(p for p in parts if p)


def _stop(view: _View, queued: int) -> AppStep:
    kill = tuple(i.task_id for i in view.order(view.live))
    # A killed unreachable instance is expunged by the caller; waiting for it would never end.
    dying = [i for i in view.dying if i.state != "TASK_UNREACHABLE"]
    remaining = len(view.live) + len(dying) + queued
    return AppStep(cancel_queued=queued, kill=kill, done=remaining == 0, remaining=remaining,
                   waiting=_waiting(view, 0, 0, remaining - queued))


def _scale(view: _View, target: int, queued: int, sentenced: Sequence[str]) -> AppStep:
    named = set(sentenced)
    doomed = [i for i in view.live if i.task_id in named] if named else []
    keep = [i for i in view.live if i.task_id not in named] if named else view.live
    cancel = min(queued, max(0, len(keep) + queued - target))
    queued -= cancel
    surplus = view.order(keep, count=max(0, len(keep) + queued - target))
    kill = tuple(i.task_id for i in [*view.order(doomed, sentenced), *surplus])
    gone = {i.task_id for i in surplus}
    staying = [i for i in keep if i.task_id not in gone] if gone else keep
    launch = max(0, target - len(staying) - queued)
    unserving = view.unserving(staying)
    remaining = launch + queued + unserving + len(kill) + len(view.dying)
    return AppStep(launch=launch, cancel_queued=cancel, kill=kill, done=remaining == 0, remaining=remaining,
                   waiting=_waiting(view, launch + queued, unserving, len(kill) + len(view.dying)))


def _restart(view: _View, target: int, queued: int) -> AppStep:
    min_healthy, max_capacity = rolling_bounds(view.app, target)
    old = [i for i in view.live if not is_current(view.app, i)]
    new = [i for i in view.live if is_current(view.app, i)]
    # Too many new ones (the target shrank): drop queued launches, then kill the surplus.
    cancel = min(queued, max(0, len(new) + queued - target))
    queued -= cancel
    extra_new = view.order(new, count=max(0, len(new) + queued - target))
    extra = {i.task_id for i in extra_new}
    new = [i for i in new if i.task_id not in extra]
    serving_new = len(new) - view.unserving(new)
    serving_old = [i for i in old if view.healthy(i)]
    idle_old = [i for i in old if not view.healthy(i)]
    total = len(view.live) + len(view.dying) + queued
    want = max(0, target - len(new) - queued)
    launch = min(want, max(0, max_capacity - total))
    # Non-serving old ones: when a serving new one stands in, or when they block a launch.
    stood_in = max(0, serving_new + len(old) - target)
    blocking = max(0, want - launch - len(view.dying))
    idle_kills = view.order(idle_old, count=max(stood_in, blocking))
    # Serving old ones: as many as keeps the serving count at minHealthy (spec 3.3).
    budget = max(0, serving_new + len(serving_old) - min_healthy)
    kill = tuple(i.task_id for i in [*extra_new, *idle_kills, *view.order(serving_old, count=budget)])
    unserving = len(new) - serving_new
    doomed = len(old) + len(extra_new) + len(view.dying)
    remaining = want + queued + unserving + doomed
    return AppStep(launch=launch, cancel_queued=cancel, kill=kill, done=remaining == 0, remaining=remaining,
                   waiting=_waiting(view, want + queued, unserving, doomed))
