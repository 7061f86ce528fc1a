"""Deployment plans: what changing one root group into another takes; pure, no I/O.

A deployment's life::

    created (POST/PUT apps or groups, restart, kill-and-scale, rollback)
       |  refused with 409 if it touches an app another running deployment touches,
       |  unless force: then those are cancelled and left as they are
       v
    step 1 running --> step 2 running --> ... --> done     (deployment_success; gone from the list)
       |   each action of a step progresses at once (step_app); the next step
       |   starts only when every action of this one is done
       +--> cancelled with force (DELETE ?force=true): stops where it is, mixed versions stay
       +--> rolled back (DELETE): cancelled, and rollback() runs as a new forced deployment
       +--> stalled (no progress for --deployment-stall-timeout): reported with its reason;
               rolled back automatically when an app carries MESETA_ROLLBACK_ON_STALL=true

Plan shape (spec 3.1): one step stopping every removed app; one step starting every new app
(StartApplication to 0, a no-op kept for compatibility); then the new and changed apps in
layers by their longest dependency path (dependencies first), each a ScaleApplication
(new app, scale-only change, kill-and-scale) or RestartApplication (config change, restart).
Empty steps are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meseta.services.deploy.app_step import Action, ActionKind, AppStep, step_app
from meseta.services.deploy.groups import (
    Group,
    RootGroup,
    dependency_graph,
    find_cycle,
    is_scale_only,
    same_definition,
)
from meseta.services.model import App

__all__ = [
    "ROLLBACK_LABEL", "Action", "ActionKind", "AppStep", "DeploymentPlan", "StepProgress",
    "affected_apps", "auto_rollback", "conflicts", "note_progress", "plan", "rollback",
    "rolls_back_on_stall", "stalled", "step_app", "steps_json",
]

# The label asking for a stalled deployment to be rolled back without an operator (issue 6).
ROLLBACK_LABEL = "MESETA_ROLLBACK_ON_STALL"

Step = tuple[Action, ...]


@dataclass(frozen=True)
class DeploymentPlan:
    id: str
    version: str
    original: RootGroup
    target: RootGroup
    steps: tuple[Step, ...]


def affected_apps(plan: DeploymentPlan) -> list[str]:
    """The app ids the plan touches (its lock set), sorted."""
    return sorted({action.app_id for step in plan.steps for action in step})


def steps_json(plan: DeploymentPlan) -> list[dict[str, Any]]:
    """The ``steps`` of /v2/deployments and of a dryRun: ``[{"actions": [{action, app}]}]``."""
    return [{"actions": [{"action": str(a.kind), "app": a.app_id} for a in step]} for step in plan.steps]


# ---- building plans ----------------------------------------------------------------------


def dependency_layers(root: RootGroup, app_ids: Collection[str],
                      dependents: Collection[str] | None = None) -> list[list[str]]:
    """``app_ids`` grouped by the length of their longest dependency path in ``root``,
    dependencies first; ids sorted within a layer. ValueError on a cycle."""
    graph = dependency_graph(root, dependents)
    cycle = find_cycle(graph)
    if cycle:
        raise ValueError(f"dependency cycle: {' -> '.join(cycle)}")
    depth: dict[str, int] = {}
    for start in app_ids:
        stack = [start]
        while stack:  # iterative: dependency chains may be longer than the recursion limit
            node = stack[-1]
            deps = graph.get(node, ())
            pending = [d for d in deps if d not in depth]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            depth[node] = 1 + max((depth[d] for d in deps), default=-1)
    layers: dict[int, list[str]] = {}
    for app_id in sorted(app_ids):
        layers.setdefault(depth[app_id], []).append(app_id)
    return [layers[k] for k in sorted(layers)]


def plan(original: RootGroup, target: RootGroup, *, plan_id: str, version: str,
         restarted: Collection[str] = (), kill: Mapping[str, Sequence[str]] | None = None,
         scale_only: Callable[[App, App], bool] = is_scale_only, touched: Collection[str] | None = None,
         dependents: Collection[str] | None = None) -> DeploymentPlan:
    """The plan turning ``original`` into ``target`` (spec 3.1). ``restarted``: apps to restart
    even if unchanged; ``kill``: app id -> task ids a kill-and-scale request sentences;
    ``touched``: the only app ids that may differ (else every app is compared); ``dependents``:
    the apps of ``target`` with dependencies, when the caller keeps them."""
    kill = kill or {}
    before = set(original.apps) if touched is None else {a for a in touched if a in original.apps}
    after = set(target.apps) if touched is None else {a for a in touched if a in target.apps}
    stops = [Action(ActionKind.STOP, a) for a in sorted(before - after)]
    starts = [Action(ActionKind.START, a, 0) for a in sorted(after - before)]
    actions: dict[str, Action] = {}
    for app_id in (target.apps if touched is None else sorted(after)):
        new, old = target.apps[app_id], original.apps.get(app_id)
        if old is new and app_id not in restarted and not kill.get(app_id):
            continue  # the very same definition: untouched (the common case in a large root)
        count = int(new["instances"])
        if old is None:
            actions[app_id] = Action(ActionKind.SCALE, app_id, count)
        elif app_id in restarted or not (same_definition(old, new) or scale_only(old, new)):
            actions[app_id] = Action(ActionKind.RESTART, app_id, count)
        elif not same_definition(old, new) or kill.get(app_id):
            actions[app_id] = Action(ActionKind.SCALE, app_id, count, tuple(kill.get(app_id, ())))
    layers = [[actions[a] for a in layer] for layer in dependency_layers(target, actions, dependents)]
    steps = tuple(tuple(step) for step in [stops, starts, *layers] if step)
    return DeploymentPlan(plan_id, version, original, target, steps)


def narrowed(plan: DeploymentPlan) -> DeploymentPlan:
    """The plan with only the apps it touches in its original and target roots: what is stored
    and sent in events (a root of thousands of apps need not be copied into every plan)."""
    touched = affected_apps(plan)

    def keep(root: RootGroup) -> RootGroup:
        return RootGroup({a: root.apps[a] for a in touched if a in root.apps}, root.groups, root.version)

    return DeploymentPlan(plan.id, plan.version, keep(plan.original), keep(plan.target), plan.steps)


def conflicts(new: DeploymentPlan, running: Sequence[DeploymentPlan]) -> list[str]:
    """Ids of the running plans touching an app ``new`` touches (409 unless force)."""
    mine = set(affected_apps(new))
    return [p.id for p in running if p.id != new.id and mine.intersection(affected_apps(p))]


# ---- rollback ------------------------------------------------------------------------------


def _revert(original: Mapping[str, Any], target: Mapping[str, Any], current: Mapping[str, Any],
            same: Callable[[Any, Any], bool]) -> dict[str, Any]:
    """``current`` with every key the plan changed (original -> target) put back as it was."""
    out = dict(current)
    for key in set(original) | set(target):
        before, after = original.get(key), target.get(key)
        if before is None:
            out.pop(key, None)  # the plan created it
        elif after is None or not same(before, after):
            out[key] = before  # the plan removed or changed it
    return out


def rollback(cancelled: DeploymentPlan, current: RootGroup, *, plan_id: str, version: str) -> DeploymentPlan:
    """The revert of a cancelled deployment (DELETE /v2/deployments/{id}), against ``current``.

    Exactly the apps and groups the plan changed get their original definitions back (with
    their original version stamps); everything else stays as it is now. Apps whose config the
    plan changed are restarted even when ``current`` already shows the original definition, so
    instances still on the plan's version get replaced; instances already on the original
    version are left alone (step_app keeps current ones). A bare restart has nothing to revert.
    """
    apps = _revert(cancelled.original.apps, cancelled.target.apps, current.apps, same_definition)
    groups = _revert(cancelled.original.groups, cancelled.target.groups, current.groups,
                     lambda a, b: isinstance(a, Group) and isinstance(b, Group) and a.dependencies == b.dependencies)
    reverted = RootGroup(apps, groups, version)
    replaced = {a for a, old in cancelled.original.apps.items()
                if a in cancelled.target.apps and a in apps
                and not is_scale_only(old, cancelled.target.apps[a])}
    return plan(current, reverted, plan_id=plan_id, version=version, restarted=replaced)


# ---- progress and stalls ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepProgress:
    """Where a running deployment is, and when it last moved."""

    step: int  # 0-based index of the running step
    started_at: float
    last_progress_at: float
    best: int  # the lowest work-remaining seen in this step
    waiting: tuple[str, ...] = ()


def note_progress(progress: StepProgress | None, step: int, outcomes: Sequence[AppStep], now: float) -> StepProgress:
    """Fold the step's latest ``step_app`` outcomes in. Progress means a new step, or less work
    left than ever before in this step (a crash loop relaunching the same instance is none)."""
    remaining = sum(o.remaining for o in outcomes)
    waiting = tuple(o.waiting for o in outcomes if o.waiting and not o.done)
    if progress is None or progress.step != step:
        return StepProgress(step, now, now, remaining, waiting)
    if remaining < progress.best:
        return StepProgress(step, progress.started_at, now, remaining, waiting)
    return StepProgress(step, progress.started_at, progress.last_progress_at, progress.best, waiting)


def stalled(progress: StepProgress, now: float, stall_timeout: float, launch_reason: str | None = None) -> str | None:
    """None while the deployment moves; after ``stall_timeout`` seconds without progress, the
    reason, e.g. "no progress for 600 s in step 2: waiting for 3 instances of /web to launch
    (no offers matched for 120 s: InsufficientMemory)". ``launch_reason``: the launch queue's."""
    idle = now - progress.last_progress_at
    if idle < stall_timeout:
        return None
    what = "; ".join(progress.waiting) or "waiting"
    if launch_reason:
        what = f"{what} ({launch_reason})"
    return f"no progress for {idle:.0f} s in step {progress.step + 1}: {what}"


def auto_rollback(app: App) -> bool:
    """Whether ``app`` asks for automatic rollback of a stalled deployment."""
    labels = app.get("labels") or {}
    return str(labels.get(ROLLBACK_LABEL, "")).strip().lower() == "true"


def rolls_back_on_stall(deployment: DeploymentPlan) -> bool:
    """Whether any app the plan touches carries the label (target definition, else original)."""
    return any(auto_rollback(deployment.target.apps.get(a) or deployment.original.apps.get(a) or {})
               for a in affected_apps(deployment))
