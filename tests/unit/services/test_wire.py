"""The Marathon JSON shapes: timestamps, AppInfo, tasks, groups, deployments, queue, info and errors."""

from __future__ import annotations

from typing import Any

import pytest

from meseta.services import wire
from meseta.services.deploy.groups import Group, RootGroup
from meseta.services.model import App, Instance
from meseta.services.spec.app_definition import assign_service_ports, normalise

V1 = "2026-01-01T00:00:00.000Z"
T0 = 1767225600.0  # 2026-01-01T00:00:00Z


def app_of(raw: dict[str, Any]) -> App:
    app, problems = normalise(raw, now_version=V1)
    assert app is not None, problems
    return assign_service_ports(app, set())


def instance(n: int, state: str = "TASK_RUNNING", **fields: Any) -> Instance:
    base: dict[str, Any] = {"task_id": f"web.uuid-{n}", "app_id": "/web", "version": V1, "agent_id": "agent-1",
                            "host": "host-1", "state": state, "staged_at": T0 + n,
                            "started_at": T0 + n + 1 if state == "TASK_RUNNING" else None}
    return Instance(**(base | fields))


@pytest.mark.parametrize(("epoch", "text"), [
    (0.0, "1970-01-01T00:00:00.000Z"),
    (T0, "2026-01-01T00:00:00.000Z"),
    (T0 + 0.1234, "2026-01-01T00:00:00.123Z"),
    (T0 + 59.9996, "2026-01-01T00:01:00.000Z"),
    (1e9 + 0.5, "2001-09-09T01:46:40.500Z"),
])
def test_timestamps(epoch: float, text: str) -> None:
    assert wire.timestamp(epoch) == text
    assert wire.parse_timestamp(text) == pytest.approx(round(epoch, 3))


def test_parse_timestamp_forms() -> None:
    assert wire.parse_timestamp("2026-01-01T00:00:00Z") == T0
    assert wire.parse_timestamp("2026-01-01T00:00:00+00:00") is None
    assert wire.parse_timestamp("yesterday") is None
    assert wire.timestamp(T0) < wire.timestamp(T0 + 0.001) < wire.timestamp(T0 + 10), "timestamps sort as text"


def test_embed_names() -> None:
    assert wire.embed_names(["apps.tasks", "app.counts", "lastTaskFailure", "group.apps.taskStats"]) == {
        "tasks", "counts", "lastTaskFailure", "taskStats"}
    assert wire.embed_names(["apps.failures"]) == {"tasks", "lastTaskFailure", "deployments"}


def test_app_json_counts_and_embeds() -> None:
    app = app_of({"id": "/web", "cmd": "x", "instances": 4, "healthChecks": [{"protocol": "TCP"}]})
    tasks = [instance(1, healthy=True), instance(2, healthy=False), instance(3, "TASK_STAGING"),
             instance(4, "TASK_STARTING"), instance(5, "TASK_FAILED")]
    plain = wire.app_json(app, instances=tasks, deployments=["d1"])
    assert (plain["tasksRunning"], plain["tasksStaged"], plain["tasksHealthy"], plain["tasksUnhealthy"]) == (
        2, 2, 1, 1)
    assert plain["deployments"] == [{"id": "d1"}]
    assert not {"tasks", "lastTaskFailure", "taskStats", "readinessCheckResults"} & set(plain)
    failure = wire.task_failure_json(tasks[4], at=T0 + 9)
    full = wire.app_json(app, instances=tasks, deployments=[], last_failure=failure, now=T0 + 11,
                         embed={"tasks", "lastTaskFailure", "taskStats", "readiness"})
    assert [t["id"] for t in full["tasks"]] == ["web.uuid-1", "web.uuid-2", "web.uuid-3", "web.uuid-4"]
    assert full["lastTaskFailure"]["timestamp"] == "2026-01-01T00:00:09.000Z"
    assert full["readinessCheckResults"] == []
    total = full["taskStats"]["totalSummary"]["stats"]
    assert total["counts"] == {"staged": 2, "running": 2, "healthy": 1, "unhealthy": 1}
    assert total["lifeTime"] == {"averageSeconds": 8.5, "medianSeconds": 8.5}
    assert "withOutdatedConfig" not in full["taskStats"]


def test_counts_without_health_checks_report_no_healthy_tasks() -> None:
    app = app_of({"id": "/web", "cmd": "x"})
    counts = wire.app_counts(app, [instance(1, healthy=True)])
    assert counts == {"tasksStaged": 0, "tasksRunning": 1, "tasksHealthy": 0, "tasksUnhealthy": 0}


def test_app_definition_json_drops_what_the_client_rejects() -> None:
    app = app_of({"id": "/web", "networks": [{"mode": "container", "name": "n1"}], "container": {
        "type": "MESOS", "docker": {"image": "x"}, "portMappings": [{"containerPort": 80, "networkNames": ["n1"]}]}})
    rendered = wire.app_definition_json(app | {"tty": True, "resourceLimits": {}})
    assert "tty" not in rendered and "resourceLimits" not in rendered and "portDefinitions" not in rendered
    assert rendered["container"]["portMappings"] == [{"containerPort": 80, "servicePort": 10000, "protocol": "tcp"}]
    host = wire.app_definition_json(app_of({"id": "/h", "cmd": "x", "container": {"type": "MESOS"}}))
    assert "portMappings" not in host["container"] and host["portDefinitions"][0]["port"] == 10000


def test_task_json() -> None:
    app = app_of({"id": "/web", "cmd": "x", "ports": [0, 0], "role": "web"})
    staging = wire.task_json(instance(1, "TASK_STAGING", host_ports=[31000, 31001],
                                      agent_fields={"@region": "eu", "@zone": "a"},
                                      ip_addresses=[{"ipAddress": "10.0.0.1", "protocol": "IPv4", "networkName": "n"}]),
                             app)
    assert staging == {"id": "web.uuid-1", "appId": "/web", "host": "host-1", "slaveId": "agent-1",
                       "state": "TASK_STAGING", "stagedAt": "2026-01-01T00:00:01.000Z", "version": V1,
                       "ports": [31000, 31001], "servicePorts": [10000, 10001],
                       "ipAddresses": [{"ipAddress": "10.0.0.1", "protocol": "IPv4"}], "region": "eu", "zone": "a",
                       "role": "web"}
    running = wire.task_json(instance(2), app)
    assert running["startedAt"] == "2026-01-01T00:00:03.000Z" and "healthCheckResults" not in running


def test_health_check_results() -> None:
    app = app_of({"id": "/web", "cmd": "x", "healthChecks": [{}]})
    assert wire.task_json(instance(1), app)["healthCheckResults"] == []
    assert wire.task_json(instance(1, healthy=False), app)["healthCheckResults"] == [
        {"alive": False, "consecutiveFailures": 0, "taskId": "web.uuid-1", "instanceId": "web.uuid-1"}]
    result = wire.HealthResult(alive=True, first_success=T0, last_success=T0 + 60, last_failure=T0 - 5,
                               last_failure_cause="connection refused", consecutive_failures=0)
    (rendered,) = wire.task_json(instance(1), app, health=[result])["healthCheckResults"]
    assert rendered["firstSuccess"] == V1 and rendered["lastFailureCause"] == "connection refused"


def test_tree_json_builds_implied_groups() -> None:
    apps = {i: app_of({"id": i, "cmd": "x"}) for i in ("/top", "/prod/web/frontend", "/prod/db")}
    root = RootGroup(apps, {"/prod": Group("/prod", ("/infra",), "v-prod"), "/empty": Group("/empty", (), V1)}, V1)
    tree = wire.tree_json(root)
    assert tree is not None
    assert [a["id"] for a in tree["apps"]] == ["/top"]
    assert [g["id"] for g in tree["groups"]] == ["/empty", "/prod"]
    prod = tree["groups"][1]
    assert (prod["dependencies"], prod["version"], prod["pods"]) == (["/infra"], "v-prod", [])
    assert [a["id"] for a in prod["apps"]] == ["/prod/db"]
    assert prod["groups"][0]["id"] == "/prod/web" and prod["groups"][0]["apps"][0]["id"] == "/prod/web/frontend"
    assert wire.tree_json(root, "/prod/web") == prod["groups"][0]
    assert wire.tree_json(root, "/nope") is None
    assert wire.plan_group_json(RootGroup(version=V1)) == {"id": "/", "apps": [], "groups": [], "dependencies": [],
                                            "version": V1, "pods": []}


def test_deployment_json() -> None:
    steps = [[("StartApplication", "/a")], [("ScaleApplication", "/a"), ("RestartApplication", "/b")]]
    ready = wire.readiness_result_json("readinessCheck", "a.uuid", False, (503, "text/plain", "warming up"))
    body = wire.deployment_json("d1", V1, steps, current_step=2, readiness={"/a": [ready]})
    assert body["affectedApps"] == ["/a", "/b"] and body["affectedPods"] == []
    assert body["steps"][1] == {"actions": [{"action": "ScaleApplication", "app": "/a"},
                                            {"action": "RestartApplication", "app": "/b"}]}
    assert body["currentActions"] == [
        {"action": "ScaleApplication", "app": "/a", "readinessCheckResults": [ready]},
        {"action": "RestartApplication", "app": "/b", "readinessCheckResults": []}]
    assert (body["currentStep"], body["totalSteps"]) == (2, 2)
    assert wire.deployment_json("d1", V1, steps, current_step=0)["currentActions"] == []
    assert wire.deployment_result("d1", V1) == {"deploymentId": "d1", "version": V1}


def test_queue_item() -> None:
    app = app_of({"id": "/web", "cmd": "x"})
    summary = {"processedOffersCount": 5, "unusedOffersCount": 5, "lastUnusedOfferAt": "2026-01-01T00:00:01.000Z",
               "rejectSummaryLastOffers": [], "rejectSummaryLaunchAttempt": []}
    item = wire.queue_item_json(app, count=3, time_left_seconds=2.2, overdue=False, since=T0, summary=summary)
    assert item["delay"] == {"timeLeftSeconds": 3, "overdue": False} and item["since"] == V1
    assert item["processedOffersSummary"] == summary and "lastUnusedOffers" not in item
    assert "role" not in item and "tasksRunning" not in item["app"]
    empty = wire.queue_item_json(app, count=1, time_left_seconds=0, overdue=True, since=T0)
    assert empty["processedOffersSummary"]["processedOffersCount"] == 0


def test_info_json_whitelists_config_keys() -> None:
    info = wire.info_json(version="1.10.19", leader="h:8080", elected=True, framework_id="f1",
                          marathon_config={"master": "zk://x", "mystery_flag": 1}, zookeeper_config={},
                          http_config={"http_port": 8080, "admin_port": 1})
    assert info["marathon_config"] == {"master": "zk://x"} and info["http_config"] == {"http_port": 8080}
    assert info["zookeeper_config"] == {} and "event_subscriber" not in info


def test_error_bodies() -> None:
    problems = [("/id", "a"), ("/cpus", "b"), ("/id", "c"), ("/id", "a")]
    assert wire.invalid_body(problems) == {"message": "Object is not valid", "details": [
        {"path": "/id", "errors": ["a", "c"]}, {"path": "/cpus", "errors": ["b"]}]}
    assert wire.error_body("App '/x' does not exist") == {"message": "App '/x' does not exist"}
    locked = wire.locked_body(["d1", "d2"])
    assert locked["message"].endswith("View details at '/v2/deployments/d1'.")
    assert locked["deployments"] == [{"id": "d1"}, {"id": "d2"}]
