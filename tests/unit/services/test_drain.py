"""Drain before kill (pure): load balancer registrations, drain waits, exact effects."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meseta.services import codec, wire
from meseta.services.deploy import drain, groups
from meseta.services.effects import Effect, Emit, Kill, Launch, Store
from meseta.services.machine import ApiError, ServicesMachine
from meseta.services.model import App

NOW = 1_800_000_000.0
PORTS = {"name": "ports", "type": "RANGES", "role": "*", "ranges": {"range": [{"begin": 31000, "end": 31099}]}}


def machine() -> ServicesMachine:
    counter = itertools.count()
    return ServicesMachine(new_uuid=lambda: f"u{next(counter)}")


def offer(oid: str) -> dict[str, Any]:
    def scalar(name: str, value: float) -> dict[str, Any]:
        return {"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": "*"}

    return {"id": {"value": oid}, "agent_id": {"value": "S-h1"}, "hostname": "h1", "allocation_info": {"role": "*"},
            "resources": [scalar("cpus", 4.0), scalar("mem", 4096.0), PORTS]}


def running_app(m: ServicesMachine, count: int = 2, **fields: Any) -> tuple[App, list[str]]:
    """An app of ``count`` TASK_RUNNING instances (one port each)."""
    raw = {"id": "/web", "cmd": "sleep 100", "cpus": 0.1, "mem": 16, "instances": count,
           "portDefinitions": [{"port": 0}], "labels": {"HAPROXY_GROUP": "external"}, **fields}
    app = m.new_app(raw, NOW)
    m.deploy(m.with_app(app, app["version"]), NOW, force=False)
    (launch,) = [e for e in m.offers([offer("O1")], NOW) if isinstance(e, Launch)]
    task_ids = [t["task_id"]["value"] for t in launch.tasks]
    for task_id in task_ids:
        m.status({"task_id": {"value": task_id}, "agent_id": {"value": "S-h1"}, "state": "TASK_RUNNING"}, NOW)
    m.tick(NOW)
    return m.root.apps["/web"], task_ids


def kills(effects: list[Effect]) -> list[str]:
    return [e.task_id for e in effects if isinstance(e, Kill)]


def drain_events(effects: list[Effect]) -> list[dict[str, Any]]:
    return [e.event for e in effects if isinstance(e, Emit) and e.event["eventType"] == "instance_draining_event"]


def test_a_kill_behind_a_load_balancer_waits_for_its_drain_then_kills() -> None:
    m = machine()
    app, (t1, _) = running_app(m)
    m.lb_register("lb-1", {"groups": ["external"], "ttlSeconds": 15}, NOW)
    effects = m.kill_tasks(app, [t1], NOW + 1)
    instance = m.instances[t1]
    assert effects == [Emit({"eventType": "instance_draining_event", "timestamp": wire.timestamp(NOW + 1),
                             "appId": "/web", "taskId": t1, "host": "h1", "ports": instance.host_ports,
                             "ipAddresses": [], "deadline": wire.timestamp(NOW + 1 + drain.DRAIN_DEFAULT_SECONDS)})]
    assert instance.draining and instance.killing, "it counts as going away"
    assert wire.task_json(instance, app)["draining"] is True
    assert kills(m.tick(NOW + 2)) == [], "no Kill while the LB has not confirmed"
    assert m.kill_tasks(app, [t1], NOW + 3) == [], "killed again: the wait goes on, not restarted"
    assert m.lb_drained("lb-1", {"taskIds": [t1, "unknown.task"]}, NOW + 4) == [Kill(t1, "S-h1", None)]
    assert kills(m.tick(NOW + 13)) == [], "sent once (the retry waits KILL_RETRY_SECONDS from the send)"


def test_two_load_balancers_must_both_confirm() -> None:
    m = machine()
    app, (t1, _) = running_app(m, taskKillGracePeriodSeconds=30)
    m.lb_register("a", {"groups": ["external"], "ttlSeconds": 60}, NOW)
    m.lb_register("b", {"groups": ["internal", "external"], "ttlSeconds": 60}, NOW)
    m.lb_register("c", {"groups": ["internal"], "ttlSeconds": 60}, NOW)  # does not route to /web
    (event,) = drain_events(m.kill_tasks(app, [t1], NOW))
    assert event["deadline"] == wire.timestamp(NOW + 30), "taskKillGracePeriodSeconds is the deadline"
    assert m.lb_drained("a", {"taskIds": [t1]}, NOW + 1) == []
    assert m.lb_drained("c", {"taskIds": [t1]}, NOW + 1) == [], "an LB not waited on changes nothing"
    assert kills(m.tick(NOW + 2)) == []
    assert m.lb_drained("b", {"taskIds": [t1]}, NOW + 3) == [Kill(t1, "S-h1", 30.0)]


def test_the_deadline_kills_without_confirmation() -> None:
    m = machine()
    app, (t1, _) = running_app(m, taskKillGracePeriodSeconds=5)
    m.lb_register("a", {"groups": ["external"], "ttlSeconds": 600}, NOW)
    m.kill_tasks(app, [t1], NOW)
    assert kills(m.tick(NOW + 4.9)) == []
    assert kills(m.tick(NOW + 5)) == [t1]
    assert not m.lbs.drains


def test_an_lb_that_expires_or_leaves_while_draining_is_no_longer_waited_for() -> None:
    m = machine()
    app, (t1, t2) = running_app(m)
    m.lb_register("a", {"groups": ["external"], "ttlSeconds": 3}, NOW)
    m.lb_register("b", {"groups": ["*"], "ttlSeconds": 600}, NOW)
    m.kill_tasks(app, [t1, t2], NOW)
    assert m.lb_drained("b", {"taskIds": [t1]}, NOW + 1) == [], "a still has to confirm t1"
    assert kills(m.tick(NOW + 2)) == []
    assert [r["id"] for r in m.lb_list(NOW + 3)] == ["b"], "a listing forgets a (it does not hide it from the tick)"
    assert kills(m.tick(NOW + 3)) == [t1], "a expired: only b was left, and b confirmed"
    assert m.lb_unregister("b", NOW + 4) == [Kill(t2, "S-h1", None)], "b left: nobody to wait for"
    with pytest.raises(ApiError) as caught:
        m.lb_drained("a", {"taskIds": [t2]}, NOW + 4)
    assert caught.value.status == 404, "an expired LB is unknown"


def test_no_load_balancer_or_an_app_not_exposed_is_killed_at_once() -> None:
    m = machine()
    app, (t1, t2) = running_app(m)
    assert m.kill_tasks(app, [t1], NOW) == [Kill(t1, "S-h1", None)], "no LB registered"
    m.lb_register("a", {"groups": ["internal"], "ttlSeconds": 60}, NOW)
    assert m.kill_tasks(app, [t2], NOW) == [Kill(t2, "S-h1", None)], "the app is not in the LB's groups"
    m3 = machine()
    app, (t1, _) = running_app(m3, taskKillGracePeriodSeconds=0)
    m3.lb_register("a", {"groups": ["external"], "ttlSeconds": 60}, NOW)
    assert m3.kill_tasks(app, [t1], NOW) == [Kill(t1, "S-h1", None)], "taskKillGracePeriodSeconds 0: no wait"


def test_a_wipe_kill_or_a_task_not_running_is_not_drained_and_a_wipe_ends_a_drain() -> None:
    m = machine()
    app, (t1, t2) = running_app(m)
    m.lb_register("a", {"groups": ["external"], "ttlSeconds": 60}, NOW)
    assert m.kill_tasks(app, [t1], NOW, drained=False) == [Kill(t1, "S-h1", None)]
    m.status({"task_id": {"value": t2}, "agent_id": {"value": "S-h1"}, "state": "TASK_UNREACHABLE"}, NOW)
    assert kills(m.kill_tasks(app, [t2], NOW)) == [t2], "not running: nothing routes to it"
    m2 = machine()
    app, (t1, _) = running_app(m2)
    m2.lb_register("a", {"groups": ["external"], "ttlSeconds": 60}, NOW)
    assert kills(m2.kill_tasks(app, [t1], NOW)) == []
    assert m2.kill_tasks(app, [t1], NOW + 1, drained=False) == [Kill(t1, "S-h1", None)], "force ends the wait"
    assert kills(m2.tick(NOW + 10.5)) == [], "the drain is gone: no second Kill from it"


def test_a_scale_down_drains_and_the_deployment_waits_for_the_kill() -> None:
    m = machine()
    app, _ = running_app(m)
    m.lb_register("a", {"groups": ["external"], "ttlSeconds": 60}, NOW)
    smaller = {**app, "instances": 1, "version": m.version(NOW + 1)}
    plan, effects = m.deploy(m.with_app(smaller, smaller["version"]), NOW + 1, force=False)
    (event,) = drain_events(effects)
    assert kills(effects) == []
    victim = event["taskId"]
    assert plan.id in m.running, "the deployment waits for the drained instance to be killed"
    assert m.lb_drained("a", {"taskIds": [victim]}, NOW + 2) == [Kill(victim, "S-h1", None)]
    done = m.status({"task_id": {"value": victim}, "agent_id": {"value": "S-h1"}, "state": "TASK_KILLED"}, NOW + 3)
    assert any(isinstance(e, Store) for e in done)
    m.tick(NOW + 3)
    assert plan.id not in m.running and len(m.instances) == 1


def test_a_task_that_dies_while_draining_is_forgotten() -> None:
    m = machine()
    app, (t1, _) = running_app(m)
    m.lb_register("a", {"groups": ["external"], "ttlSeconds": 60}, NOW)
    m.kill_tasks(app, [t1], NOW)
    m.status({"task_id": {"value": t1}, "agent_id": {"value": "S-h1"}, "state": "TASK_FAILED"}, NOW + 1)
    assert not m.lbs.drains
    assert kills(m.tick(NOW + 11)) == []


@pytest.mark.parametrize(("body", "path"), [
    (None, "/"), ([], "/"), ({"groups": []}, "/groups"), ({"groups": ["x"], "ttlSeconds": 0}, "/ttlSeconds"),
    ({"groups": ["x"], "ttlSeconds": 3601}, "/ttlSeconds"), ({"groups": ["x"], "ttlSeconds": True}, "/ttlSeconds"),
    ({"groups": [""], "ttlSeconds": 5}, "/groups(0)"), ({"groups": ["x", 3], "ttlSeconds": 5}, "/groups(1)"),
    ({"groups": ["x"] * 101, "ttlSeconds": 5}, "/groups"), ({"groups": ["x"], "ttlSeconds": 5, "y": 1}, "/y"),
])
def test_a_bad_registration_is_422_naming_the_field_and_changes_nothing(body: Any, path: str) -> None:
    m = machine()
    m.lb_register("a", {"groups": ["g"], "ttlSeconds": 5}, NOW)
    with pytest.raises(ApiError) as caught:
        m.lb_register("a", body, NOW + 1)
    assert caught.value.status == 422
    assert path in [d["path"] for d in caught.value.body["details"]]
    assert m.lb_list(NOW + 1) == [{"id": "a", "groups": ["g"], "ttlSeconds": 5, "expiresAt": wire.timestamp(NOW + 5)}]


@pytest.mark.parametrize("lb_id", ["", "a/b", "a b", "x" * 129, "é"])
def test_a_bad_lb_id_is_422(lb_id: str) -> None:
    with pytest.raises(ApiError) as caught:
        machine().lb_register(lb_id, {"groups": ["g"], "ttlSeconds": 5}, NOW)
    assert caught.value.status == 422 and caught.value.body["details"][0]["path"] == "/id"


def test_renewal_extends_and_delete_forgets() -> None:
    m = machine()
    m.lb_register("a", {"groups": ["g"], "ttlSeconds": 5}, NOW)
    renewed = m.lb_register("a", {"groups": ["h", "h"], "ttlSeconds": 10}, NOW + 4)
    assert renewed == {"id": "a", "groups": ["h"], "ttlSeconds": 10, "expiresAt": wire.timestamp(NOW + 14)}
    assert [r["id"] for r in m.lb_list(NOW + 13)] == ["a"]
    assert m.lb_list(NOW + 14) == []
    with pytest.raises(ApiError) as caught:
        m.lb_unregister("a", NOW + 14)
    assert caught.value.status == 404


def test_port_groups_follow_marathon_lb() -> None:
    app = {"portDefinitions": [{"port": 1}, {"port": 2}],
           "labels": {"HAPROXY_GROUP": "external, internal", "HAPROXY_1_GROUP": "admin"}}
    assert drain.port_groups(app) == [{"external", "internal"}, {"admin"}]
    assert drain.exposed(app, ["admin"]) and drain.exposed(app, ["*"]) and not drain.exposed(app, ["other"])
    assert not drain.exposed({"portDefinitions": [], "labels": {"HAPROXY_GROUP": "x"}}, ["*", "x"])


def test_deleting_an_app_drains_its_instances_and_the_kill_keeps_the_grace_period() -> None:
    m = machine()
    _, (t1, t2) = running_app(m, taskKillGracePeriodSeconds=30)
    m.lb_register("a", {"groups": ["external"], "ttlSeconds": 60}, NOW)
    _, effects = m.deploy(groups.remove_app(m.root, "/web", version=m.version(NOW + 1)), NOW + 1, force=False,
                          touched=["/web"])
    assert sorted(e["taskId"] for e in drain_events(effects)) == sorted([t1, t2]) and kills(effects) == []
    assert "/web" not in m.root.apps
    confirmed = m.lb_drained("a", {"taskIds": [t1, t2]}, NOW + 2)
    assert sorted(confirmed, key=lambda k: k.task_id) == sorted([Kill(t1, "S-h1", 30.0), Kill(t2, "S-h1", 30.0)],
                                                                key=lambda k: k.task_id)


def test_a_rolling_restart_drains_old_instances_only_once_new_ones_serve() -> None:
    m = machine()
    _, old = running_app(m, upgradeStrategy={"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0})
    m.lb_register("a", {"groups": ["external"], "ttlSeconds": 600}, NOW)
    _, effects = m.restart("/web", NOW + 1, force=False)
    assert drain_events(effects) == [] and kills(effects) == [], "capacity first: the new ones start"
    (launch,) = [e for e in m.offers([offer("O2")], NOW + 2) if isinstance(e, Launch)]
    new = [t["task_id"]["value"] for t in launch.tasks]
    drained: list[str] = []
    for task_id in new:
        effects = m.status({"task_id": {"value": task_id}, "agent_id": {"value": "S-h1"}, "state": "TASK_RUNNING"},
                           NOW + 3) + m.tick(NOW + 3)
        drained += [e["taskId"] for e in drain_events(effects)]
        assert kills(effects) == []
    assert sorted(drained) == sorted(old), "each old one drained as a new one serves"
    running = [i for i in m.instances.values() if i.running]
    assert len(running) == 4, "drained instances still run (and serve) until their LBs confirm"
    assert {i.task_id for i in running if i.draining} == set(old)
    assert "draining" not in wire.task_json(m.instances[new[0]], m.root.apps["/web"]), "absent unless true"
    assert sorted(kills(m.lb_drained("a", {"taskIds": old}, NOW + 4))) == sorted(old)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                max_size=4), max_leaves=15)


@settings(max_examples=300, deadline=None)
@given(body=JSON | st.fixed_dictionaries({"groups": JSON, "ttlSeconds": JSON}), lb_id=st.text(max_size=140),
       drained=JSON | st.fixed_dictionaries({"taskIds": JSON}))
def test_fuzzed_calls_are_answered_or_refused_with_422_and_a_refusal_changes_nothing(
        body: Any, lb_id: str, drained: Any) -> None:
    m = machine()
    for call in (lambda: m.lb_register(lb_id, body, NOW), lambda: m.lb_drained(lb_id, drained, NOW),
                 lambda: m.lb_unregister(lb_id, NOW)):
        before = dict(m.lbs.registrations)
        try:
            call()
        except ApiError as refused:
            assert refused.status in (404, 422) and m.lbs.registrations == before
            if refused.status == 422:
                assert refused.body["details"][0]["path"].startswith("/")


def test_a_new_leader_has_no_registrations_and_no_draining_instance() -> None:
    m = machine()
    app, (t1, _) = running_app(m)
    m.lb_register("a", {"groups": ["external"], "ttlSeconds": 60}, NOW)
    m.kill_tasks(app, [t1], NOW)
    stored = {"app": {"/web": app}, "instance": {t: codec.instance_json(i) for t, i in m.instances.items()}}
    assert stored["instance"][t1]["draining"] is True
    successor = machine()
    successor.restore(stored, NOW + 1)
    assert not successor.lbs.registrations and not successor.lbs.drains
    assert not successor.instances[t1].draining
    assert kills(successor.tick(NOW + 1)) == [t1], "stored as killing: the kill is sent (LBs re-register later)"



def test_a_forced_kill_and_scale_skips_the_drain_of_the_named_tasks_only() -> None:
    m = machine()
    app, (t1, t2, _) = running_app(m, 3)
    m.lb_register("a", {"groups": ["external"], "ttlSeconds": 60}, NOW)
    m.undrained.add(t1)  # what DELETE .../tasks?scale=true&force=true marks before its deployment
    effects = m.kill_tasks(app, [t1, t2], NOW)
    assert kills(effects) == [t1] and [e["taskId"] for e in drain_events(effects)] == [t2]
    assert set(m.lbs.drains) == {t2} and not m.undrained
