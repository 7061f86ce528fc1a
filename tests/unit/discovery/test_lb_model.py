"""meseta lb's pure decisions: labels -> model (errors per app), slots, the runtime commands of a change,
and the rendered configuration (checked by the real ``haproxy -c``, also for fuzzed labels)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meseta.discovery.lb.labels import BALANCES
from meseta.discovery.lb.model import Model, Settings, build
from meseta.discovery.lb.plan import diff, place
from meseta.discovery.lb.render import Files, render, structure

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
S = Settings(groups=("external",), port_range=(10000, 10100), reserved_ports=frozenset({10099}), http_port=10098)
F = Files(socket="/tmp/meseta-lb-unit.sock", state_file="/tmp/meseta-lb-unit.state", stats_port=10099)


def task(task_id: str, port: int, state: str = "TASK_RUNNING", alive: bool | None = True,
         **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"id": task_id, "state": state, "host": "127.0.0.1", "ports": [port],
                             "ipAddresses": [{"ipAddress": "10.1.0.7", "protocol": "IPv4"}], **extra}
    if alive is not None:
        found["healthCheckResults"] = [{"alive": alive}]
    return found


def app(app_id: str = "/web", port: int = 10001, tasks: tuple[dict[str, Any], ...] = (), checks: bool = True,
        **labels: str) -> dict[str, Any]:
    return {"id": app_id, "instances": len(tasks), "portDefinitions": [{"port": port}],
            "labels": {"HAPROXY_GROUP": "external", **labels}, "tasks": list(tasks),
            "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0, "intervalSeconds": 2,
                              "maxConsecutiveFailures": 2, "timeoutSeconds": 1}] if checks else []}


def haproxy_accepts(text: str, tmp: Path) -> str | None:
    cfg = tmp / "c.cfg"
    cfg.write_text(text)
    done = subprocess.run([HAPROXY, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True, timeout=20)
    return None if done.returncode == 0 else done.stdout + done.stderr


def test_only_running_healthy_ready_tasks_become_servers_with_their_host_ports() -> None:
    apps = [app(tasks=(task("a", 31001), task("b", 31002, alive=False), task("c", 31003, state="TASK_STAGING"),
                       task("d", 31004, alive=None), task("e", 31005), task("f", 31006, draining=True)))]
    apps[0]["readinessCheckResults"] = [{"taskId": "e", "ready": False}]
    (service,) = build(apps, S).services
    assert service.name == "web_10001" and service.mode == "http"  # an HTTP health check makes it http
    assert [(s.task_id, s.ip, s.port, s.draining) for s in service.servers] == [
        ("a", "127.0.0.1", 31001, False), ("f", "127.0.0.1", 31006, True)]
    assert build(apps, S).draining == {"f"}
    assert service.check is not None and service.check.http_path == "/health" and service.check.fall == 3


def test_container_networking_uses_the_task_ip_and_container_port_and_groups_select_ports() -> None:
    container = {"id": "/db", "instances": 1, "networks": [{"mode": "container", "name": "n1"}],
                 "container": {"portMappings": [{"containerPort": 5432, "servicePort": 10002},
                                                {"containerPort": 9000, "servicePort": 10003}]},
                 "labels": {"HAPROXY_GROUP": "internal", "HAPROXY_1_GROUP": "external", "HAPROXY_1_MODE": "TCP"},
                 "tasks": [task("t", 31001)]}
    (service,) = build([container, app("/other", 10004, (task("o", 1),), HAPROXY_GROUP="internal")], S).services
    assert (service.name, service.port, service.mode) == ("db_10003", 10003, "tcp")
    assert [(s.ip, s.port) for s in service.servers] == [("10.1.0.7", 9000)]
    everything = build([container], Settings(groups=("*",), port_range=(1, 65535)))
    assert [s.name for s in everything.services] == ["db_10002", "db_10003"]


@pytest.mark.parametrize(("labels", "named"), [
    ({"HAPROXY_0_BALANCE": "fastest"}, "HAPROXY_0_BALANCE"),
    ({"HAPROXY_0_MODE": "udp"}, "HAPROXY_0_MODE"),
    ({"HAPROXY_0_VHOST": "bad host"}, "HAPROXY_0_VHOST"),
    ({"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_MODE": "tcp"}, "HAPROXY_0_VHOST"),
    ({"HAPROXY_0_PATH": "/api"}, "HAPROXY_0_PATH"),
    ({"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_PATH": "api"}, "HAPROXY_0_PATH"),
    ({"HAPROXY_0_VHOST": "a.test", "HAPROXY_0_PATH": "/a'b"}, "HAPROXY_0_PATH"),
    ({"HAPROXY_0_VHOST": "a.test\nbackend x"}, "HAPROXY_0_VHOST"),
    ({"HAPROXY_0_PORT": "70000"}, "HAPROXY_0_PORT"),
    ({"HAPROXY_0_PORT": "20000"}, "--lb-port-range"),
    ({"HAPROXY_0_PORT": "10099"}, "LB's own port"),
    ({"HAPROXY_0_BIND_ADDR": "localhost"}, "HAPROXY_0_BIND_ADDR"),
    ({"HAPROXY_0_BACKEND_WEIGHT": "heavy"}, "HAPROXY_0_BACKEND_WEIGHT"),
    ({"HAPROXY_0_REDIRECT_TO_HTTPS": "maybe"}, "HAPROXY_0_REDIRECT_TO_HTTPS"),
    ({"HAPROXY_0_SSL_CERT": "/etc/cert.pem"}, "HAPROXY_0_SSL_CERT"),
    ({"HAPROXY_DEPLOYMENT_GROUP": "zdd"}, "HAPROXY_DEPLOYMENT_GROUP"),
    ({"HAPROXY_0_BACKEND_HEAD": "backend x"}, "HAPROXY_0_BACKEND_HEAD"),
    ({"HAPROXY_0_GROUP": "ext;ernal"}, "HAPROXY_0_GROUP"),
])
def test_a_bad_label_leaves_out_only_its_app_and_names_the_label(labels: dict[str, str], named: str) -> None:
    model = build([app("/bad", 10001, (task("b", 31001),), **labels), app("/good", 10002, (task("g", 31002),))], S)
    assert [s.app_id for s in model.services] == ["/good"]
    assert named in model.rejected["/bad"], model.rejected


def test_a_port_bound_twice_is_refused_for_the_second_app() -> None:
    model = build([app("/a", 10001), app("/b", 10005, HAPROXY_0_PORT="10001")], S)
    assert [s.app_id for s in model.services] == ["/a"] and "already bound by /a" in model.rejected["/b"]


def test_slots_keep_servers_in_place_and_changes_are_runtime_commands() -> None:
    one = build([app(tasks=(task("a", 31001), task("b", 31002)))], S)
    first = place(one, {})
    assert [s and s.task_id for s in first["web_10001"]] == ["a", "b", None, None, None, None, None, None]
    two = build([app(tasks=(task("b", 31002), task("c", 31003, draining=False), task("a", 31001, draining=True)))], S)
    second = place(two, first)
    assert [s and s.task_id for s in second["web_10001"]][:3] == ["a", "b", "c"]
    assert structure(one, first, S, F) == structure(two, second, S, F)
    assert diff(first, second, False).commands == (
        "set server web_10001/s1 state drain",
        "set server web_10001/s3 addr 127.0.0.1 port 31003", "set server web_10001/s3 state ready")
    three = build([app(tasks=(task("c", 31003),))], S)
    third = place(three, second)
    assert diff(second, third, False).commands == (
        "set server web_10001/s1 state maint", "set server web_10001/s2 state maint")


def test_a_new_port_a_vhost_or_outgrowing_the_slots_changes_the_structure() -> None:
    base = build([app(tasks=(task("a", 31001),))], S)
    placed = place(base, {})
    vhost = build([app(tasks=(task("a", 31001),), HAPROXY_0_VHOST="web.test")], S)
    assert structure(vhost, place(vhost, placed), S, F) != structure(base, placed, S, F)
    many = build([app(tasks=(task("a", 31001), *(task(f"t{i}", 32000 + i) for i in range(8))))], S)
    grown = place(many, placed)
    assert len(grown["web_10001"]) == 32 and grown["web_10001"][0] == placed["web_10001"][0]
    assert structure(many, grown, S, F) != structure(base, placed, S, F)


def test_the_rendered_configuration_passes_haproxy_check(tmp_path: Path) -> None:
    model = build([
        app("/web", 10001, (task("a", 31001), task("b", 31002, draining=True)), HAPROXY_0_VHOST="web.test,*.web.test",
            HAPROXY_0_PATH="/api /v2", HAPROXY_0_REDIRECT_TO_HTTPS="true", HAPROXY_0_USE_HSTS="yes",
            HAPROXY_0_BALANCE="leastconn"),
        app("/tcp", 10002, (task("c", 31003),), checks=False, HAPROXY_0_BIND_ADDR="127.0.0.2"),
        app("/site", 10003, (task("d", 31004),), HAPROXY_0_VHOST="site.test", HAPROXY_0_BACKEND_WEIGHT="5"),
    ], S)
    assert not model.rejected
    text = render(model, place(model, {}), S, F)
    assert haproxy_accepts(text, tmp_path) is None, text
    assert text.index("use_backend site_10003") < text.index("use_backend web_10001")  # weight order
    assert "server s2 127.0.0.1:31002" in text and "server s3 127.0.0.1:1 disabled" in text


label_values = st.one_of(st.sampled_from(["", "true", "http", "tcp", "a.test", "*.b.test,c.test", "/x", "/a'b",
                                          "/x /y", "10050", "-3", "*", "127.0.0.3"]),
                         st.text(max_size=30))
label_names = st.sampled_from(["HAPROXY_GROUP", "HAPROXY_0_GROUP", "HAPROXY_0_PORT", "HAPROXY_0_BIND_ADDR",
                               "HAPROXY_0_MODE", "HAPROXY_0_BALANCE", "HAPROXY_0_VHOST", "HAPROXY_0_PATH",
                               "HAPROXY_0_BACKEND_WEIGHT", "HAPROXY_0_REDIRECT_TO_HTTPS", "HAPROXY_0_USE_HSTS",
                               "HAPROXY_1_MODE", "HAPROXY_0_STICKY", "OTHER"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(label_names, label_values, max_size=6), min_size=1, max_size=3),
       st.lists(st.sampled_from(list(BALANCES)), min_size=1, max_size=3))
def test_any_accepted_labels_render_a_configuration_haproxy_accepts(tmp_path: Path, labels: list[dict[str, str]],
                                                                    balances: list[str]) -> None:
    apps = []
    for i, extra in enumerate(labels):
        merged = {"HAPROXY_GROUP": "external", "HAPROXY_0_BALANCE": balances[i % len(balances)], **extra}
        apps.append({**app(f"/app{i}", 10010 + i, (task(f"t{i}", 31000 + i),)), "labels": merged})
    model: Model = build(apps, S)
    assert {s.app_id for s in model.services} | set(model.rejected) <= {a["id"] for a in apps}
    for reason in model.rejected.values():
        assert reason.startswith(("label ", "malformed")), reason
    text = render(model, place(model, {}), S, F)
    assert haproxy_accepts(text, tmp_path) is None, text
