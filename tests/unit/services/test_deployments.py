"""Deployment plans, locks, rollback, stalls, and the per-app step decision (with a simulation)."""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meseta.services.deploy.app_step import kill_order, rolling_bounds
from meseta.services.deploy.deployments import (
    Action,
    ActionKind,
    AppStep,
    DeploymentPlan,
    affected_apps,
    auto_rollback,
    conflicts,
    note_progress,
    plan,
    rollback,
    rolls_back_on_stall,
    stalled,
    step_app,
    steps_json,
)
from meseta.services.deploy.groups import Group, RootGroup
from meseta.services.model import App, Instance

V0, V1, V2, V3 = (f"2026-01-0{d}T00:00:00.000Z" for d in (1, 2, 3, 4))
START, STOP, SCALE, RESTART = ActionKind.START, ActionKind.STOP, ActionKind.SCALE, ActionKind.RESTART


def app(app_id: str, **fields: Any) -> App:
    """A normalised app with the defaults app_definition fills in (the fields used here)."""
    return {"id": app_id, "cmd": "sleep 1", "instances": 1, "version": V0, "dependencies": [],
            "labels": {}, "healthChecks": [], "readinessChecks": [], "killSelection": "YOUNGEST_FIRST",
            "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
            "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}, **fields}


def strategy(min_health: float, over: float) -> dict[str, float]:
    return {"minimumHealthCapacity": min_health, "maximumOverCapacity": over}


def root_of(*apps: App, groups: tuple[Group, ...] = (), version: str = V0) -> RootGroup:
    return RootGroup({a["id"]: a for a in apps}, {g.id: g for g in groups}, version)


def inst(task_id: str, version: str = V0, state: str = "TASK_RUNNING", *, staged: float = 0.0,
         healthy: bool | None = True, ready: bool | None = None, **fields: Any) -> Instance:
    started = staged + 1 if state in ("TASK_RUNNING", "TASK_KILLING") else None
    return Instance(task_id, "/web", version, "agent-1", "host-1", state=state, staged_at=staged,
                    started_at=started, healthy=healthy, ready=ready, **fields)


def shape(p: DeploymentPlan) -> list[list[tuple[str, str]]]:
    return [[(str(a.kind), a.app_id) for a in step] for step in p.steps]


def make(original: RootGroup, target: RootGroup, **kw: Any) -> DeploymentPlan:
    return plan(original, target, plan_id=kw.pop("plan_id", "p1"), version=V1, **kw)


# ---- plan shapes --------------------------------------------------------------------------


def test_create_is_a_start_step_then_a_scale_step() -> None:
    p = make(RootGroup(), root_of(app("/web", instances=3)))
    assert shape(p) == [[("StartApplication", "/web")], [("ScaleApplication", "/web")]]
    assert p.steps[0][0].scale_to == 0 and p.steps[1][0].scale_to == 3
    assert steps_json(p)[1] == {"actions": [{"action": "ScaleApplication", "app": "/web"}]}


def test_dependencies_are_layered_dependencies_first() -> None:
    target = root_of(app("/db"), app("/api", dependencies=["/db"]), app("/web", dependencies=["/api", "/db"]),
                     app("/cache"))
    p = make(RootGroup(), target)
    assert shape(p)[1:] == [[("ScaleApplication", "/cache"), ("ScaleApplication", "/db")],
                            [("ScaleApplication", "/api")], [("ScaleApplication", "/web")]]


def test_group_dependencies_layer_every_app_below() -> None:
    target = root_of(app("/back/db"), app("/front/a"), app("/front/b"), groups=(Group("/front", ("/back",)),))
    assert shape(make(RootGroup(), target))[1:] == [
        [("ScaleApplication", "/back/db")], [("ScaleApplication", "/front/a"), ("ScaleApplication", "/front/b")]]


def test_removals_come_first_then_starts_then_changes() -> None:
    original = root_of(app("/a"), app("/b"), app("/same"))
    target = root_of(app("/b", cmd="new"), app("/c"), app("/same"))
    assert shape(make(original, target)) == [[("StopApplication", "/a")], [("StartApplication", "/c")],
                                             [("RestartApplication", "/b"), ("ScaleApplication", "/c")]]


def test_scale_only_versus_config_change() -> None:
    original = root_of(app("/s", instances=2), app("/c"), app("/l"), app("/r"), app("/u"))
    target = root_of(app("/s", instances=5, version=V1), app("/c", cmd="x", version=V1),
                     app("/l", labels={"a": "b"}, version=V1), app("/r", version=V1), app("/u"))
    p = make(original, target, restarted={"/r"})
    kinds = {a.app_id: a.kind for step in p.steps for a in step}
    assert kinds == {"/s": SCALE, "/c": RESTART, "/l": RESTART, "/r": RESTART}
    assert make(original, original).steps == ()
    custom = make(original, target, scale_only=lambda old, new: True)
    assert {a.app_id: a.kind for step in custom.steps for a in step}["/c"] is SCALE


def test_kill_and_scale_sentences_tasks() -> None:
    original = root_of(app("/web", instances=3))
    target = root_of(app("/web", instances=2, version=V1))
    p = make(original, target, kill={"/web": ["t2"]})
    assert p.steps == ((Action(SCALE, "/web", 2, ("t2",)),),)


# ---- locks ----------------------------------------------------------------------------------


def test_conflicts_name_the_plans_sharing_an_app() -> None:
    base = root_of(app("/a"), app("/b"), app("/c"))
    on_a = make(base, root_of(app("/a", cmd="x"), app("/b"), app("/c")), plan_id="pa")
    on_b = make(base, root_of(app("/a"), app("/b", instances=4), app("/c")), plan_id="pb")
    on_ab = make(base, root_of(app("/a", cmd="y"), app("/b", cmd="y"), app("/c")), plan_id="pab")
    assert conflicts(on_ab, [on_a, on_b]) == ["pa", "pb"]
    assert conflicts(on_a, [on_b]) == []
    assert conflicts(on_a, [on_a]) == []
    removal = make(base, root_of(app("/b"), app("/c")), plan_id="rm")
    assert conflicts(removal, [on_a]) == ["pa"] and affected_apps(removal) == ["/a"]


# ---- rollback ---------------------------------------------------------------------------------


def test_rollback_reverts_only_what_the_plan_touched() -> None:
    original = root_of(app("/a", cmd="v1"), app("/b", instances=2), app("/d"), app("/e"),
                       groups=(Group("/g", ("/e",)),))
    target = root_of(app("/a", cmd="v2", version=V1), app("/b", instances=5, version=V1), app("/c", version=V1),
                     app("/e"), groups=(Group("/g", ("/x",), V1),), version=V1)
    cancelled = make(original, target)
    current = root_of(*target.apps.values(), app("/f", version=V2), groups=tuple(target.groups.values()), version=V2)
    back = rollback(cancelled, current, plan_id="rb", version=V3)
    assert back.target.apps["/a"] == original.apps["/a"]  # exactly the original, old stamp included
    assert back.target.apps["/b"]["instances"] == 2 and "/c" not in back.target.apps
    assert back.target.apps["/d"] == original.apps["/d"]
    assert back.target.apps["/f"] == current.apps["/f"]  # someone else's app stays
    assert back.target.groups["/g"].dependencies == ("/e",)
    assert shape(back) == [[("StopApplication", "/c")], [("StartApplication", "/d")],
                           [("RestartApplication", "/a"), ("ScaleApplication", "/b"), ("ScaleApplication", "/d")]]


def test_rollback_of_a_bare_restart_has_nothing_to_do() -> None:
    original = root_of(app("/a"))
    restarted = make(original, root_of(app("/a", version=V1)), restarted={"/a"})
    assert shape(restarted) == [[("RestartApplication", "/a")]]
    assert rollback(restarted, restarted.target, plan_id="rb", version=V2).steps == ()


def test_rollback_replaces_instances_even_when_the_definition_is_already_back() -> None:
    original = root_of(app("/web", cmd="v1"))
    cancelled = make(original, root_of(app("/web", cmd="v2", version=V1)))
    back = rollback(cancelled, original, plan_id="rb", version=V2)
    assert shape(back) == [[("RestartApplication", "/web")]]


def test_rollback_leaves_instances_already_on_the_original_version_alone() -> None:
    old = app("/web", cmd="v1", instances=4, upgradeStrategy=strategy(0.5, 0.0))
    cancelled = make(root_of(old), root_of({**old, "cmd": "v2", "version": V1}))
    back = rollback(cancelled, cancelled.target, plan_id="rb", version=V2)
    action = back.steps[0][0]
    mixed = [inst("o1", V0, staged=1), inst("o2", V0, staged=2), inst("n1", V1, staged=3), inst("n2", V1, staged=4)]
    step = step_app(action, back.target.apps["/web"], mixed, 10.0)
    assert set(step.kill) == {"n1", "n2"} and step.launch == 0  # minHealthy 2: both v2 ones may go at once
    after = [mixed[0], mixed[1], inst("r1", V0, staged=11), inst("r2", V0, staged=12)]
    assert step_app(action, back.target.apps["/web"], after, 20.0).done


# ---- scale, stop and kill order -------------------------------------------------------------------


def test_kill_order_follows_state_then_kill_selection() -> None:
    instances = [inst("run-old", staged=1), inst("run-new", staged=5), inst("stage-a", state="TASK_STAGING", staged=6),
                 inst("stage-b", state="TASK_STAGING", staged=7), inst("starting", state="TASK_STARTING", staged=8),
                 inst("gone", state="TASK_UNREACHABLE", staged=0), inst("named", staged=2)]
    order = [i.task_id for i in kill_order(instances, "YOUNGEST_FIRST", ["named"])]
    assert order == ["named", "gone", "stage-b", "stage-a", "starting", "run-new", "run-old"]
    assert [i.task_id for i in kill_order(instances, "OLDEST_FIRST")][-2:] == ["named", "run-new"]


def test_scale_up_queues_what_is_missing_and_waits_for_health() -> None:
    web = app("/web", instances=3, healthChecks=[{"protocol": "HTTP"}])
    step = step_app(Action(SCALE, "/web", 3), web, [inst("a")], 0.0, queued=1)
    assert step.launch == 1 and not step.done
    assert "waiting for 2 instances of /web to launch" in step.waiting
    unhealthy = [inst("a"), inst("b"), inst("c", healthy=None)]
    step = step_app(Action(SCALE, "/web", 3), web, unhealthy, 0.0)
    assert step.launch == 0 and not step.done and step.waiting == "waiting for 1 instance of /web to become healthy"
    assert step_app(Action(SCALE, "/web", 3), web, [inst("a"), inst("b"), inst("c")], 0.0).done


def test_scale_down_drops_queued_first_then_kills_sentenced_and_youngest() -> None:
    web = app("/web", instances=2)
    running = [inst("a", staged=1), inst("b", staged=2), inst("c", staged=3), inst("d", staged=4)]
    step = step_app(Action(SCALE, "/web", 2, ("a",)), web, running, 0.0, queued=2)
    assert step.cancel_queued == 2 and step.kill == ("a", "d") and not step.done
    dying = [inst("a", killing=True), inst("b"), inst("c")]
    assert not step_app(Action(SCALE, "/web", 2, ("a",)), web, dying, 0.0).done
    assert step_app(Action(SCALE, "/web", 2, ("a",)), web, dying[1:], 0.0).done


def test_readiness_counts_only_for_instances_the_step_started() -> None:
    web = app("/web", instances=2, readinessChecks=[{"name": "readinessCheck"}])
    instances = [inst("old", staged=1), inst("new", staged=11)]
    assert not step_app(Action(SCALE, "/web", 2), web, instances, 20.0, since=10.0).done
    instances[1].ready = True
    assert step_app(Action(SCALE, "/web", 2), web, instances, 20.0, since=10.0).done


def test_unreachable_inactive_instances_are_replaced_not_counted() -> None:
    web = app("/web", instances=2, unreachableStrategy={"inactiveAfterSeconds": 300, "expungeAfterSeconds": 600})
    away = inst("away", state="TASK_UNREACHABLE", unreachable_since=0.0)
    assert step_app(Action(SCALE, "/web", 2), web, [inst("a"), away], 100.0).launch == 0
    assert step_app(Action(SCALE, "/web", 2), web, [inst("a"), away], 400.0).launch == 1
    disabled = {**web, "unreachableStrategy": "disabled"}
    assert step_app(Action(SCALE, "/web", 2), disabled, [inst("a"), away], 1e9).launch == 0


def test_stop_kills_everything_and_waits_for_terminal() -> None:
    web = app("/web")
    step = step_app(Action(STOP, "/web"), web, [inst("a"), inst("b", state="TASK_STAGING")], 0.0, queued=3)
    assert step.cancel_queued == 3 and set(step.kill) == {"a", "b"} and not step.done
    dying = [inst("a", killing=True), inst("b", state="TASK_KILLED"), inst("c", state="TASK_UNREACHABLE", killing=True)]
    assert not step_app(Action(STOP, "/web"), web, dying, 0.0).done
    assert step_app(Action(STOP, "/web"), web, dying[1:], 0.0).done
    assert step_app(Action(START, "/web", 0), web, [], 0.0).done


# ---- rolling restart, by example ----------------------------------------------------------------


def restart(min_health: float, over: float, instances: list[Instance], n: int = 4, queued: int = 0,
            **fields: Any) -> AppStep:
    web = app("/web", instances=n, version=V1, upgradeStrategy=strategy(min_health, over),
              healthChecks=[{"protocol": "HTTP"}], **fields)
    return step_app(Action(RESTART, "/web", n), web, instances, 0.0, queued=queued)


def olds(count: int, unhealthy: int = 0) -> list[Instance]:
    return [inst(f"o{i}", V0, staged=i, healthy=i >= unhealthy) for i in range(count)]


def test_bounds_round_like_marathon_with_the_extra_instance() -> None:
    assert rolling_bounds(app("/a", upgradeStrategy=strategy(0.7, 0.1)), 10) == (7, 11)
    assert rolling_bounds(app("/a", upgradeStrategy=strategy(0.28, 0.16)), 25) == (7, 29)  # float products
    assert rolling_bounds(app("/a", upgradeStrategy=strategy(1.0, 0.0)), 3) == (3, 4)
    resident = app("/a", upgradeStrategy=strategy(0.5, 0.0), container={"volumes": [{"persistent": {"size": 1}}]})
    assert rolling_bounds(resident, 2) == (1, 2)
    assert rolling_bounds({**resident, "upgradeStrategy": strategy(1.0, 0.0)}, 2) == (1, 2)


def test_capacity_zero_kills_every_old_instance_first() -> None:
    step = restart(0.0, 0.0, olds(4))
    assert len(step.kill) == 4 and step.launch == 0


def test_capacity_one_one_starts_all_new_side_by_side() -> None:
    step = restart(1.0, 1.0, olds(4))
    assert step.kill == () and step.launch == 4
    one_serving = [*olds(4), inst("n0", V1, staged=10)]
    step = restart(1.0, 1.0, one_serving, queued=3)
    assert step.launch == 0 and step.kill == ("o3",)  # one new serves: the youngest old goes


def test_one_zero_uses_one_extra_instance() -> None:
    step = restart(1.0, 0.0, olds(4))
    assert step.launch == 1 and step.kill == ()


def test_half_capacity_kills_down_to_min_healthy_at_once() -> None:
    step = restart(0.5, 0.0, olds(4))
    assert step.kill == ("o3", "o2") and step.launch == 0  # no room until they are gone


def test_a_replacement_starts_before_an_unhealthy_instance_is_killed() -> None:
    step = restart(1.0, 1.0, olds(4, unhealthy=1))
    assert step.kill == () and step.launch == 4
    serving = [*olds(4, unhealthy=1), inst("n0", V1, staged=10)]
    assert restart(1.0, 1.0, serving, queued=3).kill == ("o0",)  # the unhealthy one goes first


def test_an_unhealthy_instance_blocking_capacity_is_killed() -> None:
    step = restart(0.5, 0.0, olds(4, unhealthy=2))
    assert set(step.kill) == {"o0", "o1"} and step.launch == 0


def test_restart_done_only_when_all_new_serve_and_old_are_gone() -> None:
    new = [inst(f"n{i}", V1, staged=10 + i) for i in range(4)]
    assert restart(1.0, 1.0, new).done
    assert not restart(1.0, 1.0, [*new, inst("o", V0, killing=True)]).done
    assert not restart(1.0, 1.0, [*new[:3], inst("n3", V1, healthy=False)]).done
    assert restart(1.0, 1.0, [*new, inst("n4", V1, staged=20)]).kill == ("n4",)  # target shrank


def test_scale_only_versions_count_as_current() -> None:
    web = app("/web", instances=1, version=V2, versionInfo={"lastScalingAt": V2, "lastConfigChangeAt": V1})
    step = step_app(Action(RESTART, "/web", 1), web, [inst("a", V1)], 0.0)
    assert step.done and step.kill == ()


# ---- the rolling restart, simulated -------------------------------------------------------------


class Cluster:
    """A tiny cluster: queued launches take a free slot; STAGING runs the next tick; a new
    instance turns healthy (and ready) after its own delay, or fails first; kills take 0-2 ticks."""

    def __init__(self, rng: random.Random, slots: int, fail_rate: float, instances: list[Instance]) -> None:
        self.rng, self.slots, self.fail_rate = rng, slots, fail_rate
        self.instances, self.queued, self.launched = instances, 0, 0
        self.fate: dict[str, tuple[int, bool]] = {}  # task id -> (ticks until healthy, fails first)
        self.dies_in: dict[str, int] = {}

    def apply(self, step: AppStep) -> None:
        self.queued += step.launch - step.cancel_queued
        assert self.queued >= 0
        by_id = {i.task_id: i for i in self.instances}
        for task_id in step.kill:
            assert not by_id[task_id].killing, "killed twice"
            by_id[task_id].killing = True
            self.dies_in[task_id] = self.rng.randint(0, 2)

    def tick(self, now: float) -> None:
        for i in [i for i in self.instances if i.active]:
            if i.killing:
                self.dies_in[i.task_id] -= 1
                if self.dies_in[i.task_id] < 0:
                    i.state = "TASK_KILLED"
            elif i.state == "TASK_STAGING":
                i.state, i.started_at = "TASK_RUNNING", now
            elif i.task_id in self.fate and not i.healthy:
                delay, fails = self.fate[i.task_id]
                if now - (i.started_at or now) >= delay:
                    if fails:
                        i.state = "TASK_FAILED"
                    else:
                        i.healthy = i.ready = True
        while self.queued and sum(1 for i in self.instances if i.active) < self.slots:
            self.queued -= 1
            self.launched += 1
            task_id = f"new-{self.launched}"
            self.fate[task_id] = (self.rng.randint(0, 3), self.rng.random() < self.fail_rate)
            self.instances.append(Instance(task_id, "/web", V1, "a", "h", staged_at=now))


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 8), min_health=st.integers(0, 20), over=st.integers(0, 20), data=st.data())
def test_rolling_restart_keeps_min_healthy_and_max_capacity(n: int, min_health: int, over: int,
                                                            data: st.DataObject) -> None:
    # Exact rational bounds, independent of the module's float handling (k/20 covers 0.7, 0.95...).
    min_healthy = math.ceil(Fraction(n * min_health, 20))
    max_capacity = math.floor(Fraction(n * (20 + over), 20))
    max_capacity += 1 if min_healthy == max_capacity else 0
    old_count = data.draw(st.integers(0, min(max_capacity, n + 2)), "old instances")
    unhealthy = data.draw(st.integers(0, old_count), "unhealthy old instances")
    fewest = max(n, min_healthy + 1) + unhealthy  # fewer slots than this can deadlock any scheduler
    slots = data.draw(st.integers(fewest, max(fewest, max_capacity) + 2), "slots")
    readiness = data.draw(st.booleans(), "readiness check")
    rng = random.Random(data.draw(st.integers(0, 2**32), "seed"))
    web = app("/web", instances=n, version=V1, healthChecks=[{"protocol": "HTTP"}],
              readinessChecks=[{"name": "readinessCheck"}] if readiness else [],
              upgradeStrategy=strategy(min_health / 20, over / 20))
    instances = [inst(f"old-{i}", V0, staged=-100 + i, healthy=i >= unhealthy) for i in range(old_count)]
    cluster = Cluster(rng, slots, data.draw(st.sampled_from([0.0, 0.1, 0.3]), "fail rate"), instances)
    guarded = old_count - unhealthy >= min_healthy
    action = Action(RESTART, "/web", n)
    for tick in range(3000):
        step = step_app(action, web, cluster.instances, float(tick), queued=cluster.queued, since=0.0)
        cluster.apply(step)
        live = [i for i in cluster.instances if i.active and not i.killing]
        serving = sum(1 for i in live if i.running and i.healthy and (i.version == V0 or not readiness or i.ready))
        total = sum(1 for i in cluster.instances if i.active) + cluster.queued
        if guarded:
            assert serving >= min_healthy, f"tick {tick}: {serving} serving < {min_healthy}"
        assert total <= max_capacity, f"tick {tick}: {total} instances > {max_capacity}"
        if step.done:
            break
        cluster.tick(float(tick) + 0.5)
    else:
        raise AssertionError(f"no end after 3000 ticks: {step}")
    active = [i for i in cluster.instances if i.active]
    assert len(active) == n and all(i.version == V1 and i.healthy for i in active)
    assert cluster.queued == 0


# ---- progress and stalls -------------------------------------------------------------------------


def test_progress_is_less_work_than_ever_before() -> None:
    p = note_progress(None, 0, [AppStep(remaining=5, waiting="waiting for 5 instances of /web to launch")], 0.0)
    assert p.last_progress_at == 0.0 and p.best == 5
    p = note_progress(p, 0, [AppStep(remaining=4)], 10.0)
    assert p.last_progress_at == 10.0
    p = note_progress(p, 0, [AppStep(remaining=5, waiting="waiting for 1 instance of /web to become healthy")], 20.0)
    p = note_progress(p, 0, [AppStep(remaining=4, waiting="waiting for 1 instance of /web to become healthy")], 30.0)
    assert p.last_progress_at == 10.0  # back to 4 is not progress: a crash loop stalls
    assert stalled(p, 300.0, 600.0) is None
    assert stalled(p, 700.0, 600.0) == ("no progress for 690 s in step 1: "
                                        "waiting for 1 instance of /web to become healthy")
    reason = stalled(p, 700.0, 600.0, "no offers matched for 120 s: InsufficientMemory")
    assert reason is not None and reason.endswith("healthy (no offers matched for 120 s: InsufficientMemory)")
    assert note_progress(p, 1, [AppStep(remaining=9)], 800.0).last_progress_at == 800.0


def test_auto_rollback_follows_the_label() -> None:
    assert auto_rollback(app("/a", labels={"MESETA_ROLLBACK_ON_STALL": "true"}))
    assert auto_rollback(app("/a", labels={"MESETA_ROLLBACK_ON_STALL": "TRUE"}))
    assert not auto_rollback(app("/a", labels={"MESETA_ROLLBACK_ON_STALL": "no"}))
    assert not auto_rollback(app("/a"))
    labelled = app("/a", labels={"MESETA_ROLLBACK_ON_STALL": "true"})
    assert rolls_back_on_stall(make(RootGroup(), root_of(labelled)))
    assert rolls_back_on_stall(make(root_of(labelled), RootGroup()))
    assert not rolls_back_on_stall(make(RootGroup(), root_of(app("/a"))))
