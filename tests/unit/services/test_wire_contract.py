"""Contract: everything services renders parses with the real marathon==0.13.0 client models.

The client builds each model with ``Model(**snake_cased_json)``: one key it does not know, one
timestamp in another format, or an invalid id raises. Also the way back: what the client's
``to_json()`` sends for a complex app normalises without problems.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from meseta.services import wire
from meseta.services.deploy.groups import Group, RootGroup
from meseta.services.launch.launch_stats import LaunchStats
from meseta.services.model import App, Instance
from meseta.services.spec.app_definition import assign_service_ports, normalise

marathon = pytest.importorskip("marathon")
from marathon.models import (  # noqa: E402
    MarathonApp,
    MarathonDeployment,
    MarathonGroup,
    MarathonInfo,
    MarathonQueueItem,
    MarathonTask,
)
from marathon.models.deployment import MarathonDeploymentPlan  # noqa: E402
from marathon.models.task import MarathonHealthCheckResult  # noqa: E402

V1 = "2026-01-01T00:00:00.000Z"
T0 = 1767225600.0
UTC = datetime.UTC
# the client warns whenever a COMMAND health check arrives as {"value": ...}, as real Marathon sends it
pytestmark = pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")

COMPLEX_APPS: dict[str, dict[str, Any]] = {
    "plain": {"id": "/plain", "cmd": "sleep 100"},
    "docker-bridge": {
        "id": "/prod/web", "instances": 3, "cpus": 0.5, "mem": 256, "labels": {"HAPROXY_GROUP": "external"},
        "container": {"type": "DOCKER", "docker": {"image": "nginx:1.25", "network": "BRIDGE", "forcePullImage": True,
                                                   "portMappings": [{"containerPort": 80, "name": "http",
                                                                     "labels": {"VIP_0": "/web:80"}},
                                                                    {"containerPort": 443, "hostPort": 31443,
                                                                     "protocol": "udp,tcp"}]},
                      "volumes": [{"containerPath": "/etc/nginx", "hostPath": "/srv/nginx", "mode": "RO"}]},
        "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0, "gracePeriodSeconds": 30,
                          "ignoreHttp1xx": True},
                         {"protocol": "TCP", "portIndex": 1}],
        "readinessChecks": [{"portName": "http", "path": "/ready", "httpStatusCodesForReady": [200, 204]}],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
        "unreachableStrategy": {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120},
        "constraints": [["hostname", "UNIQUE"], ["rack", "GROUP_BY", "3"], ["hostname", "LIKE", "web-.*"]],
        "dependencies": ["../db"], "killSelection": "OLDEST_FIRST", "taskKillGracePeriodSeconds": 10,
    },
    "mesos-host": {
        "id": "/svc/api", "cmd": "./api --port $PORT0", "user": "nobody", "role": "api",
        "acceptedResourceRoles": ["*", "api"], "gpus": 1, "disk": 512, "backoffSeconds": 2, "backoffFactor": 2,
        "maxLaunchDelaySeconds": 60, "requirePorts": True,
        "container": {"type": "MESOS", "docker": {"image": "python:3.11"}},
        "portDefinitions": [{"port": 10500, "name": "http-api", "protocol": "tcp", "labels": {"a": "b"}},
                            {"port": 0, "name": "admin"}],
        "healthChecks": [{"protocol": "MESOS_HTTP", "portIndex": 1, "path": "/ping"},
                         {"protocol": "COMMAND", "command": {"value": "curl -f localhost:$PORT0"}}],
        "readinessChecks": [{}],
        "env": {"MODE": "prod", "TOKEN": {"secret": "token"}}, "secrets": {"token": {"source": "/vault/token"}},
        "fetch": [{"uri": "https://example.com/api.tgz", "cache": True}],
        "unreachableStrategy": "disabled", "constraints": [["@zone", "IS", "a"], ["hostname", "MAX_PER", "2"]],
    },
    "container-network": {
        "id": "/net/app", "args": ["/bin/app", "--serve"],
        "networks": [{"mode": "container", "name": "overlay", "labels": {"k": "v"}}],
        "container": {"type": "MESOS", "portMappings": [{"containerPort": 8080, "name": "web",
                                                         "networkNames": ["overlay"]}]},
    },
    "legacy-ip-address": {
        "id": "/data/legacy", "cmd": "serve",
        "ipAddress": {"networkName": "overlay", "discovery": {"ports": [{"number": 8080, "name": "web"}]}},
    },
    "no-ports": {"id": "/worker", "cmd": "work", "portDefinitions": [], "healthChecks": [
        {"protocol": "COMMAND", "command": {"value": "true"}}]},
}


def normalised(name: str) -> App:
    app, problems = normalise(COMPLEX_APPS[name], now_version=V1)
    assert app is not None, problems
    return assign_service_ports(app, set())


def instance(app: App, n: int, state: str = "TASK_RUNNING", healthy: bool | None = True) -> Instance:
    return Instance(task_id=f"{app['id'].strip('/').replace('/', '_')}.uuid-{n}", app_id=app["id"], version=V1,
                    agent_id="agent-1", host="host-1", state=state, staged_at=T0 + n,
                    started_at=T0 + n + 0.25 if state == "TASK_RUNNING" else None, healthy=healthy,
                    host_ports=[31000 + n], agent_fields={"@zone": "a"}, message="boom")


@pytest.mark.parametrize("name", sorted(COMPLEX_APPS))
def test_app_info_parses(name: str) -> None:
    app = normalised(name)
    instances = [instance(app, 1), instance(app, 2, "TASK_STAGING", None), instance(app, 3, healthy=False)]
    failure = wire.task_failure_json(instance(app, 9, "TASK_FAILED"), at=T0 + 30)
    body = wire.app_json(app, instances=instances, deployments=["5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43"],
                         last_failure=failure, now=T0 + 100,
                         embed={"tasks", "counts", "deployments", "lastTaskFailure", "taskStats", "readiness"})
    parsed = MarathonApp.from_json(json.loads(json.dumps(body)))
    assert parsed.id == app["id"] and parsed.instances == app["instances"]
    assert parsed.tasks_running == 2 and parsed.deployments[0].id.startswith("5ed4")
    assert [t.id for t in parsed.tasks] == [i.task_id for i in instances]
    assert parsed.tasks[0].started_at == datetime.datetime(2026, 1, 1, 0, 0, 1, 250000, tzinfo=UTC)
    assert parsed.last_task_failure.timestamp == datetime.datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert parsed.version_info.last_config_change_at == datetime.datetime(2026, 1, 1, tzinfo=UTC)
    assert parsed.task_stats.total_summary.stats.counts.running == 2
    assert len(parsed.health_checks) == len(app["healthChecks"])
    assert len(parsed.constraints) == len(app["constraints"])


def test_strategies_and_ports_come_through() -> None:
    bridge = MarathonApp.from_json(wire.app_json(normalised("docker-bridge"), instances=[], deployments=[]))
    assert bridge.upgrade_strategy.minimum_health_capacity == 0.5
    assert bridge.unreachable_strategy.inactive_after_seconds == 60
    assert [m.container_port for m in bridge.container.port_mappings] == [80, 443]
    assert bridge.container.port_mappings[1].protocol == "udp,tcp"
    assert bridge.readiness_checks[0].port_name == "http"
    assert bridge.container.volumes[0].mode == "RO"
    host = MarathonApp.from_json(wire.app_json(normalised("mesos-host"), instances=[], deployments=[]))
    assert host.unreachable_strategy == "disabled"
    assert [p.port for p in host.port_definitions] == [10500, 10000]
    assert host.secrets["token"].source == "/vault/token"
    assert host.health_checks[1].command == {"value": "curl -f localhost:$PORT0"}


def test_tasks_and_health_results_parse() -> None:
    app = normalised("mesos-host")
    result = wire.HealthResult(alive=False, consecutive_failures=2, first_success=T0, last_success=T0 + 1.5,
                               last_failure=T0 + 3, last_failure_cause="HTTP 503")
    task = instance(app, 1)
    task.ip_addresses = [{"ipAddress": "10.1.2.3", "protocol": "IPv4"}, {"ipAddress": "fd00::1", "protocol": "IPv6"}]
    body = wire.task_json(task, app, health=[result])
    task = MarathonTask.from_json(json.loads(json.dumps(body)))
    assert task.service_ports == [10500, 10000] and task.zone == "a" and task.role == "api"
    assert [ip.protocol for ip in task.ip_addresses] == ["IPv4", "IPv6"]
    (health,) = task.health_check_results
    assert isinstance(health, MarathonHealthCheckResult) and health.alive is False
    assert health.last_success == datetime.datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)
    assert MarathonHealthCheckResult.from_json(wire.health_result_json(result, "x.y")).consecutive_failures == 2
    staging = MarathonTask.from_json(wire.task_json(instance(app, 2, "TASK_STAGING"), app))
    assert staging.started_at is None and staging.staged_at is not None


def test_groups_parse() -> None:
    apps = {a["id"]: a for a in (normalised(n) for n in COMPLEX_APPS)}
    root = RootGroup(apps, {"/prod": Group("/prod", ("/data",), V1)}, V1)
    body = wire.tree_json(root, render_app=lambda a: wire.app_json(a, instances=[], deployments=[]))
    assert body is not None
    group = MarathonGroup.from_json(json.loads(json.dumps(body)))
    assert group.id == "/" and {g.id for g in group.groups} == {"/prod", "/svc", "/net", "/data"}
    prod = next(g for g in group.groups if g.id == "/prod")
    assert prod.dependencies == ["/data"] and prod.apps[0].id == "/prod/web"


def test_deployments_and_plans_parse() -> None:
    steps = [[("StartApplication", "/prod/web")], [("ScaleApplication", "/prod/web"), ("RestartApplication", "/a.b")]]
    ready = wire.readiness_result_json("readinessCheck", "prod_web.x", True, (200, "text/plain", "ok"))
    body = wire.deployment_json("dep-1", V1, steps, current_step=2, readiness={"/prod/web": [ready]})
    deployment = MarathonDeployment.from_json(json.loads(json.dumps(body)))
    assert deployment.current_step == 2 and deployment.total_steps == 2
    assert [a.app for a in deployment.steps[1].actions] == ["/prod/web", "/a.b"]
    assert deployment.current_actions[0].readiness_check_results == [ready]
    root = RootGroup({"/prod/web": normalised("docker-bridge")}, version=V1)
    plan = wire.plan_json("dep-1", V1, steps, original=wire.plan_group_json(RootGroup(version=V1)),
                          target=wire.plan_group_json(root))
    parsed = MarathonDeploymentPlan.from_json(json.loads(json.dumps(plan)))
    assert parsed.target.groups[0]["id"] == "/prod" and len(parsed.steps) == 2


def test_queue_items_parse() -> None:
    app = normalised("docker-bridge")
    stats = LaunchStats(T0)
    for n in range(12):
        offer = {"id": {"value": f"o{n}"}, "agent_id": {"value": f"a{n}"}, "hostname": f"h{n}",
                 "resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": 64}}]}
        stats.record(offer, ["InsufficientMemory"], T0 + 5)
    body = wire.queue_item_json(app, count=3, time_left_seconds=0, overdue=True, since=T0,
                                summary=stats.summary_json(), last_unused_offers=stats.last_unused_offers_json())
    item = MarathonQueueItem.from_json(json.loads(json.dumps(body)))
    assert item.count == 3 and item.delay.overdue is True and item.app.id == "/prod/web"
    assert item.processed_offers_summary["rejectSummaryLastOffers"][5] == {
        "reason": "InsufficientMemory", "declined": 12, "processed": 12}


def test_info_parses_with_every_known_key() -> None:
    config = {key: 1 for key in wire.MARATHON_CONFIG_KEYS} | {"enforce_role": True}
    body = wire.info_json(version="1.10.19", leader="10.0.0.1:8080", elected=True, framework_id="fw-1",
                          marathon_config=config, zookeeper_config={k: 1 for k in wire.ZOOKEEPER_CONFIG_KEYS},
                          http_config={"http_port": 8080, "https_port": 8443, "assets_path": None},
                          event_subscriber={"type": "http_callback", "http_endpoints": []})
    info = MarathonInfo.from_json(json.loads(json.dumps(body)))
    assert info.leader == "10.0.0.1:8080" and info.http_config.http_port == 8080
    assert info.marathon_config.revive_offers_repetitions == 1 and info.event_subscriber.type == "http_callback"
    bare = MarathonInfo.from_json(wire.info_json(version="1.10.19", leader=None, elected=False, framework_id=None,
                                                 marathon_config={}, zookeeper_config={}, http_config={}))
    assert bare.elected is False


@pytest.mark.parametrize("name", sorted(set(COMPLEX_APPS) - {"no-ports"}))
def test_what_the_client_sends_back_normalises_to_the_same_app(name: str) -> None:
    app = normalised(name)
    rendered = wire.app_json(app, instances=[instance(app, 1)], deployments=["d1"], embed={"tasks"})
    sent = json.loads(MarathonApp.from_json(json.loads(json.dumps(rendered))).to_json())
    again, problems = normalise(sent, now_version=V1)
    assert problems == []
    if name == "container-network":  # the client's PortMapping has no networkNames: that one is lost
        for mapping in app["container"]["portMappings"]:
            mapping.pop("networkNames", None)
    assert again == app


def test_a_client_built_app_normalises() -> None:
    from marathon.models.app import MarathonHealthCheck, PortDefinition, ReadinessCheck
    from marathon.models.constraint import MarathonConstraint
    from marathon.models.container import MarathonContainer

    app = MarathonApp(
        id="/clients/complex", cmd="python -m http.server $PORT0", cpus=0.25, mem=64, instances=2,
        constraints=[MarathonConstraint("hostname", "UNIQUE"), MarathonConstraint("rack", "MAX_PER", "1")],
        container=MarathonContainer.from_json({"type": "DOCKER", "docker": {"image": "python:3", "network": "HOST"},
                                               "volumes": [{"containerPath": "/tmp", "hostPath": "/tmp"}]}),
        health_checks=[MarathonHealthCheck(protocol="HTTP", path="/", port_index=0, grace_period_seconds=5,
                                           interval_seconds=2, timeout_seconds=1, max_consecutive_failures=3)],
        readiness_checks=[ReadinessCheck(name="ready", protocol="HTTP", port_name="http", interval_seconds=5,
                                         timeout_seconds=2, http_status_codes_for_ready=[200])],
        port_definitions=[PortDefinition(port=0, protocol="tcp", name="http")],
        upgrade_strategy={"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5},
        unreachable_strategy={"inactiveAfterSeconds": 5, "expungeAfterSeconds": 10},
        labels={"owner": "itest"}, env={"A": "B"}, uris=["http://example.com/x.zip"], kill_selection="OLDEST_FIRST",
        backoff_factor=1.5, backoff_seconds=1, max_launch_delay_seconds=30, require_ports=False,
        task_kill_grace_period_seconds=3, accepted_resource_roles=["*"], dependencies=["/clients/db"],
    )
    normalised_app, problems = normalise(json.loads(app.to_json()), now_version=V1)
    assert problems == [] and normalised_app is not None
    assert normalised_app["fetch"][0]["extract"] is True
    assert normalised_app["networks"] == [{"mode": "host"}]
    assert normalised_app["readinessChecks"][0]["portName"] == "http"
    reparsed = MarathonApp.from_json(wire.app_json(normalised_app, instances=[], deployments=[]))
    assert reparsed.constraints[1].value == "1" and reparsed.kill_selection == "OLDEST_FIRST"
