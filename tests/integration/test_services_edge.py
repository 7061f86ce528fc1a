"""The services REST edge against a hostile client, on a live cluster (LocalCluster: master, agent
and `meseta services` with real HTTP on loopback): the probe's findings (issue 14, R2, R3, whole
bodies, RecursionError, NaN) as regression tests, and stored state an older version let in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.runtime.kv_store import SqliteKvStore
from meseta.services import wire
from meseta.services.spec import app_definition
from meseta.testing.local_cluster import LocalCluster, clusters
from meseta.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(120)
APP = {"cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from clusters(tmp_path_factory.mktemp("edge"), services=True)


@pytest.fixture
def api(cluster: LocalCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.services_url, timeout=10) as client:
        yield client
    assert cluster.logged_errors() == []


def stored(api: httpx.Client) -> Any:
    """What the API says is stored (apps and groups)."""
    apps = api.get("/v2/apps")
    assert apps.status_code == 200, apps.text
    return sorted(a["id"] for a in apps.json()["apps"]), api.get("/v2/groups").json()["version"]


def running(api: httpx.Client, app_id: str) -> bool:
    response = api.get(f"/v2/apps{app_id}")
    return response.status_code == 200 and response.json()["app"]["tasksRunning"] >= 1


def post_raw(api: httpx.Client, path: str, body: bytes, method: str = "POST") -> httpx.Response:
    return api.request(method, path, content=body, headers={"content-type": "application/json"})


def test_r2_a_resource_beyond_any_agent_is_refused_and_the_framework_keeps_launching(
        cluster: LocalCluster, api: httpx.Client) -> None:
    before = stored(api)
    for field in ("cpus", "mem", "disk"):
        answer = api.post("/v2/apps", json={**APP, "id": f"/r2-{field}", field: 1.7976931348623157e+308})
        assert answer.status_code == 422, answer.text
        assert answer.json()["details"][0]["path"] == f"/{field}"
    answer = api.post("/v2/apps", json={**APP, "id": "/r2-neg", "mem": -1})
    assert answer.status_code == 422 and answer.json()["details"][0]["path"] == "/mem"
    assert stored(api) == before
    time.sleep(1.0)  # several allocation cycles: the framework used to die on the first offer
    assert api.get("/ping").text == "pong"
    assert api.post("/v2/apps", json={**APP, "id": "/r2-after"}).status_code == 201
    wait_until(lambda: running(api, "/r2-after"), 20, "/r2-after running")
    assert api.delete("/v2/apps/r2-after", params={"force": "true"}).status_code == 200


def test_r3_a_lone_surrogate_is_refused_naming_the_field_and_nothing_is_stored(api: httpx.Client) -> None:
    before = stored(api)
    answer = post_raw(api, "/v2/apps", b'{"id": "/r3", "cmd": "\\ud800", "mem": 16}')
    assert answer.status_code == 422, answer.text
    assert answer.json()["details"] == [{"path": "/cmd", "errors": ["is not valid Unicode (a lone surrogate)"]}]
    answer = post_raw(api, "/v2/apps", b'{"id": "/r3", "cmd": "x", "labels": {"\\udfff": "a"}}')
    assert answer.status_code == 422, answer.text
    answer = post_raw(api, "/v2/apps", b'{"id": "/r3", "cmd": "x", "labels": {"it\' s": "\\udfff"}}')
    assert answer.status_code == 422, answer.text
    assert answer.json()["details"] == [{"path": "/labels/it' s",
                                         "errors": ["is not valid Unicode (a lone surrogate)"]}]
    assert stored(api) == before


def test_malformed_deep_and_non_finite_bodies_are_4xx(api: httpx.Client) -> None:
    before = stored(api)
    assert post_raw(api, "/v2/apps", b"[" * 1000 + b"]" * 1000).status_code == 400
    assert post_raw(api, "/v2/apps", b'{"id": "/x", "cmd": ' + b"[" * 1000 + b"]" * 1000 + b"}").status_code == 400
    assert post_raw(api, "/v2/apps", b'{"id": "/x", "cmd": "x"').status_code == 400
    answer = post_raw(api, "/v2/groups/", b'{"scaleBy": NaN}', "PUT")
    assert answer.status_code == 422 and answer.json()["details"][0]["path"] == "/scaleBy"
    answer = post_raw(api, "/v2/groups/", b'{"scaleBy": 1e300}', "PUT")
    assert answer.status_code == 422 and answer.json()["details"][0]["path"] == "/scaleBy"
    assert post_raw(api, "/v2/apps", b'{"id": "/x", "cmd": "x", "instances": 1e400}').status_code in (400, 422)
    assert post_raw(api, "/v2/tasks/delete", b'{"ids": [' + b"[" * 500 + b"]" * 500 + b"]}").status_code == 400
    assert stored(api) == before


def test_bodies_are_bounded_with_or_without_content_length(api: httpx.Client) -> None:
    before = stored(api)
    big = b'{"id": "/big", "cmd": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    assert post_raw(api, "/v2/apps", big).status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b'{"id": "/big", "cmd": "'
        for _ in range(40):  # 40 MiB offered; refused after 16
            yield b"x" * (1024 * 1024)
        yield b'"}'

    try:
        answer = api.post("/v2/apps", content=chunks(), headers={"content-type": "application/json"})
        assert answer.status_code == 413
    except httpx.TransportError:
        pass  # the server answered 413 and closed while the client was still sending
    assert stored(api) == before


def test_query_parameters_are_checked(api: httpx.Client) -> None:
    before = stored(api)
    answer = api.post("/v2/apps", params={"force": "maybe"}, json={**APP, "id": "/q"})
    assert answer.status_code == 400 and "force" in answer.json()["message"]
    assert api.get("/v2/apps", params={"cmd": "x" * 10_000}).status_code == 414
    assert stored(api) == before


def test_unsupported_definitions_are_refused_naming_the_field(api: httpx.Client) -> None:
    before = stored(api)
    for body, path in [({"container": {"type": "APPC"}}, "/container/type"),
                       ({"networks": [{"mode": "overlay"}]}, "/networks(0)/mode"),
                       ({"ipAddress": {}}, "/ipAddress/networkName"),
                       ({"ipAddress": {"networkName": "n", "groups": ["g"]}}, "/ipAddress/groups"),
                       ({"container": {"docker": {"image": "x", "parameters": [{"key": "a", "value": "b"}]}}},
                        "/container/docker/parameters"),
                       ({"container": {"docker": {"image": "x", "privileged": True}}}, "/container/docker/privileged"),
                       ({"container": {"type": "MESOS", "docker": {"image": "x", "pullConfig": {"secret": "s"}}}},
                        "/container/docker/pullConfig"),
                       ({"container": {"type": "MESOS", "volumes": [
                           {"containerPath": "data", "mode": "RW", "persistent": {"size": 10}}]}},
                        "/container/volumes(0)/persistent")]:
        answer = api.post("/v2/apps", json={**APP, "id": "/unsupported", **body})
        assert answer.status_code == 422, (body, answer.text)
        assert path in [d["path"] for d in answer.json()["details"]], answer.text
    for body, path in [({"pods": [{"id": "p"}]}, "/pods"), ({"apps": [], "scaleBy": 2}, "/scaleBy"),
                       ({"groups": [{"id": "inner", "app": []}]}, "/groups(0)/app")]:
        answer = api.post("/v2/groups", json={"id": "/unsupported", **body})
        assert answer.status_code == 422, (body, answer.text)
        assert path in [d["path"] for d in answer.json()["details"]], answer.text
    assert stored(api) == before


def seed_old_store(services_dir: Path) -> None:
    """A store as an older version left it: an app whose cmd holds a lone surrogate (R3) and
    one asking for 1e308 cpus (R2), both let in before the edge checked them."""
    version = wire.timestamp(time.time())
    app, problems = app_definition.normalise({**APP, "id": "/old"}, now_version=version)
    assert app is not None, problems
    services_dir.mkdir(parents=True)
    store = SqliteKvStore(services_dir / "services.sqlite")
    store.write([("app", "/old-surrogate", {**app, "id": "/old-surrogate", "cmd": "sleep 1000 # \ud800"}),
                 ("app", "/old-huge", {**app, "id": "/old-huge", "cpus": 1.7976931348623157e+308})])
    store.close()


def test_state_stored_by_an_older_version_loads_and_does_not_break_the_framework(tmp_path: Path) -> None:
    seed_old_store(tmp_path / "services")
    with LocalCluster(tmp_path, services=True) as cluster, \
            httpx.Client(base_url=cluster.services_url, timeout=10) as api:
        listed = api.get("/v2/apps")
        assert listed.status_code == 200, listed.text
        assert {a["id"] for a in listed.json()["apps"]} == {"/old-surrogate", "/old-huge"}
        assert api.get("/v2/groups").status_code == 200
        assert "\ufffd" in api.get("/v2/apps/old-surrogate").json()["app"]["cmd"]
        assert api.post("/v2/apps", json={**APP, "id": "/new"}).status_code == 201
        wait_until(lambda: running(api, "/new"), 20, "/new running beside an app no agent can hold")
        assert api.get("/ping").text == "pong"
        queue = api.get("/v2/queue").json()["queue"]
        assert [item["app"]["id"] for item in queue] == ["/old-huge"]
        assert cluster.logged_errors() == []


def test_ping_info_and_metrics_say_the_framework_is_connected(api: httpx.Client) -> None:
    assert api.get("/ping").status_code == 200
    connection = api.get("/v2/info", params={"embed": "connection"}).json()["connection"]
    assert connection["connected"] is True and connection["reason"] is None
    assert "connection" not in api.get("/v2/info").json()  # marathon 0.13.0 refuses unknown keys
    metrics = api.get("/metrics").json()
    assert metrics["gauges"]["marathon.mesos.connected.gauge"] == {"value": 1}
    assert metrics["counters"]["marathon.mesos.disconnections.counter"] == {"count": 0}


def test_absent_groups_are_404_and_groups_implied_by_an_app_exist(api: httpx.Client) -> None:
    before = stored(api)
    assert api.delete("/v2/groups/nowhere").status_code == 404
    assert api.put("/v2/groups/nowhere", json={"scaleBy": 2}).status_code == 404
    assert api.get("/v2/groups/nowhere/versions").status_code == 404
    assert stored(api) == before
    assert api.post("/v2/apps", json={**APP, "id": "/implied/deep/a", "instances": 0}).status_code == 201
    assert api.get("/v2/groups/implied/versions").status_code == 200
    assert api.put("/v2/groups/implied/deep", json={"scaleBy": 1}, params={"force": "true"}).status_code == 200
    assert api.delete("/v2/groups/implied", params={"force": "true"}).status_code == 200
    assert api.get("/v2/groups/implied").status_code == 404


def test_embed_values_an_endpoint_does_not_know_are_refused_naming_them(api: httpx.Client) -> None:
    """Marathon drops an unknown embed silently (a typo returns less than asked, unnoticed)."""
    assert api.post("/v2/apps", json={**APP, "id": "/embedded/a", "instances": 0}).status_code == 201
    for path, known in [("/v2/apps", "apps.taskStats"), ("/v2/apps/embedded/a", "app.readiness"),
                        ("/v2/apps/embedded/*", "app.tasks"), ("/v2/groups", "group.apps.tasks"),
                        ("/v2/queue", "lastUnusedOffers"), ("/v2/deployments", "stall"), ("/v2/info", "connection")]:
        assert api.get(path, params={"embed": known}).status_code == 200, (path, known)
        answer = api.get(path, params={"embed": [known, "apps.taks"]})
        assert answer.status_code == 400 and "'apps.taks'" in answer.json()["message"], (path, answer.text)
    for name in ("tasks", "counts", "deployments", "readiness", "lastTaskFailure", "failures", "taskStats"):
        for prefix in ("app.", "apps.", ""):  # every form marathon-python and marathon-lb send
            assert api.get("/v2/apps", params={"embed": prefix + name}).status_code == 200, prefix + name
    assert api.get("/v2/groups", params={"embed": ["group.groups", "group.apps", "group.pods"]}).status_code == 200
    group = api.get("/v2/groups/embedded", params={"embed": "group.apps.tasks"}).json()
    assert group["apps"][0]["tasks"] == [], "the apps of a group embed what group.apps.* names"
    assert "tasks" not in api.get("/v2/groups/embedded").json()["apps"][0]
    assert api.delete("/v2/groups/embedded", params={"force": "true"}).status_code == 200


def test_unknown_task_statuses_and_event_types_are_refused_naming_them(api: httpx.Client) -> None:
    for params in ({"status": "running"}, {"status": "RUNNING"}, {"status[]": ["staging", "killing"]}):
        assert api.get("/v2/tasks", params=params).status_code == 200, params
    answer = api.get("/v2/tasks", params={"status": ["running", "runing"]})
    assert answer.status_code == 400 and "'runing'" in answer.json()["message"], answer.text
    for bad in ("status_updat_event", "\x00", "x" * 5000):
        answer = api.get("/v2/events", params={"event_type": ["status_update_event", bad]})
        assert answer.status_code == 400 and "event_type" in answer.json()["message"], answer.text
    assert api.get("/v2/events?event_type=%ED%A0%80").status_code == 400
    with api.stream("GET", "/v2/events", params={"event_type": "status_update_event"}) as stream:
        assert stream.status_code == 200
        assert b"event_stream_attached" in next(stream.iter_raw())


def test_a_dry_run_answers_the_steps_and_deploys_nothing(api: httpx.Client) -> None:
    """Ignoring dryRun=true (as before) deployed what the user only meant to look at."""
    assert api.post("/v2/apps", json={**APP, "id": "/dry/db", "instances": 0}).status_code == 201
    wait_until(lambda: not api.get("/v2/deployments").json(), 20, "/dry/db deployed")
    before = stored(api)
    change = {"id": "/dry", "apps": [{**APP, "id": "db", "instances": 0, "cmd": "sleep 1001"},
                                     {**APP, "id": "web", "instances": 0, "dependencies": ["db"]}]}
    answer = api.put("/v2/groups/dry", params={"dryRun": "true"}, json=change)
    assert answer.status_code == 200, answer.text
    actions = [[(a["action"], a["app"]) for a in step["actions"]] for step in answer.json()["steps"]]
    assert actions[-2:] == [[("RestartApplication", "/dry/db")], [("ScaleApplication", "/dry/web")]], actions
    scaled = api.put("/v2/groups/dry", params={"dryRun": "true"}, json={"scaleBy": 2})
    assert scaled.status_code == 200 and "steps" in scaled.json(), scaled.text
    assert api.put("/v2/groups/dry", params={"dryRun": "true"}, json={"apps": [{"id": "x"}]}).status_code == 422
    assert api.post("/v2/groups", params={"dryRun": "true"}, json={"id": "/dry2"}).status_code == 400
    assert api.put("/v2/groups/dry", params={"dryRun": "maybe"}, json=change).status_code == 400
    assert stored(api) == before and api.get("/v2/apps/dry/db").json()["app"]["cmd"] == "sleep 1000"
    assert not api.get("/v2/deployments").json()
    assert api.delete("/v2/groups/dry", params={"force": "true"}).status_code == 200
