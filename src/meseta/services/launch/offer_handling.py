"""The offers phase of the services machine (pure): each batch of offers -> one Store of the
instances it launches, a Launch per used offer, one Decline for the rest.

    offer -> the queued apps in turn (round robin; backed-off ones skipped), each matched
             against what the ones before left (offer_matching.rest_of_offer), up to
             max_per_offer instances in all -> TaskInfos, Instances (stored before the Launch)
    an app stored before the API refused what it holds (task_builder.unlaunchable) -> left queued
    unused offers -> declined for DECLINE_SECONDS while anything waits, else
                     IDLE_DECLINE_SECONDS (and the next wanted launch must REVIVE)

A mixin of :class:`~meseta.services.machine.ServicesMachine`, which holds the state named below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from meseta.services import codec
from meseta.services.deploy.groups import RootGroup
from meseta.services.effects import Decline, Effect, Launch, Store
from meseta.services.launch.backoff import LaunchDelays
from meseta.services.launch.constraints import Placed
from meseta.services.launch.launch_stats import LaunchStats
from meseta.services.launch.offer_matching import match, rest_of_offer
from meseta.services.launch.task_builder import task_info, unlaunchable
from meseta.services.model import App, Instance

DECLINE_SECONDS = 1.0  # while something waits to launch, offers come back soon (and are counted)
IDLE_DECLINE_SECONDS = 120.0  # --decline_offer_duration, when nothing is queued


class _Plan(Protocol):
    @property
    def target(self) -> RootGroup: ...


class _Deploying(Protocol):
    @property
    def plan(self) -> _Plan: ...


class OfferHandling:
    new_uuid: Callable[[], str]
    framework_roles: tuple[str, ...]
    max_per_offer: int
    bridge_name: str  # the CNI network of bridge mode for MESOS containers (--mesos-bridge-name)
    root: RootGroup
    instances: dict[str, Instance]
    by_app: dict[str, dict[str, Instance]]
    queue: dict[str, int]
    delays: LaunchDelays
    stats: dict[str, LaunchStats]
    declined_idle: bool
    running: Mapping[str, _Deploying]

    def _set_queued(self, app_id: str, count: int) -> None:
        """The queue holds only apps with launches to make (so "is anything wanted" is cheap)."""
        if count > 0:
            self.queue[app_id] = count
        else:
            self.queue.pop(app_id, None)

    def _target_of(self, app_id: str) -> App | None:
        for running in self.running.values():
            if app_id in running.plan.target.apps:
                return running.plan.target.apps[app_id]
        return None

    def offers(self, offers: list[dict[str, Any]], now: float) -> list[Effect]:
        effects: list[Effect] = []
        unused: list[str] = []
        placed: dict[str, Placed] = {}  # per app, counted once per batch of offers
        changes: list[tuple[str, str, Any]] = []
        waiting = dict.fromkeys(sorted(self.queue))  # apps leave it as their launches are all made
        for offer in offers:
            launched = self._use(offer, now, placed, waiting)
            if launched is None:
                unused.append(offer["id"]["value"])
            else:
                store, launch = launched
                changes += store.changes
                effects.append(launch)
        if changes:  # one write for the whole batch, before any of its launches goes out
            effects.insert(0, Store(tuple(changes)))
        if unused:
            wanted = bool(self.queue)
            self.declined_idle |= not wanted  # refused for long: the next wanted launch must REVIVE
            effects.append(Decline(tuple(unused), DECLINE_SECONDS if wanted else IDLE_DECLINE_SECONDS))
        return effects

    def _use(self, offer: dict[str, Any], now: float, cache: dict[str, Placed],
             waiting: dict[str, None]) -> tuple[Store, Launch] | None:
        """Fill one offer: the waiting apps in turn, each from what the ones before left, up to
        ``max_per_offer`` instances in all."""
        budget = self.max_per_offer
        tasks: list[dict[str, Any]] = []
        changes: list[tuple[str, str, Any]] = []
        rest = offer
        done: list[str] = []
        served: list[str] = []
        for app_id in waiting:
            if budget <= 0 or not rest["resources"]:
                break
            count = self.queue.get(app_id, 0)
            app = self.root.apps.get(app_id) or self._target_of(app_id)
            if count <= 0:
                done.append(app_id)
                continue
            if app is None or self.delays.launch_at(app_id, now) > now or unlaunchable(app):
                continue
            if app_id not in cache:
                live = (i for i in self.by_app.get(app_id, {}).values() if not i.killing)  # walked only if constrained
                cache[app_id] = Placed.of(app.get("constraints") or [], live)
            placed = cache[app_id]
            result = match(app, rest, placed, count=count, max_per_offer=budget,
                           framework_roles=self.framework_roles, now=now)
            stats = self.stats.setdefault(app_id, LaunchStats(now))
            stats.record(rest, [] if result.used else list(result.reasons), now)  # what this app was offered
            if not result.used:
                continue
            for placement in result.placements:
                info = task_info(app, placement, agent_id=result.agent_id, host=result.hostname, uuid=self.new_uuid(),
                                 bridge_name=self.bridge_name)
                task_id = info["task_id"]["value"]
                instance = Instance(task_id, app_id, app["version"], result.agent_id, result.hostname,
                                    staged_at=now, host_ports=list(placement.host_ports),
                                    agent_fields=dict(result.agent_fields))
                self.instances[task_id] = instance
                self.by_app.setdefault(app_id, {})[task_id] = instance
                placed.add(result.agent_fields)
                changes.append(("instance", task_id, codec.instance_json(instance)))
                tasks.append(info)
            self._set_queued(app_id, count - len(result.placements))
            budget -= len(result.placements)
            rest = rest_of_offer(rest, result.placements)
            served.append(app_id)
            if count == len(result.placements):
                done.append(app_id)
        for app_id in served:  # round robin: an app just served waits behind the others next time
            waiting.pop(app_id, None)
            waiting[app_id] = None
        for app_id in done:
            del waiting[app_id]
        if not tasks:
            return None
        return Store(tuple(changes)), Launch(offer["id"]["value"], tuple(tasks))
