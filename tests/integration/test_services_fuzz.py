"""A structure-aware fuzz of the services REST surface, live (LocalCluster: master, agent and
`meseta services` with real HTTP on loopback).

Each example is a valid request (app, group, group update/scale, multi-app PUT, task kill,
deployment delete, a GET with its query parameters) with one field of its body or one query
parameter mutated: wrong type, huge / negative / non-finite numbers, lone surrogates, deep
nesting, huge strings, or the field left out. Checked: no answer >= 500; a rejected call
(4xx) changes no app and no group version; at the end nothing was logged at ERROR, the app
deployed before the fuzz still runs the same task with the same definition, and a new valid
app still deploys and runs.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meseta.testing.local_cluster import LocalCluster, clusters
from meseta.testing.mutations import encode, mutated
from meseta.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(240)
# Per test; four tests: a few hundred requests in all, well under a minute (more to explore:
# MESETA_FUZZ_EXAMPLES=2000 pytest tests/integration/test_services_fuzz.py).
EXAMPLES = int(os.environ.get("MESETA_FUZZ_EXAMPLES", "100"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NUMBERED = itertools.count()


def app_body(app_id: str) -> dict[str, Any]:
    """A valid app using most of the definition (0 instances: the fuzz launches nothing)."""
    return {
        "id": app_id, "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "disk": 0, "gpus": 0, "instances": 0,
        "env": {"A": "b"}, "labels": {"team": "fuzz"}, "constraints": [["hostname", "UNIQUE"]],
        "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "http"}],
        "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 5,
                          "intervalSeconds": 10, "timeoutSeconds": 5, "maxConsecutiveFailures": 3}],
        "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
        "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
        "fetch": [{"uri": "http://127.0.0.1:1/x.tgz", "extract": True}],
        "backoffSeconds": 1, "backoffFactor": 1.15, "maxLaunchDelaySeconds": 300,
        "taskKillGracePeriodSeconds": 3, "killSelection": "YOUNGEST_FIRST", "dependencies": [],
        "container": {"type": "MESOS", "volumes": [{"containerPath": "data", "hostPath": "/tmp", "mode": "RO"}]},
    }


def requests(n: int) -> list[tuple[str, str, dict[str, str], Any]]:
    """(method, path, query, body) of every valid call, for a fresh number ``n``."""
    return [
        ("POST", "/v2/apps", {"force": "false"}, app_body(f"/fz/a{n}")),
        ("PUT", f"/v2/apps/fz/p{n}", {"partialUpdate": "true", "force": "true"}, app_body(f"/fz/p{n}")),
        ("PUT", "/v2/apps", {"force": "true"}, [app_body(f"/fz/m{n}"), app_body(f"/fz/n{n}")]),
        ("POST", "/v2/groups", {}, {"id": f"/fz/g{n}", "apps": [app_body(f"/fz/g{n}/a")],
                                    "groups": [{"id": f"/fz/g{n}/inner", "apps": []}]}),
        ("PUT", "/v2/groups/fz", {"force": "true"}, {"scaleBy": 1.5}),
        ("PUT", f"/v2/groups/fz/d{n}", {"dryRun": "true"}, {"id": f"/fz/d{n}", "apps": [app_body(f"/fz/d{n}/a")]}),
        ("POST", "/v2/tasks/delete", {"scale": "false"}, {"ids": [f"fz_a0.instance-{'0' * 32}._app.1"]}),
        ("DELETE", "/v2/deployments/00000000-0000-0000-0000-000000000000", {"force": "true"}, None),
        ("DELETE", "/v2/apps/base/tasks", {"scale": "false", "wipe": "false", "host": "nowhere"}, None),
        ("GET", "/v2/apps", {"cmd": "sleep", "id": "fz", "label": "team==fuzz", "embed": "apps.tasks"}, None),
        ("GET", "/v2/apps/base", {"embed": "app.readiness"}, None),
        ("GET", "/v2/apps/base/versions", {}, None),
        ("GET", "/v2/tasks", {"status": "running"}, None),
        ("GET", "/v2/queue", {"embed": "lastUnusedOffers"}, None),
        ("GET", "/v2/groups", {"embed": "group.apps"}, None),
        ("GET", "/v2/deployments", {"embed": "stall"}, None),
        ("GET", "/v2/info", {"embed": "connection"}, None),
        ("GET", "/v2/leader", {}, None),
        ("GET", "/ping", {}, None),
        ("GET", "/metrics", {}, None),
        ("DELETE", "/v2/queue/fz/none/delay", {}, None),
        ("POST", "/v2/apps/fz/absent/restart", {"force": "true"}, None),
        ("GET", "/v2/apps/base/tasks", {}, None),
        ("GET", "/v2/apps/base/versions/2020-01-01T00:00:00.000Z", {}, None),
        ("GET", "/v2/groups/fz/versions", {}, None),
        ("PUT", "/v2/groups/fz/versions/2020-01-01T00:00:00.000Z", {"force": "true"}, None),
        ("DELETE", f"/v2/groups/fz/absent{n}", {"force": "true"}, None),
        ("DELETE", f"/v2/apps/fz/absent{n}", {"force": "true"}, None),
    ]


DEEP = json.loads("[" * 120 + "]" * 120)
MUTANTS = st.one_of(
    st.sampled_from([None, True, False, 0, -1, -1e308, 1e308, 2**64, 10**400, 0.5, "", "\ud800", "x\udfffy",
                     [], {}, [1, "a"], {"a": {"b": 1}}, "x" * 100_000, DEEP, float("nan"), float("inf"),
                     "NaN", "/", "..", "\x00", "é" * 10, -(2**31), 2**31]),
    st.integers(), st.floats(), st.text(max_size=20),
)
QUERY_NAMES = ("force", "embed", "cmd", "label", "status", "status[]", "scale", "wipe", "host", "dryRun",
               "partialUpdate", "event_type")  # every query parameter the API reads, on every endpoint
RAW = ("%ED%A0%80", "%FF", "%00", "%", "%%41")  # sent as they are: a lone surrogate's bytes, bad UTF-8...
QUERY_MUTANTS = st.sampled_from(["", "maybe", "TRUE", "x" * 9000, "\x00", "-1", "1e400", "null", "é",
                                 "apps.tasks", "lastUnusedOffers", "a==b,c!=d", "x in (a,b)", "team notin ()", *RAW])


BASE_TASKS: list[str] = []  # /base's running task, recorded before the fuzz: the same one must run after


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from clusters(tmp_path_factory.mktemp("fuzz"), services=True,
                        agent_resources="cpus:2;mem:1024;disk:1024;ports:[31000-31100]")


@pytest.fixture(scope="module")
def api(cluster: LocalCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.services_url, timeout=30) as client:
        base = {"id": "/base", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1}
        assert client.post("/v2/apps", json=base).status_code == 201
        BASE_TASKS[:] = wait_until(lambda: running_tasks(client, "/base"), 30, "/base running")
        for method, path, query, body in requests(next(NUMBERED)):  # every template is valid as it stands
            answer = client.request(method, path, params=query, content=encode(body) if body is not None else None,
                                    headers={"content-type": "application/json"})
            assert answer.status_code < 400 or (answer.status_code == 404 and "not" in answer.text), \
                (method, path, answer.status_code, answer.text)
        yield client


def running_tasks(api: httpx.Client, app_id: str) -> list[str]:
    app = api.get(f"/v2/apps{app_id}").json()["app"]
    return sorted(t["id"] for t in app["tasks"] if t["state"] == "TASK_RUNNING")


def definitions(api: httpx.Client) -> tuple[dict[str, str], str]:
    """Every app's version and the root group's version: what a rejected call must not change."""
    apps = api.get("/v2/apps")
    assert apps.status_code == 200, apps.text
    return {a["id"]: a["version"] for a in apps.json()["apps"]}, api.get("/v2/groups").json()["version"]


def send(api: httpx.Client, method: str, path: str, query: dict[str, str], body: Any) -> None:
    before = definitions(api)
    content = encode(body) if body is not None else None
    query_string = "&".join(f"{quote(k)}={v if v in RAW else quote(v)}" for k, v in query.items())
    answer = api.request(method, f"{path}?{query_string}", content=content,
                         headers={"content-type": "application/json"})
    assert answer.status_code < 500, (method, path, query, (content or b"")[:300], answer.status_code, answer.text)
    if answer.status_code >= 400:
        assert definitions(api) == before, (method, path, answer.status_code, answer.text)


@SETTINGS
@given(data=st.data())
def test_one_body_field_mutated(api: httpx.Client, data: st.DataObject) -> None:
    calls = [c for c in requests(next(NUMBERED)) if c[3] is not None]
    method, path, query, body = data.draw(st.sampled_from(calls))
    send(api, method, path, query, data.draw(mutated(body, MUTANTS)).value)


@SETTINGS
@given(data=st.data())
def test_one_query_parameter_mutated(api: httpx.Client, data: st.DataObject) -> None:
    method, path, query, body = data.draw(st.sampled_from(requests(next(NUMBERED))))
    name = data.draw(st.sampled_from([*query, *QUERY_NAMES]))
    send(api, method, path, {**query, name: data.draw(QUERY_MUTANTS)}, body)


PATH_MUTANTS = st.sampled_from(["%ED%A0%80", "%FF", "%00", "...", "x" * 5000, "%2F%2F", "a%20b", "*", "%2E%2E",
                                "versions", "tasks", "restart", "%25", "%", "-", "A", "1", "base", "fz"])


def group_wide(method: str, path: str) -> bool:
    """A call that, with a segment mutated (``/v2/groups/fz/..``), can legitimately hit the root
    group: deleting or scaling everything, /base included, is not a finding."""
    return (method != "GET" and path.startswith("/v2/groups")) or (method == "DELETE" and path.startswith("/v2/apps"))


@SETTINGS
@given(data=st.data())
def test_one_path_segment_mutated(api: httpx.Client, data: st.DataObject) -> None:
    calls = [c for c in requests(next(NUMBERED)) if not group_wide(c[0], c[1])]
    method, path, query, body = data.draw(st.sampled_from(calls))
    segments = path.split("/")
    index = data.draw(st.integers(min_value=2, max_value=max(2, len(segments) - 1)))
    segments[index:index + 1] = [data.draw(PATH_MUTANTS)]
    send(api, method, "/".join(segments), query, body)


@SETTINGS
@given(body=st.binary(max_size=200) | st.sampled_from([b"[" * 5000, b'{"id": "/x"' * 100, b"\xff\xfe", b"{}" * 3]),
       target=st.sampled_from([("POST", "/v2/apps"), ("PUT", "/v2/apps"), ("PUT", "/v2/apps/fz/raw"),
                               ("POST", "/v2/groups"), ("PUT", "/v2/groups/fz"), ("POST", "/v2/tasks/delete")]))
def test_raw_bytes(api: httpx.Client, body: bytes, target: tuple[str, str]) -> None:
    before = definitions(api)
    answer = api.request(*target, content=body, headers={"content-type": "application/json"})
    assert answer.status_code < 500, (target, body[:100], answer.text)
    if answer.status_code >= 400:
        assert definitions(api) == before


def test_afterwards_the_cluster_is_whole(cluster: LocalCluster, api: httpx.Client) -> None:
    """Runs after the fuzz (file order): nothing logged, /base untouched, a new app deploys."""
    assert cluster.logged_errors() == []
    base = api.get("/v2/apps/base").json()["app"]
    assert base["cmd"] == "sleep 1000" and base["instances"] == 1 and base["cpus"] == 0.1
    assert running_tasks(api, "/base") == BASE_TASKS and len(BASE_TASKS) == 1, "the same task, never replaced"
    assert api.delete("/v2/groups/fz", params={"force": "true"}).status_code in (200, 404)
    wait_until(lambda: not api.get("/v2/deployments").json(), 30, "deployments done")
    answer = api.post("/v2/apps", json={"id": "/after", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16})
    assert answer.status_code == 201, answer.text
    wait_until(lambda: running_tasks(api, "/after"), 30, "/after running")
    assert cluster.logged_errors() == []
