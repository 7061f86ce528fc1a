"""The services scheduler's decisions (pure): ``handler(..., now) -> effects``, no I/O.

    API change (POST/PUT/DELETE apps, restart, kill-and-scale, rollback)
        -> target root group -> DeploymentPlan (409 if it touches an app a running plan holds,
           unless force: those plans are cancelled) -> Store(app, versions, plan) -> Emit
    tick (every second: full; soon after updates and changes: only the apps that moved)
        -> each running plan's current step: step_app per action -> launches queued, kills
        -> step done -> next step -> plan done: Store(delete plan), deployment_success
        -> apps in no plan: instances kept at the target (replacements queued, surplus killed)
        -> no progress for stall_timeout: reported; rolled back if the app asks for it
    offers -> each filled from the queued apps in turn (not backed off), up to max_per_offer
              instances: offer_matching.match on what is left -> one Launch | Decline
              (services.offer_handling, a mixin of the machine)
    status update -> the instance moves; terminal ones are forgotten (and feed the backoff)
    kill of a running instance behind a live load balancer -> draining, instance_draining_event;
        Kill once its LBs confirm, or at the deadline (services.deploy.drain)

The launch queue is a count per app; an instance exists from its launch (Store before Launch,
so a new leader knows every task it may find running).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meseta.services import codec, wire
from meseta.services.deploy import deployments, drain, group_versions, groups
from meseta.services.deploy.app_step import ActionKind, AppStep, is_expunged, is_inactive, kill_order, step_app
from meseta.services.deploy.deployments import DeploymentPlan, StepProgress
from meseta.services.deploy.groups import RootGroup
from meseta.services.deploy.readiness import Answer, Probe, probes_for, result_of
from meseta.services.effects import Effect, Emit, Kill, Reconcile, Revive, Store, Suppress
from meseta.services.launch.backoff import LaunchDelays
from meseta.services.launch.launch_stats import LaunchStats
from meseta.services.launch.offer_handling import OfferHandling
from meseta.services.launch.task_builder import MESOS_BRIDGE_NAME
from meseta.services.model import TERMINAL_STATES, App, Instance
from meseta.services.spec import app_definition, app_ids, app_ports

KILL_RETRY_SECONDS = 10.0  # --kill_retry_timeout: a kill not answered by then is sent again
MAX_VERSIONS = 50  # --zk_max_versions: stored versions per app (the oldest go first)
MIN_REVIVE_SECONDS = 1.0  # --min_revive_offers_interval (Marathon: 5 s): a REVIVE has every agent offered


class ApiError(Exception):
    """A rejected API request: the HTTP status and Marathon's JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body


@dataclass
class Running:
    """A deployment in progress."""

    plan: DeploymentPlan
    step: int = 0
    step_started: float = 0.0
    progress: StepProgress | None = None
    stalled: str | None = None

    def json(self) -> dict[str, Any]:
        return {**codec.plan_json(self.plan), "step": self.step, "step_started": self.step_started}


def ip_addresses_of(status: Mapping[str, Any]) -> list[dict[str, str]]:
    """The task's addresses in a TaskStatus: ``container_status.network_infos[].ip_addresses``
    as ``{ipAddress, protocol, networkName?}`` (malformed entries are skipped: the agent's word)."""
    container = status.get("container_status")
    infos = container.get("network_infos") if isinstance(container, Mapping) else None
    out: list[dict[str, str]] = []
    for info in infos if isinstance(infos, list) else ():
        if not isinstance(info, Mapping) or not isinstance(info.get("ip_addresses"), list):
            continue
        name = info.get("name")
        for address in info["ip_addresses"]:
            ip = address.get("ip_address") if isinstance(address, Mapping) else None
            if not isinstance(ip, str) or not ip:
                continue
            protocol = address.get("protocol")
            entry = {"ipAddress": ip, "protocol": protocol if protocol in ("IPv4", "IPv6") else
                     ("IPv6" if ":" in ip else "IPv4")}
            if isinstance(name, str) and name:
                entry["networkName"] = name
            out.append(entry)
    return out


@dataclass
class ServicesMachine(OfferHandling):
    new_uuid: Callable[[], str]
    framework_roles: tuple[str, ...] = ("*",)
    max_per_offer: int = 5
    stall_timeout: float | None = None
    min_revive_interval: float = MIN_REVIVE_SECONDS
    bridge_name: str = MESOS_BRIDGE_NAME
    root: RootGroup = field(default_factory=RootGroup)
    instances: dict[str, Instance] = field(default_factory=dict)
    by_app: dict[str, dict[str, Instance]] = field(default_factory=dict)  # app id -> its instances
    running: dict[str, Running] = field(default_factory=dict)
    queue: dict[str, int] = field(default_factory=dict)  # app id -> launches still to make (> 0)
    service_ports: dict[int, str] = field(default_factory=dict)  # service port -> the app holding it
    dirty: set[str] = field(default_factory=set)  # apps whose instances or definition moved since a tick
    group_ids: set[str] = field(default_factory=lambda: {groups.ROOT})  # every group of the root, implied too
    dependents: set[str] = field(default_factory=set)  # the apps of the root with dependencies
    delays: LaunchDelays = field(default_factory=LaunchDelays)
    stats: dict[str, LaunchStats] = field(default_factory=dict)
    last_failure: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, App]] = field(default_factory=dict)  # app id -> version -> definition
    group_versions: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # id -> version -> snapshot
    readiness_results: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id -> last result
    lbs: drain.DrainBook = field(default_factory=drain.DrainBook)  # soft state: never stored
    undrained: set[str] = field(default_factory=set)  # task ids whose coming kill skips the drain (force)
    framework_id: str | None = None
    suppressed: bool = False  # we asked the master for no offers
    declined_idle: bool = False  # offers were declined for IDLE_DECLINE_SECONDS since the last REVIVE
    revived_at: float | None = None  # the last REVIVE (None: none since subscribing)
    _last_version: str = ""

    # ================================================================ state
    def restore(self, stored: dict[str, dict[str, Any]], now: float) -> None:
        """Rebuild from the store (a new leader, or a restart)."""
        self.root = codec.root_from_json({"apps": stored.get("app", {}), "groups": stored.get("group", {})})
        for key, app in stored.get("app_version", {}).items():
            app_id, _, version = key.rpartition("@")
            self.versions.setdefault(app_id, {})[version] = app
        for key, snap in stored.get("group_version", {}).items():
            group_id, _, version = key.rpartition("@")
            self.group_versions.setdefault(group_id, {})[version] = snap
        self.instances = {k: codec.instance_from_json(v) for k, v in stored.get("instance", {}).items()}
        for instance in self.instances.values():
            instance.draining = False  # drains are soft state: a stored kill is sent again by the tick
            self.by_app.setdefault(instance.app_id, {})[instance.task_id] = instance
        for plan_id, data in stored.get("deployment", {}).items():
            self.running[plan_id] = Running(codec.plan_from_json(data), int(data.get("step", 0)),
                                            float(data.get("step_started", now)))
        self.framework_id = (stored.get("meta", {}).get("framework_id") or {}).get("value")
        self.service_ports = app_ports.service_port_owners(self.root.apps.values())
        self.group_ids = groups.group_ids(self.root)
        self.dependents = groups.dependents_of(self.root.apps)

    def instances_of(self, app_id: str) -> list[Instance]:
        return list(self.by_app.get(app_id, {}).values())

    def plans_of(self, app_id: str) -> list[Running]:
        return [r for r in self.running.values() if app_id in deployments.affected_apps(r.plan)]

    def version(self, now: float) -> str:
        """A new Marathon version timestamp, later than every one handed out before."""
        candidate = wire.timestamp(now)
        while candidate <= self._last_version:
            now += 0.001
            candidate = wire.timestamp(now)
        self._last_version = candidate
        return candidate

    # ================================================================ deployable changes
    def deploy(self, target: RootGroup, now: float, *, force: bool, restarted: Iterable[str] = (),
               kill: dict[str, list[str]] | None = None, group_version: str | None = None,
               touched: Collection[str] | None = None) -> tuple[DeploymentPlan, list[Effect]]:
        """Make ``target`` the root and start the deployment to it. ``group_version``: a group
        the change went through (the groups API), whose version is recorded for rollback.
        ``touched``: the only apps that differ from the root (one app's create, update or
        delete), so that the cost is the change's; None compares every app."""
        plan, changed, removed, dependents, ports = self._checked_plan(target, restarted, kill, touched)
        blocking = deployments.conflicts(plan, [r.plan for r in self.running.values()])
        effects: list[Effect] = []
        if blocking and not force:
            raise ApiError(409, wire.locked_body(blocking))
        for plan_id in blocking:
            effects += self._cancel(plan_id)
        changes: list[tuple[str, str, Any]] = []
        for app_id, app in changed.items():
            if self.root.apps.get(app_id) != app:
                changes += [("app", app_id, app), ("app_version", f"{app_id}@{app['version']}", app)]
                versions = self.versions.setdefault(app_id, {})
                versions[app["version"]] = app
                for old in sorted(versions)[:max(0, len(versions) - MAX_VERSIONS)]:
                    del versions[old]
                    changes.append(("app_version", f"{app_id}@{old}", None))
                self.delays.on_app_version(app)
        changes += [("app", app_id, None) for app_id in removed]
        self.dirty.update(changed, removed)
        self.service_ports = ports
        for group_id, group in target.groups.items():
            if self.root.groups.get(group_id) != group:
                stored = {"dependencies": list(group.dependencies), "version": group.version}
                changes.append(("group", group_id, stored))
        changes += [("group", gid, None) for gid in set(self.root.groups) - set(target.groups)]
        if group_version is not None:
            changes += self._record_group_version(target, group_version)
        if touched is None or removed:
            self.group_ids = groups.group_ids(target)
        else:
            self.group_ids.update(g for a in changed for g in groups.ancestors(a))
        self.dependents = dependents
        self.root = target
        running = Running(plan, 0, now)
        self.running[plan.id] = running
        changes.append(("deployment", plan.id, running.json()))
        effects.insert(0, Store(tuple(changes)))
        effects.append(Emit(self._plan_event("deployment_info", running, now)))
        effects += self.tick(now, full=False)
        return plan, effects

    def preview(self, target: RootGroup) -> DeploymentPlan:
        """The plan ``deploy(target)`` would start, refused as it would be (except for a lock
        held by a running deployment); nothing changes (PUT /v2/groups?dryRun=true)."""
        return self._checked_plan(target, (), None, None)[0]

    def _checked_plan(self, target: RootGroup, restarted: Iterable[str], kill: dict[str, list[str]] | None,
                      touched: Collection[str] | None) -> tuple[DeploymentPlan, dict[str, App], list[str], set[str],
                                                                dict[int, str]]:
        """(plan, changed apps, removed app ids, the target's dependents, its service ports), or
        ApiError (422, 409) when ``target`` may not become the root; reads the state only."""
        if touched is None:
            changed = {a: app for a, app in target.apps.items() if self.root.apps.get(a) is not app}
            removed = [a for a in self.root.apps if a not in target.apps]
            dependents = groups.dependents_of(target.apps)
        else:
            changed = {a: target.apps[a] for a in touched
                       if a in target.apps and self.root.apps.get(a) is not target.apps[a]}
            removed = [a for a in touched if a in self.root.apps and a not in target.apps]
            dependents = (self.dependents - set(touched)) | groups.dependents_of(changed)
        problem = groups.validate_root(target, touched=touched, known_groups=self.group_ids, dependents=dependents)
        if problem is not None:
            raise ApiError(problem.status, wire.error_body(problem.message, list(problem.details)))
        ports, problems = app_ports.changed_service_ports(self.service_ports, self.root.apps, changed, removed)
        if problems:
            raise ApiError(422, wire.error_body("Object is not valid", problems))
        plan = deployments.narrowed(deployments.plan(self.root, target, plan_id=self.new_uuid(),
                                                     version=target.version, restarted=tuple(restarted),
                                                     kill=kill or {}, touched=touched, dependents=dependents))
        return plan, changed, removed, dependents, ports

    def _record_group_version(self, target: RootGroup, group_id: str) -> list[tuple[str, str, Any]]:
        return group_versions.record(self.group_versions.setdefault(group_id, {}), target, group_id, MAX_VERSIONS)

    def group_at(self, group_id: str, version: str, new_version: str) -> RootGroup:
        """The root with ``group_id`` as it was at ``version`` (its apps at their versions then)."""
        snap = self.group_versions.get(group_id, {}).get(version)
        if snap is None:
            raise ApiError(404, {"message": f"Group {group_id} not found in version {version}"})
        target = group_versions.restored(self.root, group_id, snap, self.versions, new_version)
        if isinstance(target, groups.GroupError):
            raise ApiError(target.status, wire.error_body(target.message, list(target.details)))
        return target

    def _cancel(self, plan_id: str) -> list[Effect]:
        running = self.running.pop(plan_id, None)
        if running is None:
            return []
        self.dirty.update(deployments.affected_apps(running.plan))
        self._forget_readiness(running.plan)
        return [Store((("deployment", plan_id, None),))]

    def cancel_deployment(self, plan_id: str, now: float, *, force: bool) -> tuple[DeploymentPlan | None, list[Effect]]:
        """DELETE /v2/deployments/{id}: force stops it where it is; otherwise its revert runs."""
        running = self.running.get(plan_id)
        if running is None:
            raise ApiError(404, {"message": f"DeploymentPlan {plan_id} does not exist"})
        effects = self._cancel(plan_id)
        if force:
            return None, effects
        version = self.version(now)
        revert = deployments.rollback(running.plan, self.root, plan_id=self.new_uuid(), version=version)
        plan, more = self.deploy(revert.target, now, force=True,
                                 restarted=[a.app_id for s in revert.steps for a in s if a.kind is ActionKind.RESTART])
        return plan, effects + more

    # ================================================================ the loop
    def tick(self, now: float, *, full: bool = True) -> list[Effect]:
        """Advance the deployments, and keep the apps no deployment holds at their target: every
        app (``full``, the periodic tick), or only those whose instances or definition moved."""
        effects: list[Effect] = self._drains_over(now)
        for running in list(self.running.values()):
            effects += self._advance(running, now)
        held = {a for running in self.running.values() for a in deployments.affected_apps(running.plan)}
        if full:
            effects += self._expunge_and_rekill(now)
        kept = self.root.apps.keys() if full else sorted(a for a in self.dirty if a in self.root.apps)
        self.dirty.clear()
        for app_id in kept:
            if app_id not in held:
                effects += self._keep(self.root.apps[app_id], now)
        for app_id in list(self.queue):
            if app_id not in self.root.apps and app_id not in held:
                del self.queue[app_id]
        wanted = bool(self.queue)
        if wanted and (self.suppressed or self.declined_idle) and self._may_revive(now):
            self.suppressed = self.declined_idle = False  # REVIVE also clears decline filters
            self.revived_at = now
            effects.append(Revive())
        elif not wanted and not self.suppressed:
            self.suppressed = True
            effects.append(Suppress())
        return effects

    def _may_revive(self, now: float) -> bool:
        """At most one REVIVE per ``min_revive_interval`` (a burst of new apps shares one round of
        offers; the periodic tick sends the one held back)."""
        return self.revived_at is None or now - self.revived_at >= self.min_revive_interval

    def _advance(self, running: Running, now: float) -> list[Effect]:
        effects: list[Effect] = []
        while running.step < len(running.plan.steps):
            outcomes: list[AppStep] = []
            for action in running.plan.steps[running.step]:
                app = running.plan.target.apps.get(action.app_id) or running.plan.original.apps.get(action.app_id)
                if app is None:
                    continue
                outcome = step_app(action, app, list(self.by_app.get(action.app_id, {}).values()), now,
                                   queued=self.queue.get(action.app_id, 0), since=running.step_started)
                outcomes.append(outcome)
                effects += self._apply(app, outcome, now)
            running.progress = deployments.note_progress(running.progress, running.step, outcomes, now)
            if not all(o.done for o in outcomes):
                effects += self._check_stall(running, now)
                return effects
            running.step += 1
            running.step_started = now
            effects.append(Store((("deployment", running.plan.id, running.json()),)))
            effects.append(Emit(self._plan_event("deployment_step_success", running, now)))
        del self.running[running.plan.id]
        self._forget_readiness(running.plan)
        self.dirty.update(deployments.affected_apps(running.plan))
        effects.append(Store((("deployment", running.plan.id, None),)))
        effects.append(Emit(wire.event("deployment_success", wire.timestamp(now), id=running.plan.id,
                                  plan=self._plan_payload(running.plan))))
        return effects

    def _check_stall(self, running: Running, now: float) -> list[Effect]:
        if self.stall_timeout is None or running.progress is None or running.stalled:
            return []
        reason = deployments.stalled(running.progress, now, self.stall_timeout, self._launch_reason(running))
        if reason is None:
            return []
        running.stalled = reason
        effects: list[Effect] = [Emit(wire.event("deployment_failed", wire.timestamp(now), id=running.plan.id,
                                            plan=self._plan_payload(running.plan), reason=reason))]
        if deployments.rolls_back_on_stall(running.plan):
            effects += self.cancel_deployment(running.plan.id, now, force=False)[1]
        return effects

    def _launch_reason(self, running: Running) -> str | None:
        """Why the plan's queued launches do not happen, from the offers they were refused."""
        parts = []
        for app_id in deployments.affected_apps(running.plan):
            stats = self.stats.get(app_id)
            if app_id not in self.queue or stats is None:
                continue
            counts = stats.reason_counts()
            if counts:
                reasons = ", ".join(f"{reason} ({n} offers)" for reason, n in counts.items())
                parts.append(f"{app_id}: offers declined for {reasons}")
            else:
                parts.append(f"{app_id}: no offers since {wire.timestamp(stats.since)}")
        return "; ".join(parts) or None

    def _keep(self, app: App, now: float) -> list[Effect]:
        """An app no deployment holds: replace what died or turned unhealthy, kill what is too many.

        An unhealthy instance gets its replacement first, while the app stays within
        maximumOverCapacity; it is killed once the replacement serves (the agent may kill it
        sooner, after maxConsecutiveFailures)."""
        live = [i for i in self._live(app["id"]) if not is_inactive(app, i, now)]
        good = [i for i in live if i.healthy is not False]
        bad = [i for i in live if i.healthy is False]
        target = int(app["instances"])
        over = float((app.get("upgradeStrategy") or {}).get("maximumOverCapacity", 1.0))
        ceiling = max(target, int(target * (1 + over) + 1e-9), target + (1 if bad else 0))
        queued = self.queue.get(app["id"], 0)
        effects: list[Effect] = []
        if len(good) + queued < target:
            self._set_queued(app["id"], max(queued, min(target - len(good), ceiling - len(live))))
            self.stats.setdefault(app["id"], LaunchStats(now))
        elif len(good) + queued > target:
            surplus = len(good) + queued - target
            drop = min(queued, surplus)
            self._set_queued(app["id"], queued - drop)
            victims = kill_order(good, str(app.get("killSelection", "YOUNGEST_FIRST")), count=surplus - drop)
            effects += self.kill_tasks(app, [v.task_id for v in victims], now)
        if bad and len(good) >= target:
            effects += self.kill_tasks(app, [i.task_id for i in bad], now)
        return effects

    def _expunge_and_rekill(self, now: float) -> list[Effect]:
        """The periodic tick's walk: forget the instances unreachable for their app's
        expungeAfterSeconds; send again the kills of instances still there KILL_RETRY_SECONDS
        after their kill (a KILL lost on the way, or sent while not subscribed)."""
        gone: list[tuple[str, str, Any]] = []
        effects: list[Effect] = []
        for task_id in [t for t, i in self.instances.items()
                        if i.state == "TASK_UNREACHABLE" or (i.killing and t not in self.lbs.drains)]:
            instance = self.instances[task_id]
            app = self.root.apps.get(instance.app_id) or self._target_of(instance.app_id)
            if instance.state == "TASK_UNREACHABLE" and (app is None or is_expunged(app, instance, now)):
                self.readiness_results.pop(task_id, None)
                del self.instances[task_id]
                self.by_app.get(instance.app_id, {}).pop(task_id, None)
                self.dirty.add(instance.app_id)
                gone.append(("instance", task_id, None))
            elif instance.killing and now - (instance.kill_sent_at or 0.0) >= KILL_RETRY_SECONDS:
                effects.append(self._kill(app or {}, instance, now))
        return ([Store(tuple(gone))] if gone else []) + effects

    def _live(self, app_id: str) -> list[Instance]:
        return [i for i in self.by_app.get(app_id, {}).values() if i.active and not i.killing]

    def _apply(self, app: App, outcome: AppStep, now: float) -> list[Effect]:
        if outcome.launch or outcome.cancel_queued:
            self._set_queued(app["id"], self.queue.get(app["id"], 0) + outcome.launch - outcome.cancel_queued)
            if outcome.launch:
                self.stats.setdefault(app["id"], LaunchStats(now))
        return self.kill_tasks(app, list(outcome.kill), now)

    def kill_tasks(self, app: App, task_ids: list[str], now: float, *, drained: bool = True) -> list[Effect]:
        """Kill these instances of ``app``: a running one behind a live load balancer is drained
        first (unless ``drained`` is False: wipe or force, which also ends a drain under way)."""
        effects: list[Effect] = []
        lbs: set[str] | None = None
        for task_id in task_ids:
            instance = self.instances.get(task_id)
            if instance is None:
                continue
            undrained = not drained or task_id in self.undrained
            self.undrained.discard(task_id)
            if instance.killing:
                if undrained and task_id in self.lbs.drains:  # a forced kill ends the wait
                    self.lbs.forget(task_id)
                    effects.append(self._kill(app, instance, now))
                continue
            instance.killing = True
            self.dirty.add(instance.app_id)
            if not undrained and instance.running and app.get("taskKillGracePeriodSeconds") != 0:  # 0: no wait
                lbs = self.lbs.matching(app, now) if lbs is None else lbs
                if lbs:
                    effects.append(self._drain(app, instance, lbs, now))
                    continue
            effects.append(self._kill(app, instance, now))
        return effects

    def _drain(self, app: App, instance: Instance, lbs: set[str], now: float) -> Emit:
        grace = app.get("taskKillGracePeriodSeconds")  # None (unset) or > 0 here
        deadline = now + (float(grace) if grace else drain.DRAIN_DEFAULT_SECONDS)
        self.lbs.start(instance.task_id, instance.app_id, lbs, deadline, float(grace) if grace else None)
        instance.draining = True
        return Emit(wire.event("instance_draining_event", wire.timestamp(now), appId=instance.app_id,
                               taskId=instance.task_id, host=instance.host, ports=list(instance.host_ports),
                               ipAddresses=wire.ip_addresses_json(instance), deadline=wire.timestamp(deadline)))

    def _drains_over(self, now: float, among: list[str] | None = None) -> list[Effect]:
        """The Kills of the drains that are over (confirmed by every LB still live, or past the
        deadline); ``among``: only those of these task ids."""
        if not self.lbs.drains:
            return []
        effects: list[Effect] = []
        for over in self.lbs.due(now, among):
            instance = self.instances.get(over.task_id)
            if instance is not None and instance.killing:
                instance.kill_sent_at = now
                effects.append(Kill(instance.task_id, instance.agent_id, over.kill_grace))
        return effects

    def _kill(self, app: App, instance: Instance, now: float) -> Kill:
        instance.kill_sent_at = now
        grace = app.get("taskKillGracePeriodSeconds")
        return Kill(instance.task_id, instance.agent_id, float(grace) if grace else None)

    # ================================================================ load balancers (a Meseta extension)
    def lb_register(self, lb_id: str, body: Any, now: float) -> dict[str, Any]:
        """PUT /v2/loadbalancers/{lbId}: register or renew (422 naming the field; nothing changes)."""
        _check_lb_id(lb_id)
        groups_, ttl, problems = drain.parse_registration(body)
        if problems:
            raise ApiError(422, wire.invalid_body(problems))
        self.lbs.expire(now)
        return drain.registration_json(self.lbs.register(lb_id, groups_, ttl, now))

    def lb_unregister(self, lb_id: str, now: float) -> list[Effect]:
        """DELETE /v2/loadbalancers/{lbId}: the drains that waited only on it end."""
        _check_lb_id(lb_id)
        if not self.lbs.unregister(lb_id, now):
            raise ApiError(404, {"message": f"Load balancer '{lb_id}' is not registered"})
        return self._drains_over(now)

    def lb_drained(self, lb_id: str, body: Any, now: float) -> list[Effect]:
        """POST /v2/loadbalancers/{lbId}/drained: the LB no longer routes to these tasks
        (unknown ones are ignored); the Kills of the drains now over."""
        _check_lb_id(lb_id)
        task_ids, problems = drain.parse_drained(body)
        if problems:
            raise ApiError(422, wire.invalid_body(problems))
        if self.lbs.live(lb_id, now) is None:
            raise ApiError(404, {"message": f"Load balancer '{lb_id}' is not registered"})
        self.lbs.confirm(lb_id, task_ids)
        return self._drains_over(now, task_ids)

    def lb_list(self, now: float) -> list[dict[str, Any]]:
        self.lbs.expire(now)
        return [drain.registration_json(r) for _, r in sorted(self.lbs.registrations.items())]

    # ================================================================ updates
    def status(self, status: dict[str, Any], now: float) -> list[Effect]:
        task_id = status["task_id"]["value"]
        state = str(status.get("state", ""))
        instance = self.instances.get(task_id)
        if instance is None:
            if state not in TERMINAL_STATES:  # a task we do not know (no longer): it must go
                return [Kill(task_id, str((status.get("agent_id") or {}).get("value", "")))]
            return []
        app = self.root.apps.get(instance.app_id) or self._target_of(instance.app_id)
        effects: list[Effect] = []
        was = (instance.state, instance.healthy)
        instance.message = str(status.get("message", ""))
        if "healthy" in status:
            instance.healthy = bool(status["healthy"])
            if instance.healthy != was[1]:
                _note_health(instance, instance.healthy, now)
            elif not instance.healthy:
                instance.health_failures += 1  # another failure report (kept in memory only)
        addresses = ip_addresses_of(status)
        moved = bool(addresses) and addresses != instance.ip_addresses  # a status without them keeps the last
        if moved:
            instance.ip_addresses = addresses
        if state not in TERMINAL_STATES and (state, instance.healthy) == was and not moved:
            return []  # nothing new (a reconciliation answer, a repeated update): nothing to store or tell
        self.dirty.add(instance.app_id)
        was_healthy = was[1]
        if state == "TASK_UNREACHABLE" and instance.state != state:
            instance.unreachable_since = now
        elif state != "TASK_UNREACHABLE":
            instance.unreachable_since = None
        instance.state = state
        if state == "TASK_RUNNING" and instance.started_at is None:
            instance.started_at = now
        ts = wire.timestamp(now)
        effects.append(Emit(wire.event("status_update_event", ts, slaveId=instance.agent_id, taskId=task_id,
                                  taskStatus=state, message=instance.message, appId=instance.app_id,
                                  host=instance.host, ipAddresses=wire.ip_addresses_json(instance),
                                  ports=instance.host_ports,
                                  version=instance.version)))
        if instance.healthy is not None and instance.healthy != was_healthy:
            effects.append(Emit(wire.event("health_status_changed_event", ts, appId=instance.app_id, instanceId=task_id,
                                      version=instance.version, alive=instance.healthy)))
        if state in TERMINAL_STATES:
            self.readiness_results.pop(task_id, None)
            self.lbs.forget(task_id)
            self.undrained.discard(task_id)
            del self.instances[task_id]
            self.by_app.get(instance.app_id, {}).pop(task_id, None)
            effects.append(Store((("instance", task_id, None),), sync=False))
            if app is not None:
                self.delays.on_task_status(app, state, now, health_check_kill=instance.healthy is False)
                if state in ("TASK_FAILED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE", "TASK_FINISHED"):
                    self.last_failure[instance.app_id] = wire.task_failure_json(instance, at=now)
        else:
            effects.append(Store((("instance", task_id, codec.instance_json(instance)),), sync=False))
        return effects  # the shell ticks soon after (coalescing a burst of updates into one tick)

    # ================================================================ readiness checks
    def readiness_probes(self) -> list[Probe]:
        """The instances the running steps wait on to become ready, and how to check them."""
        probes: list[Probe] = []
        for running in self.running.values():
            if running.step >= len(running.plan.steps):
                continue
            for action in running.plan.steps[running.step]:
                app = running.plan.target.apps.get(action.app_id)
                if app is not None and app.get("readinessChecks") and action.kind is not ActionKind.STOP:
                    probes += probes_for(app, self.instances_of(action.app_id), running.step_started)
        return probes

    def readiness_answer(self, probe: Probe, answer: Answer, now: float) -> list[Effect]:
        """A probe's answer: the result is kept for the API; a ready instance is stored as such
        (the step counts it at the next tick)."""
        instance = self.instances.get(probe.task_id)
        if instance is None:
            return []
        ready, self.readiness_results[probe.task_id] = result_of(probe, answer)
        if not ready or instance.ready is True:
            return []
        instance.ready = True
        self.dirty.add(instance.app_id)
        return [Store((("instance", instance.task_id, codec.instance_json(instance)),))]

    def readiness_of(self, app_id: str) -> list[dict[str, Any]]:
        return [self.readiness_results[t] for t in self.by_app.get(app_id, {}) if t in self.readiness_results]

    def _forget_readiness(self, plan: DeploymentPlan) -> None:
        for app_id in deployments.affected_apps(plan):
            for task_id in self.by_app.get(app_id, {}):
                self.readiness_results.pop(task_id, None)

    def registered(self, framework_id: str, now: float) -> list[Effect]:
        """(Re)subscribed: keep the id, and ask Mesos where every known task stands."""
        self.framework_id = framework_id
        self.suppressed = True  # the tick that follows revives if anything waits, suppresses otherwise
        self.revived_at = None
        tasks = tuple((i.task_id, i.agent_id) for i in self.instances.values())
        return [Store((("meta", "framework_id", {"value": framework_id}),)), Reconcile(tasks), Reconcile(()),
                *self.tick(now)]

    # ================================================================ events
    def _plan_payload(self, plan: DeploymentPlan) -> dict[str, Any]:
        return wire.plan_json(plan.id, plan.version, steps_of(plan), original=wire.plan_group_json(plan.original),
                              target=wire.plan_group_json(plan.target))

    def _plan_event(self, kind: str, running: Running, now: float) -> dict[str, Any]:
        step = running.plan.steps[min(running.step, len(running.plan.steps) - 1)] if running.plan.steps else ()
        return wire.event(kind, wire.timestamp(now), plan=self._plan_payload(running.plan),
                          currentStep={"actions": [{"action": a.kind.value, "app": a.app_id} for a in step]})

    # ================================================================ app helpers for the API
    def new_app(self, raw: Any, now: float, base: str = app_ids.ROOT, *, version: str | None = None,
                assign_ports: bool = True) -> App:
        """An app definition from the wire, with its service ports of 0 assigned (unless the
        caller assigns those of several apps together: :meth:`with_service_ports`). ``version``:
        the request's, when one request defines several apps."""
        app, problems = app_definition.normalise(raw, now_version=version or self.version(now), base=base)
        if app is None or problems:
            raise ApiError(422, wire.error_body("Object is not valid", problems))
        if not assign_ports:
            return app
        taken = {port for port, owner in self.service_ports.items() if owner != app["id"]}
        return app_ports.assign_service_ports(app, taken, previous=self.root.apps.get(app["id"]))

    def with_service_ports(self, target: RootGroup) -> RootGroup:
        """``target`` with service ports of 0 assigned in the apps it adds or changes (a group
        change): they keep their previous ports where they had them."""
        changed = {a for a, app in target.apps.items() if self.root.apps.get(a) is not app}
        if not changed:
            return target
        taken = {port for port, owner in self.service_ports.items() if owner in target.apps and owner not in changed}
        ids = sorted(changed)
        assigned = app_ports.assign_service_ports_of([(target.apps[a], self.root.apps.get(a)) for a in ids], taken)
        return RootGroup({**target.apps, **dict(zip(ids, assigned, strict=True))}, target.groups, target.version)

    def with_app(self, app: App, version: str) -> RootGroup:
        return groups.put_app(self.root, app, version=version)

    def restart(self, app_id: str, now: float, *, force: bool) -> tuple[DeploymentPlan, list[Effect]]:
        app = self.root.apps.get(app_id)
        if app is None:
            raise ApiError(404, {"message": f"App '{app_id}' does not exist"})
        version = self.version(now)
        restarted = replace_version(app, version)
        target = RootGroup({**self.root.apps, app_id: restarted}, self.root.groups, version)
        return self.deploy(target, now, force=force, restarted=[app_id])


def _check_lb_id(lb_id: str) -> None:
    problem = drain.lb_id_problem(lb_id)
    if problem is not None:
        raise ApiError(422, wire.invalid_body([("/id", f"lbId {problem}")]))


def _note_health(instance: Instance, healthy: bool, now: float) -> None:
    """A change of health, for the task's healthCheckResults (the agent reports changes only)."""
    if healthy:
        instance.health_first_success = instance.health_first_success or now
        instance.health_last_success = now
        instance.health_failures = 0
    else:
        instance.health_last_failure = now
        instance.health_failures += 1
        instance.health_failure_cause = instance.message or None


def steps_of(plan: DeploymentPlan) -> list[list[tuple[str, str]]]:
    """The plan's steps as (action name, app id) pairs, as the wire module renders them."""
    return [[(a.kind.value, a.app_id) for a in step] for step in plan.steps]


def replace_version(app: App, version: str) -> App:
    """The app given a new version for a restart: the config is unchanged, but every instance
    launched before now is old (so versionInfo.lastConfigChangeAt moves with lastScalingAt)."""
    out = {**app, "version": version}
    info = app.get("versionInfo")
    if isinstance(info, dict):
        out["versionInfo"] = {**info, "lastScalingAt": version, "lastConfigChangeAt": version}
    return out

