"""Drain before kill on a live cluster (LocalCluster: master, agent and `meseta services` with real
HTTP on loopback, tasks are real processes): the test client plays the load balancer over HTTP
(the real `meseta lb` is tested on its own branch), and the load balancer API's hostile input."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meseta.testing.local_cluster import LocalCluster, clusters
from meseta.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(180)
APP = {"cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 2, "portDefinitions": [{"port": 0}],
       "labels": {"HAPROXY_GROUP": "external"}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from clusters(tmp_path_factory.mktemp("drain"), services=True)


@pytest.fixture
def api(cluster: LocalCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.services_url, timeout=10) as client:
        yield client
        for lb in client.get("/v2/loadbalancers").json()["loadBalancers"]:
            client.delete(f"/v2/loadbalancers/{lb['id']}")  # the drains of the deleted apps end: killed
        for app in client.get("/v2/apps").json()["apps"]:  # what a failed test left behind
            client.delete(f"/v2/apps{app['id']}", params={"force": "true"})
        wait_until(lambda: not client.get("/v2/deployments").json() and not client.get("/v2/tasks").json()["tasks"],
                   30, "every app of the test gone")
    assert cluster.logged_errors() == []


class Events:
    """The draining and status update events of /v2/events, read in a thread until closed."""

    def __init__(self, url: str) -> None:
        self.seen: list[dict[str, Any]] = []
        self.response: httpx.Response | None = None
        self.thread = threading.Thread(target=self._listen, args=(url,), daemon=True)
        self.thread.start()
        wait_until(lambda: self.seen, 10, "event_stream_attached")

    def _listen(self, url: str) -> None:
        params = {"event_type": ["instance_draining_event", "status_update_event", "event_stream_attached"]}
        try:
            with httpx.stream("GET", f"{url}/v2/events", params=params, timeout=httpx.Timeout(5, read=None)) as answer:
                self.response = answer
                for line in answer.iter_lines():
                    if line.startswith("data:"):
                        self.seen.append(json.loads(line[5:]))
        except (httpx.HTTPError, RuntimeError, ValueError):  # closed by close() from the test's thread
            return

    def close(self) -> None:
        """Close the stream (an open one would hold the server's shutdown for its grace time)."""
        if self.response is not None:  # shutting the socket down wakes the thread blocked reading it
            self.response.extensions["network_stream"].get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        self.thread.join(10)
        assert not self.thread.is_alive()

    def of(self, kind: str, task_id: str | None = None) -> list[dict[str, Any]]:
        return [e for e in list(self.seen) if e["eventType"] == kind and task_id in (None, e.get("taskId"))]


@pytest.fixture
def listen(cluster: LocalCluster) -> Iterator[Callable[[], Events]]:
    """Event streams for the test, closed after it (passed or not)."""
    opened: list[Events] = []

    def open_one() -> Events:
        opened.append(Events(cluster.services_url))
        return opened[-1]

    yield open_one
    for events in opened:
        events.close()


def tasks(api: httpx.Client, app_id: str) -> list[dict[str, Any]]:
    answer = api.get(f"/v2/apps{app_id}/tasks")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["tasks"])


def start(api: httpx.Client, app_id: str, **fields: Any) -> None:
    assert api.post("/v2/apps", json={**APP, "id": app_id, **fields}).status_code == 201
    wait_until(lambda: [t["state"] for t in tasks(api, app_id)] == ["TASK_RUNNING"] * 2, 30, f"{app_id} running")
    wait_until(lambda: not api.get("/v2/deployments").json(), 20, f"{app_id} deployed")


def scale_down(api: httpx.Client, app_id: str, events: Events) -> dict[str, Any]:
    """Scale to 1 and answer the draining event."""
    assert api.put(f"/v2/apps{app_id}", json={"instances": 1}).status_code == 200
    wait_until(lambda: events.of("instance_draining_event"), 15, "instance_draining_event")
    (event,) = events.of("instance_draining_event")
    return event


def test_a_scale_down_waits_for_the_lb_to_confirm_then_kills(api: httpx.Client, listen: Callable[[], Events]) -> None:
    registered = api.put("/v2/loadbalancers/it-lb", json={"groups": ["external"], "ttlSeconds": 120})
    assert registered.status_code == 200 and registered.json()["groups"] == ["external"], registered.text
    start(api, "/drained", taskKillGracePeriodSeconds=120)
    events = listen()
    event = scale_down(api, "/drained", events)
    victim = event["taskId"]
    task = next(t for t in tasks(api, "/drained") if t["id"] == victim)
    assert task["state"] == "TASK_KILLING" and "draining" not in task
    assert event["appId"] == "/drained" and event["host"] == task["host"] and event["ports"] == task["ports"]
    assert event["deadline"] > event["timestamp"]
    listed = api.get("/v2/apps", params={"embed": "apps.tasks"}).json()["apps"]
    assert any(t["state"] == "TASK_KILLING" for a in listed for t in a["tasks"])
    assert any(t["state"] == "TASK_KILLING" for t in api.get("/v2/tasks").json()["tasks"])
    assert victim in {t["id"] for t in api.get("/v2/tasks", params={"status": "killing"}).json()["tasks"]}
    assert victim not in {t["id"] for t in api.get("/v2/tasks", params={"status": "running"}).json()["tasks"]}
    time.sleep(2.0)  # two full ticks: nothing is killed while the LB has not confirmed
    assert [e["taskStatus"] for e in events.of("status_update_event", victim)] == []
    assert next(t for t in tasks(api, "/drained") if t["id"] == victim)["state"] == "TASK_KILLING"
    confirmed = api.post("/v2/loadbalancers/it-lb/drained", json={"taskIds": [victim, "nope.1"]})
    assert confirmed.status_code == 200 and confirmed.json() == {"killed": [victim]}, confirmed.text
    wait_until(lambda: "TASK_KILLED" in [e["taskStatus"] for e in events.of("status_update_event", victim)], 30,
               "the drained task killed")
    wait_until(lambda: victim not in [t["id"] for t in tasks(api, "/drained")], 10, "the killed task gone")
    wait_until(lambda: not api.get("/v2/deployments").json(), 20, "the scale-down done")
    assert api.delete("/v2/apps/drained", params={"force": "true"}).status_code == 200


def test_without_confirmation_the_kill_comes_at_the_deadline(api: httpx.Client, listen: Callable[[], Events]) -> None:
    assert api.put("/v2/loadbalancers/silent", json={"groups": ["*"], "ttlSeconds": 120}).status_code == 200
    start(api, "/deadline", taskKillGracePeriodSeconds=4)
    events = listen()
    event = scale_down(api, "/deadline", events)
    victim = event["taskId"]
    time.sleep(2.0)
    assert events.of("status_update_event", victim) == [], "still within the deadline"
    wait_until(lambda: "TASK_KILLED" in [e["taskStatus"] for e in events.of("status_update_event", victim)], 30,
               "killed at the deadline")
    wait_until(lambda: victim not in [t["id"] for t in tasks(api, "/deadline")], 10, "the killed task gone")
    assert api.delete("/v2/apps/deadline", params={"force": "true"}).status_code == 200


def test_the_lb_api_refuses_bad_input_naming_the_field_and_changes_nothing(api: httpx.Client) -> None:
    assert api.put("/v2/loadbalancers/a", json={"groups": ["g"], "ttlSeconds": 30}).status_code == 200
    before = api.get("/v2/loadbalancers").json()
    for body, path in (({"groups": [], "ttlSeconds": 5}, "/groups"), ({"groups": ["g"]}, "/ttlSeconds"),
                       ({"groups": ["g"], "ttlSeconds": 3601}, "/ttlSeconds"), ({"groups": [1], "ttlSeconds": 5},
                                                                               "/groups(0)")):
        answer = api.put("/v2/loadbalancers/a", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["message"] == "Object is not valid"
        assert path in [d["path"] for d in answer.json()["details"]], answer.text
    answer = api.put("/v2/loadbalancers/" + "x" * 200, json={"groups": ["g"], "ttlSeconds": 5})
    assert answer.status_code == 422 and answer.json()["details"][0]["path"] == "/id"
    assert api.put("/v2/loadbalancers/a", content=b"{nope", headers={"content-type": "application/json"}
                   ).status_code == 400
    assert api.post("/v2/loadbalancers/a/drained", json={"taskIds": "x"}).status_code == 422
    assert api.post("/v2/loadbalancers/zz/drained", json={"taskIds": []}).status_code == 404
    assert api.delete("/v2/loadbalancers/zz").status_code == 404
    assert api.get("/v2/loadbalancers").json() == before
    assert api.delete("/v2/loadbalancers/a").status_code == 200
    assert api.get("/v2/loadbalancers").json() == {"loadBalancers": []}


JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 5000) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                max_size=4), max_leaves=12)
BODIES = JSON | st.fixed_dictionaries({"groups": JSON, "ttlSeconds": JSON}) | st.fixed_dictionaries(
    {"taskIds": JSON})
IDS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40) | st.just("ok-lb")


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(lb_id=IDS, body=BODIES, verb=st.sampled_from(["PUT", "DELETE", "POST"]))
def test_fuzzed_lb_calls_never_fail_the_server(api: httpx.Client, lb_id: str, body: Any, verb: str) -> None:
    path = f"/v2/loadbalancers/{quote(lb_id, safe='')}" + ("/drained" if verb == "POST" else "")
    answer = api.request(verb, path, json=body)
    assert answer.status_code in (200, 400, 404, 405, 422), (answer.status_code, answer.text)
    assert api.get("/v2/loadbalancers").status_code == 200


def test_marathon_clients_kill_task_drains_and_wipe_does_not(api: httpx.Client, cluster: LocalCluster,
                                                             listen: Callable[[], Events]) -> None:
    """marathon 0.13.0 parses every task listing while one drains (TASK_KILLING, no key of our own);
    ?wipe=true kills at once, also a task already draining."""
    marathon = pytest.importorskip("marathon")
    client = marathon.MarathonClient(cluster.services_url)
    assert api.put("/v2/loadbalancers/k", json={"groups": ["external"], "ttlSeconds": 120}).status_code == 200
    start(api, "/killed", taskKillGracePeriodSeconds=120)
    first, second = (t["id"] for t in tasks(api, "/killed"))
    events = listen()
    killed = client.kill_task("/killed", first)
    assert killed.id == first
    wait_until(lambda: events.of("instance_draining_event", first), 15, "the kill drains")
    assert next(t for t in tasks(api, "/killed") if t["id"] == first)["state"] == "TASK_KILLING"
    assert first in {t.id for t in client.list_tasks("/killed")}  # its models refuse unknown keys
    wiped = api.delete(f"/v2/apps/killed/tasks/{second}", params={"wipe": "true"})
    assert wiped.status_code == 200, wiped.text
    wait_until(lambda: "TASK_KILLED" in [e["taskStatus"] for e in events.of("status_update_event", second)], 30,
               "the wiped task killed without a drain")
    assert events.of("instance_draining_event", second) == []
    assert api.delete(f"/v2/apps/killed/tasks/{first}", params={"wipe": "true"}).status_code == 200
    wait_until(lambda: "TASK_KILLED" in [e["taskStatus"] for e in events.of("status_update_event", first)], 30,
               "a wipe ends a drain under way")
    wait_until(lambda: [t["state"] for t in tasks(api, "/killed")] == ["TASK_RUNNING"] * 2, 30, "replaced")
    third = tasks(api, "/killed")[0]["id"]
    forced = api.delete(f"/v2/apps/killed/tasks/{third}", params={"scale": "true", "force": "true"})
    assert forced.status_code == 200, forced.text
    wait_until(lambda: "TASK_KILLED" in [e["taskStatus"] for e in events.of("status_update_event", third)], 30,
               "a forced kill-and-scale kills without a drain")
    assert events.of("instance_draining_event", third) == []
    assert api.get("/v2/apps/killed").json()["app"]["instances"] == 1
    assert api.delete("/v2/apps/killed", params={"force": "true"}).status_code == 200


HOSTILE_BODIES = [
    b'{"groups": ["g"], "ttlSeconds": NaN}', b'{"groups": ["g"], "ttlSeconds": 1e400}',
    b'{"groups": ["\\ud800"], "ttlSeconds": 5}', b'{"groups": ["g"], "ttlSeconds": 5.5e18}',
    b'{"groups": ' + b"[" * 5000 + b"]" * 5000 + b', "ttlSeconds": 5}',
    b'{"groups": ["' + b"g" * (3 << 20) + b'"], "ttlSeconds": 5}',
]


def test_hostile_lb_bodies_are_refused_and_change_nothing(api: httpx.Client) -> None:
    """Non-finite and huge numbers, a lone surrogate, deep nesting and a huge body: 4xx, nothing stored."""
    before = api.get("/v2/loadbalancers").json()
    for body in HOSTILE_BODIES:
        for method, path in (("PUT", "/v2/loadbalancers/h"), ("POST", "/v2/loadbalancers/h/drained")):
            answer = api.request(method, path, content=body, headers={"Content-Type": "application/json"})
            assert 400 <= answer.status_code < 500, (body[:60], answer.status_code, answer.text[:200])
    assert api.get("/v2/loadbalancers").json() == before
