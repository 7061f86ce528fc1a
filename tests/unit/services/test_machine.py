"""The services machine as a whole (pure): deploy, tick, offers, status updates -> effects."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from meseta.services import codec, wire
from meseta.services.deploy import groups
from meseta.services.deploy.groups import RootGroup
from meseta.services.deploy.readiness import Answer
from meseta.services.effects import Decline, Effect, Kill, Launch, Revive, Store, Suppress
from meseta.services.machine import ApiError, ServicesMachine
from meseta.services.model import App
from meseta.services.spec import app_ports

NOW = 1_800_000_000.0


def machine(**fields: Any) -> ServicesMachine:
    counter = itertools.count()
    return ServicesMachine(new_uuid=lambda: f"u{next(counter)}", **fields)


def offer(oid: str, host: str = "h1", cpus: float = 4.0, mem: float = 4096.0) -> dict[str, Any]:
    def scalar(name: str, value: float) -> dict[str, Any]:
        return {"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": "*"}

    return {"id": {"value": oid}, "agent_id": {"value": "S-" + host}, "hostname": host,
            "allocation_info": {"role": "*"},
            "resources": [scalar("cpus", cpus), scalar("mem", mem),
                          {"name": "ports", "type": "RANGES", "role": "*",
                           "ranges": {"range": [{"begin": 31000, "end": 31099}]}}]}


def post(m: ServicesMachine, now: float = NOW, **fields: Any) -> tuple[App, list[Effect]]:
    raw = {"cmd": "sleep 100", "cpus": 0.1, "mem": 16, "instances": 1, "portDefinitions": [], **fields}
    app = m.new_app(raw, now)
    _, effects = m.deploy(m.with_app(app, app["version"]), now, force=False)
    return app, effects


def launches(effects: list[Effect]) -> list[Launch]:
    return [e for e in effects if isinstance(e, Launch)]


def running(m: ServicesMachine, task_id: str, now: float = NOW) -> list[Effect]:
    instance = m.instances[task_id]
    return m.status({"task_id": {"value": task_id}, "agent_id": {"value": instance.agent_id},
                     "state": "TASK_RUNNING"}, now)


def test_one_offer_serves_several_apps_up_to_max_per_offer() -> None:
    m = machine(max_per_offer=5)
    for name in ("a", "b", "c"):
        post(m, id=f"/{name}", instances=2)
    assert m.queue == {"/a": 2, "/b": 2, "/c": 2}
    effects = m.offers([offer("O1")], NOW)
    (launch,) = launches(effects)
    apps = [t["task_id"]["value"].split(".")[0] for t in launch.tasks]
    assert apps == ["a", "a", "b", "b", "c"], "filled in queue order, five in all"
    assert launch.refuse_seconds == 0, "what is left of the offer comes back at the next allocation"
    assert isinstance(effects[0], Store) and len(effects[0].changes) == 5, "stored before the launch"
    assert m.queue == {"/c": 1}, "the queue keeps no empty entries"


def test_an_offer_is_shared_only_as_far_as_its_resources_go() -> None:
    m = machine(max_per_offer=10)
    post(m, id="/big", cpus=1.5)
    post(m, id="/small", cpus=1.0, instances=3)
    (launch,) = launches(m.offers([offer("O1", cpus=4.0)], NOW))
    cpus = [next(r["scalar"]["value"] for r in t["resources"] if r["name"] == "cpus") for t in launch.tasks]
    assert cpus == [1.5, 1.0, 1.0], "the third small one does not fit in the 0.5 cpus left"
    assert m.queue == {"/small": 1}
    assert m.stats["/small"].reason_counts() == {}, "the offer was used by it: no decline to count"


def test_nothing_queued_declines_for_long_and_suppresses() -> None:
    m = machine()
    post(m, id="/web")
    (launch,) = launches(m.offers([offer("O1")], NOW))
    assert not m.queue
    effects = m.offers([offer("O2")], NOW)
    assert effects == [Decline(("O2",), 120.0)]
    assert Suppress() in m.tick(NOW)
    task_id = launch.tasks[0]["task_id"]["value"]
    running(m, task_id)
    m.status({"task_id": {"value": task_id}, "state": "TASK_FAILED"}, NOW + 1)
    assert Revive() in m.tick(NOW + 1, full=False), "a replacement is wanted: offers again"
    assert m.queue == {"/web": 1}


def test_a_partial_tick_keeps_only_the_apps_that_moved() -> None:
    m = machine()
    post(m, id="/a")
    post(m, id="/b")
    (launch,) = launches(m.offers([offer("O1")], NOW))
    ids = {t["task_id"]["value"].split(".")[0]: t["task_id"]["value"] for t in launch.tasks}
    for task_id in ids.values():
        running(m, task_id)
    m.tick(NOW)
    assert not m.running and not m.queue and not m.dirty
    m.status({"task_id": {"value": ids["a"]}, "state": "TASK_FAILED"}, NOW + 1)
    assert m.dirty == {"/a"}
    m.tick(NOW + 1, full=False)
    assert m.queue == {"/a": 1} and not m.dirty
    m.by_app["/b"].clear()  # lost without an update reaching the machine: only a full tick sees it
    m.tick(NOW + 2, full=False)
    assert m.queue == {"/a": 1}
    m.tick(NOW + 3)
    assert m.queue == {"/a": 1, "/b": 1}


def test_service_ports_are_assigned_and_checked_against_the_other_apps() -> None:
    m = machine()
    post(m, id="/a", portDefinitions=[{"port": 0}, {"port": 0}])
    assert [p["port"] for p in m.root.apps["/a"]["portDefinitions"]] == [10000, 10001]
    post(m, id="/b", portDefinitions=[{"port": 0}])
    assert m.root.apps["/b"]["portDefinitions"][0]["port"] == 10002
    with pytest.raises(ApiError) as refused:
        post(m, id="/c", portDefinitions=[{"port": 10001}])
    assert refused.value.status == 422
    assert "conflicts with a service port in use by app /a" in str(refused.value.body)
    assert "/c" not in m.root.apps and m.service_ports == {10000: "/a", 10001: "/a", 10002: "/b"}
    gone = {k: v for k, v in m.root.apps.items() if k != "/a"}
    m.deploy(RootGroup(gone, m.root.groups, m.version(NOW)), NOW, force=True)
    assert m.service_ports == {10002: "/b"}, "a removed app frees its ports"
    post(m, id="/c", portDefinitions=[{"port": 10001}])
    assert m.service_ports[10001] == "/c"


def test_many_apps_in_one_request_share_one_version() -> None:
    m = machine()
    version = m.version(NOW)
    apps = [m.new_app({"id": f"/a{i}", "cmd": "x"}, NOW, version=version) for i in range(3)]
    assert {a["version"] for a in apps} == {version}
    assert m.version(NOW) > version, "the next request still gets a later one"


def test_instance_records_round_trip_and_match_every_field() -> None:
    m = machine()
    post(m, id="/web", portDefinitions=[{"port": 0}])
    (launch,) = launches(m.offers([offer("O1")], NOW))
    instance = m.instances[launch.tasks[0]["task_id"]["value"]]
    stored = codec.instance_json(instance)
    assert stored == dataclasses.asdict(instance)
    assert stored["host_ports"] is not instance.host_ports, "the record is a copy"
    assert codec.instance_from_json(stored) == instance


def test_revives_are_rate_limited_and_the_held_one_goes_out_later() -> None:
    m = machine(min_revive_interval=5.0)
    m.registered("F1", NOW)
    _, effects = post(m, id="/a")
    assert Revive() in effects, "the first launch wanted revives at once"
    launches(m.offers([offer("O1"), offer("O2", host="h2")], NOW + 0.1))
    assert Suppress() in m.tick(NOW + 0.2), "nothing more wanted"
    _, effects = post(m, NOW + 1, id="/b")
    _, more = post(m, NOW + 2, id="/c")
    assert Revive() not in effects + more, "held back: within 5 s of the last REVIVE"
    assert Revive() not in m.tick(NOW + 4.9)
    assert m.tick(NOW + 5.1).count(Revive()) == 1, "one REVIVE for both"
    (launch,) = launches(m.offers([offer("O3")], NOW + 5.2))
    assert len(launch.tasks) == 2
    m.registered("F1", NOW + 5.3)
    _, effects = post(m, NOW + 5.4, id="/d")
    assert Revive() in effects, "a new subscription starts afresh"


READY_APP: dict[str, Any] = {
    "id": "/ready", "instances": 2,
    "portDefinitions": [{"port": 0, "name": "admin"}, {"port": 0, "name": "http-api"}],
    "readinessChecks": [{"path": "/ready", "intervalSeconds": 2, "timeoutSeconds": 1,
                         "httpStatusCodesForReady": [200, 204], "preserveLastResponse": True}]}


def test_a_step_waits_for_the_readiness_of_the_instances_it_started() -> None:
    m = machine()
    post(m, **READY_APP)
    (launch,) = launches(m.offers([offer("O1")], NOW))
    task_ids = [t["task_id"]["value"] for t in launch.tasks]
    assert m.readiness_probes() == [], "not running yet: nothing to probe"
    for task_id in task_ids:
        running(m, task_id)
    probes = {p.task_id: p for p in m.readiness_probes()}
    assert set(probes) == set(task_ids)
    probe = probes[task_ids[0]]
    port = m.instances[task_ids[0]].host_ports[1]
    assert probe.url == f"http://h1:{port}/ready", "the host port of the port named http-api"
    assert (probe.interval, probe.timeout, probe.ready_codes) == (2.0, 1.0, frozenset({200, 204}))

    assert m.readiness_answer(probe, Answer(503, "text/plain", "warming up"), NOW + 1) == []
    assert m.readiness_of("/ready") == [{"name": "readinessCheck", "taskId": task_ids[0], "ready": False,
                                         "lastResponse": {"status": 503, "contentType": "text/plain",
                                                          "body": "warming up"}}]
    m.tick(NOW + 1)
    assert m.running, "the deployment waits for readiness"
    for task_id in task_ids:
        effects = m.readiness_answer(probes[task_id], Answer(204), NOW + 2)
        assert isinstance(effects[0], Store) and effects[0].changes[0][2]["ready"] is True, "stored ready"
    assert m.readiness_probes() == [], "ready instances are not probed again"
    m.tick(NOW + 2)
    assert not m.running, "all ready: the deployment is done"
    assert m.readiness_of("/ready") == [], "results go with the deployment"


def test_readiness_reaches_bridge_instances_by_their_mapped_host_port() -> None:
    m = machine()
    post(m, id="/bridged", networks=[{"mode": "container/bridge"}], portDefinitions=None,
         container={"type": "MESOS", "docker": {"image": "busybox"},
                    "portMappings": [{"containerPort": 80, "hostPort": 0, "name": "http-api"}]},
         readinessChecks=[{"protocol": "HTTPS"}])
    (launch,) = launches(m.offers([offer("O1")], NOW))
    task_id = launch.tasks[0]["task_id"]["value"]
    running(m, task_id)
    (probe,) = m.readiness_probes()
    assert probe.url == f"https://h1:{m.instances[task_id].host_ports[0]}/"


def test_an_update_that_changes_nothing_is_neither_stored_nor_told() -> None:
    m = machine()
    post(m, id="/web")
    (launch,) = launches(m.offers([offer("O1")], NOW))
    task_id = launch.tasks[0]["task_id"]["value"]
    assert any(isinstance(e, Store) for e in running(m, task_id, NOW + 1))
    assert running(m, task_id, NOW + 2) == [], "a reconciliation answer: TASK_RUNNING again"
    assert m.instances[task_id].started_at == NOW + 1
    lost = {"task_id": {"value": task_id}, "state": "TASK_UNREACHABLE"}
    assert m.status(lost, NOW + 3)
    assert m.status(lost, NOW + 9) == []
    assert m.instances[task_id].unreachable_since == NOW + 3, "repeated: the instance is unreachable since the first"


def test_health_changes_are_dated_in_the_tasks_health_check_results() -> None:
    m = machine()
    app, _ = post(m, id="/web", healthChecks=[{"protocol": "MESOS_HTTP", "path": "/", "portIndex": 0}],
                  portDefinitions=[{"port": 0}])
    (launch,) = launches(m.offers([offer("O1")], NOW))
    task_id = launch.tasks[0]["task_id"]["value"]

    def report(healthy: bool, at: float, message: str = "") -> None:
        m.status({"task_id": {"value": task_id}, "state": "TASK_RUNNING", "healthy": healthy, "message": message}, at)

    report(True, NOW + 1)
    report(False, NOW + 5, "HTTP health check failed: 500")
    (result,) = wire.task_json(m.instances[task_id], m.root.apps["/web"])["healthCheckResults"]
    assert result == {"alive": False, "consecutiveFailures": 1, "firstSuccess": wire.timestamp(NOW + 1),
                      "lastSuccess": wire.timestamp(NOW + 1), "lastFailure": wire.timestamp(NOW + 5),
                      "lastFailureCause": "HTTP health check failed: 500", "taskId": task_id, "instanceId": task_id}
    report(True, NOW + 7)
    (result,) = wire.task_json(m.instances[task_id], app)["healthCheckResults"]
    assert (result["alive"], result["consecutiveFailures"], result["lastSuccess"]) == (True, 0, wire.timestamp(NOW + 7))
    assert result["firstSuccess"] == wire.timestamp(NOW + 1)


def test_unreachable_instances_are_replaced_after_inactive_and_forgotten_after_expunge() -> None:
    m = machine()
    post(m, id="/web", unreachableStrategy={"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120})
    (launch,) = launches(m.offers([offer("O1")], NOW))
    task_id = launch.tasks[0]["task_id"]["value"]
    running(m, task_id)
    m.tick(NOW)
    assert not m.running and not m.queue
    m.status({"task_id": {"value": task_id}, "state": "TASK_UNREACHABLE"}, NOW + 10)
    m.tick(NOW + 30)
    assert not m.queue, "unreachable for 20 s of 60: still counted"
    m.tick(NOW + 71)
    assert m.queue == {"/web": 1}, "inactive: a replacement is queued"
    assert task_id in m.instances
    effects = m.tick(NOW + 131)
    assert task_id not in m.instances and Store((("instance", task_id, None),)) in effects, "expunged"
    back = m.status({"task_id": {"value": task_id}, "agent_id": {"value": "S-h1"}, "state": "TASK_RUNNING"}, NOW + 140)
    assert back == [Kill(task_id, "S-h1")], "an expunged instance that reports again is killed"


def test_a_disabled_unreachable_strategy_waits_for_the_instance() -> None:
    m = machine()
    post(m, id="/db", unreachableStrategy="disabled")
    (launch,) = launches(m.offers([offer("O1")], NOW))
    task_id = launch.tasks[0]["task_id"]["value"]
    running(m, task_id)
    m.status({"task_id": {"value": task_id}, "state": "TASK_UNREACHABLE"}, NOW + 1)
    m.tick(NOW + 100_000)
    assert not m.queue and task_id in m.instances


def test_an_app_keeps_its_newest_fifty_versions() -> None:
    m = machine()
    app, _ = post(m, id="/web")
    first = app["version"]
    for n in range(2, 56):
        scaled = m.new_app({**m.root.apps["/web"], "instances": n}, NOW + n)
        _, effects = m.deploy(m.with_app(scaled, scaled["version"]), NOW + n, force=True)
    versions = m.versions["/web"]
    assert len(versions) == 50 and first not in versions and m.root.apps["/web"]["version"] in versions
    (store,) = [e for e in effects if isinstance(e, Store) and any(c[0] == "app_version" for c in e.changes)][:1]
    assert ("app_version", f"/web@{min(versions)}", None) not in store.changes
    assert any(kind == "app_version" and value is None for kind, _, value in store.changes), "the oldest deleted"


def test_ports_assigned_together_never_clash_within_one_request() -> None:
    m = machine()
    post(m, id="/h/y", portDefinitions=[{"port": 0}])
    post(m, id="/g/x", portDefinitions=[{"port": 0}])
    assert m.service_ports == {10000: "/h/y", 10001: "/g/x"}
    # a group change adding /g/a (port 0) and resending /g/x with port 0: /g/x keeps 10001
    new_a = m.new_app({"id": "/g/a", "cmd": "x", "portDefinitions": [{"port": 0}]}, NOW, assign_ports=False)
    resent = m.new_app({"id": "/g/x", "cmd": "y", "portDefinitions": [{"port": 0}]}, NOW, assign_ports=False)
    target = m.with_service_ports(RootGroup({**m.root.apps, "/g/a": new_a, "/g/x": resent}, m.root.groups, "v"))
    assert app_ports.service_ports(target.apps["/g/x"]) == [10001], "an update keeps its port"
    assert app_ports.service_ports(target.apps["/g/a"]) == [10002]
    # an automatic port never takes one another app of the same request asks for explicitly
    auto = m.new_app({"id": "/g/b", "cmd": "x", "portDefinitions": [{"port": 0}]}, NOW, assign_ports=False)
    fixed = m.new_app({"id": "/g/c", "cmd": "x", "portDefinitions": [{"port": 10002}]}, NOW, assign_ports=False)
    both = m.with_service_ports(RootGroup({**m.root.apps, "/g/b": auto, "/g/c": fixed}, m.root.groups, "v"))
    assert app_ports.service_ports(both.apps["/g/b"]) == [10002 + 1]
    m.deploy(both, NOW, force=False)  # and the deployment accepts it: no conflict
    assert m.service_ports[10003] == "/g/b" and m.service_ports[10002] == "/g/c"


def test_a_kill_without_an_answer_is_sent_again() -> None:
    m = machine()
    post(m, id="/web", instances=2, taskKillGracePeriodSeconds=3)
    (launch,) = launches(m.offers([offer("O1")], NOW))
    for task in launch.tasks:
        running(m, task["task_id"]["value"])
    m.tick(NOW)
    scaled = m.new_app({**m.root.apps["/web"], "instances": 1}, NOW + 1)
    _, effects = m.deploy(m.with_app(scaled, scaled["version"]), NOW + 1, force=False)
    (kill,) = [e for e in effects if isinstance(e, Kill)]
    assert kill.grace_seconds == 3.0
    assert not [e for e in m.tick(NOW + 5) if isinstance(e, Kill)], "not yet: 4 s"
    again = [e for e in m.tick(NOW + 12) if isinstance(e, Kill)]
    assert again == [kill], "10 s without TASK_KILLED: the same kill once more"
    assert not [e for e in m.tick(NOW + 13) if isinstance(e, Kill)]


@pytest.mark.parametrize("hinted", [False, True])
def test_a_change_named_by_its_app_is_checked_like_a_whole_root(hinted: bool) -> None:
    """deploy(touched=[id]) costs the change only, and refuses what the full comparison refuses."""
    m = machine()

    def deploy(**fields: Any) -> Any:
        app = m.new_app({"cmd": "x", "portDefinitions": [], **fields}, NOW)
        return m.deploy(m.with_app(app, app["version"]), NOW, force=True,
                        touched=[app["id"]] if hinted else None)

    deploy(id="/a")
    deploy(id="/g/x")
    deploy(id="/b", dependencies=["/c"])
    for clash in ("/a/b", "/g"):
        with pytest.raises(ApiError) as refused:
            deploy(id=clash)
        assert refused.value.status == 422 and "same identifier" in str(refused.value.body), clash
    with pytest.raises(ApiError) as cycle:
        deploy(id="/c", dependencies=["/b"])
    assert "cyclic" in str(cycle.value.body)
    plan, _ = deploy(id="/c")
    assert [[(a.kind.value, a.app_id) for a in step] for step in plan.steps] == [
        [("StartApplication", "/c")], [("ScaleApplication", "/c")]]
    assert m.dependents == {"/b"} and {"/", "/g"} <= m.group_ids
    app = m.root.apps["/b"]
    m.deploy(groups.remove_app(m.root, "/b", version=m.version(NOW)), NOW, force=True,
             touched=["/b"] if hinted else None)
    assert "/b" not in m.root.apps and m.dependents == set() and app["id"] not in m.service_ports.values()


def test_a_preview_plans_like_deploy_refuses_like_it_and_changes_nothing() -> None:
    """PUT /v2/groups?dryRun=true: the steps deploy would take, and no state moves."""
    m = machine()
    post(m, id="/g/db")
    version = m.version(NOW + 1)
    web = m.new_app({"id": "/g/web", "cmd": "x", "dependencies": ["/g/db"], "portDefinitions": []}, NOW + 1)
    target = groups.put_app(groups.put_app(m.root, {**m.root.apps["/g/db"], "cmd": "y"}, version=version), web,
                            version=version)
    before = (m.root, dict(m.running), set(m.group_ids), {k: dict(v) for k, v in m.versions.items()}, dict(m.queue))
    steps = [[(a.kind.value, a.app_id) for a in step] for step in m.preview(target).steps]
    assert before == (m.root, dict(m.running), set(m.group_ids), {k: dict(v) for k, v in m.versions.items()},
                      dict(m.queue)), "nothing changed"
    plan, _ = m.deploy(target, NOW + 1, force=True)
    assert steps == [[(a.kind.value, a.app_id) for a in step] for step in plan.steps]
    assert steps[-2:] == [[("RestartApplication", "/g/db")], [("ScaleApplication", "/g/web")]]
    cyclic = groups.put_app(m.root, {**m.root.apps["/g/db"], "dependencies": ["/g/web"]}, version=m.version(NOW + 2))
    with pytest.raises(ApiError) as refused:
        m.preview(cyclic)
    assert refused.value.status == 422 and "cyclic" in str(refused.value.body)


def test_a_failed_task_is_the_apps_last_failure_and_a_locked_app_is_409() -> None:
    """Both bodies come from services.wire, whose shapes the client contract tests pin."""
    m = machine()
    post(m, id="/web")
    (plan_id,) = m.running
    with pytest.raises(ApiError) as locked:
        post(m, NOW + 1, id="/web", cmd="sleep 101")
    assert locked.value.status == 409 and locked.value.body == wire.locked_body([plan_id])
    assert locked.value.body["deployments"] == [{"id": plan_id}] and "?force=true" in locked.value.body["message"]
    (launch,) = launches(m.offers([offer("O1")], NOW))
    task_id = launch.tasks[0]["task_id"]["value"]
    running(m, task_id)
    m.status({"task_id": {"value": task_id}, "state": "TASK_FAILED", "message": "exit 1"}, NOW + 2)
    assert m.last_failure["/web"] == {
        "appId": "/web", "host": "h1", "message": "exit 1", "taskId": task_id, "instanceId": task_id,
        "slaveId": "S-h1", "state": "TASK_FAILED", "timestamp": wire.timestamp(NOW + 2),
        "version": m.root.apps["/web"]["version"]}
