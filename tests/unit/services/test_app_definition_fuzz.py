"""Fuzzing app definitions: any JSON-like input yields an app or problems, never an exception."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meseta.services import wire
from meseta.services.spec.app_definition import apply_partial_update, normalise

V = "2026-01-01T00:00:00.000Z"

scalars = (st.none() | st.booleans() | st.integers(-3, 70000) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([10**400, -(10**400), 2**63, 1e308])
           | st.sampled_from(["", "/", "web", "tcp", "HTTP", "COMMAND", "MESOS", "DOCKER", "BRIDGE", "USER",
                              "container/bridge", "host", "disabled", "UNIQUE", "LIKE", "MAX_PER", "(", "http-api"])
           | st.text(max_size=6))
KEYS = ["id", "cmd", "args", "cpus", "mem", "instances", "container", "docker", "image", "network", "networks",
        "mode", "name", "portMappings", "portDefinitions", "ports", "port", "portIndex", "containerPort",
        "hostPort", "servicePort", "protocol", "healthChecks", "readinessChecks", "portName", "command", "value",
        "constraints", "env", "secrets", "secret", "source", "labels", "fetch", "uris", "uri", "upgradeStrategy",
        "minimumHealthCapacity", "unreachableStrategy", "inactiveAfterSeconds", "volumes", "persistent", "size",
        "containerPath", "hostPath", "residency", "dependencies", "acceptedResourceRoles", "role", "type",
        "networkNames", "timeoutSeconds", "intervalSeconds", "requirePorts", "gpus", "pullConfig", "parameters",
        "ipAddress", "networkName", "discovery", "number", "groups", "forcePullImage", "privileged"]
json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4),
                                                                      children, max_size=5),
    max_leaves=10,
)
app_like = st.fixed_dictionaries({"id": st.sampled_from(["web", "/prod/web", "Bad", "/a/tasks"]) | scalars},
                                 optional={key: json_like for key in KEYS if key != "id"})


VALID_APPS: list[dict[str, Any]] = [
    {"id": "/prod/web", "instances": 2, "labels": {"a": "b"}, "constraints": [["hostname", "MAX_PER", "2"]],
     "container": {"type": "DOCKER", "docker": {"image": "nginx", "network": "BRIDGE",
                                                "portMappings": [{"containerPort": 80, "name": "http"}]},
                   "volumes": [{"containerPath": "/a", "hostPath": "/b", "mode": "RO"}]},
     "healthChecks": [{"protocol": "HTTP", "portIndex": 0}], "readinessChecks": [{"portName": "http"}],
     "upgradeStrategy": {"minimumHealthCapacity": 0.5}, "dependencies": ["../db"]},
    {"id": "api", "cmd": "run", "portDefinitions": [{"port": 0, "name": "http-api"}, {"port": 9000}],
     "healthChecks": [{"protocol": "MESOS_TCP", "portIndex": 1}, {"command": {"value": "true"}}],
     "env": {"A": "1", "S": {"secret": "s"}}, "secrets": {"s": {"source": "x"}}, "fetch": [{"uri": "http://x"}],
     "unreachableStrategy": {"inactiveAfterSeconds": 1, "expungeAfterSeconds": 2}, "readinessChecks": [{}]},
    {"id": "/db", "cmd": "pg", "networks": [{"mode": "container", "name": "n"}],
     "container": {"type": "MESOS", "portMappings": [{"containerPort": 5432, "networkNames": ["n"]}],
                   "volumes": [{"containerPath": "data", "hostPath": "/srv/db", "mode": "RW"}]}},
    {"id": "/legacy", "cmd": "serve", "container": {"type": "DOCKER", "docker": {"image": "x", "forcePullImage": True}},
     "ipAddress": {"networkName": "n", "labels": {"a": "b"},
                   "discovery": {"ports": [{"number": 80, "name": "http", "protocol": "udp,tcp"}]}},
     "readinessChecks": [{"portName": "http"}], "healthChecks": [{"protocol": "MESOS_HTTP"}]},
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found += paths(child, (*prefix, key))
    return found


@st.composite
def mutated_apps(draw: st.DrawFn) -> dict[str, Any]:
    """A valid app with one or two of its values (at any depth) removed or replaced by arbitrary JSON."""
    app: dict[str, Any] = json.loads(json.dumps(draw(st.sampled_from(VALID_APPS))))
    for _ in range(draw(st.integers(1, 2))):
        all_paths = paths(app)
        if not all_paths:
            break
        path = draw(st.sampled_from(all_paths))
        holder = app
        for key in path[:-1]:
            holder = holder[key]
        if draw(st.booleans()):
            del holder[path[-1]]
        else:
            holder[path[-1]] = draw(json_like)
    return app


def check(raw: Any) -> None:
    app, problems = normalise(raw, now_version=V)
    assert (app is None) == bool(problems)
    assert all(isinstance(path, str) and path.startswith("/") and isinstance(msg, str) for path, msg in problems)
    if app is not None:
        again, more = normalise(app, now_version=V)
        assert more == [] and again == app
        json.dumps(wire.app_json(app, instances=[], deployments=[]), allow_nan=False)


def test_the_seed_apps_are_valid() -> None:
    for raw in VALID_APPS:
        assert normalise(raw, now_version=V)[1] == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_like)
def test_any_json_is_answered_with_problems_not_exceptions(raw: Any) -> None:
    check(raw)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(app_like)
def test_app_shaped_input_is_answered_with_problems_not_exceptions(raw: dict[str, Any]) -> None:
    check(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_apps())
def test_valid_apps_with_a_bad_value_are_answered_with_problems_not_exceptions(raw: dict[str, Any]) -> None:
    check(raw)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(app_like)
def test_partial_updates_never_raise(patch: dict[str, Any]) -> None:
    old, _ = normalise({"id": "/web", "cmd": "x", "healthChecks": [{}]}, now_version=V)
    assert old is not None
    check(apply_partial_update(old, patch))
