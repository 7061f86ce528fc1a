"""`meseta services` driven by the unmodified marathon 0.13.0 client, over a real master, agent
and processes: the calls marathon-python makes, and the answers it parses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.runtime.serve import free_port
from meseta.testing.clusters import DEFAULT_AGENT_RESOURCES, services_cluster, start_daemon
from meseta.testing.processes import stop_processes
from meseta.testing.services_api import deployed, pings, remove_all_apps
from meseta.testing.waiting import wait_until

marathon = pytest.importorskip("marathon")
from marathon import MarathonClient  # noqa: E402
from marathon.exceptions import MarathonHttpError, NotFoundError  # noqa: E402
from marathon.models import MarathonApp  # noqa: E402

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with services_cluster(tmp_path_factory.mktemp("services")) as (_, url):
        yield url


@pytest.fixture
def client(services: str) -> Iterator[MarathonClient]:
    c = MarathonClient(services)
    yield c
    remove_all_apps(c)


def test_info_leader_ping_and_metrics(client: MarathonClient, services: str) -> None:
    info = client.get_info()
    assert info.name == "marathon" and info.elected and info.leader == services.removeprefix("http://")
    assert client.get_leader()["leader"] == info.leader
    assert client.ping() in (b"pong", "pong", b'"pong"')
    assert "gauges" in client.get_metrics()


def test_create_scale_update_restart_rollback_delete(client: MarathonClient) -> None:
    created = client.create_app("web", MarathonApp(cmd="sleep 3600", cpus=0.1, mem=16, instances=3,
                                                    labels={"team": "a"}))
    assert created.id == "/web" and len(created.deployments) == 1
    assert len(client.list_deployments()) == 1, "the deployment is visible right after the POST"
    app = deployed(client, "web", 3)
    first_version = app.version
    assert {t.host for t in app.tasks} and all(t.started_at for t in app.tasks)

    client.scale_app("web", instances=1)
    app = deployed(client, "web", 1)
    assert len(client.list_tasks("web")) == 1

    client.update_app("web", MarathonApp(cmd="sleep 3601", instances=2))
    app = deployed(client, "web", 2)
    assert app.cmd == "sleep 3601" and all(t.version == app.version for t in app.tasks)
    assert len(client.list_versions("web")) >= 3

    before = {t.id for t in app.tasks}
    client.restart_app("web")
    app = deployed(client, "web", 2)
    assert not before & {t.id for t in app.tasks}, "a restart replaces every instance"

    client.rollback_app("web", first_version)
    app = deployed(client, "web", 3)
    assert app.cmd == "sleep 3600" and client.get_version("web", first_version).cmd == "sleep 3600"

    client.delete_app("web")
    wait_until(lambda: not client.list_apps(), 30, "the app gone")
    with pytest.raises(NotFoundError):
        client.get_app("web")


def test_kill_tasks_with_and_without_scale(client: MarathonClient) -> None:
    client.create_app("killme", MarathonApp(cmd="sleep 3600", cpus=0.1, mem=16, instances=4))
    app = deployed(client, "killme", 4)
    victim = app.tasks[0].id
    client.kill_task("killme", victim, scale=True)
    app = deployed(client, "killme", 3)
    assert victim not in {t.id for t in app.tasks} and app.instances == 3
    ids = [t.id for t in app.tasks[:2]]
    assert client.kill_given_tasks(ids)
    app = wait_until(lambda: (a := client.get_app("killme", embed_tasks=True)).tasks_running == 3
                     and not set(ids) & {t.id for t in a.tasks} and a, 60, "replacements for the killed tasks")
    assert app.instances == 3
    assert {t.id for t in client.list_tasks()} >= {t.id for t in app.tasks}


def test_invalid_apps_are_422_with_details_and_nothing_changes(client: MarathonClient, services: str) -> None:
    answer = httpx.post(f"{services}/v2/apps", json={"id": "/Bad_Id", "cpus": -1, "instances": "x"})
    assert answer.status_code == 422
    paths = {d["path"] for d in answer.json()["details"]}
    assert {"/id", "/cpus", "/instances"} <= paths
    assert client.list_apps() == []
    client.create_app("ok", MarathonApp(cmd="sleep 3600", cpus=0.1, mem=16, instances=0))
    with pytest.raises(MarathonHttpError):
        client.create_app("ok", MarathonApp(cmd="sleep 1", cpus=0.1, mem=16))
    assert client.get_app("ok").cmd == "sleep 3600"


def test_queue_says_why_an_app_does_not_launch(client: MarathonClient, services: str) -> None:
    client.create_app("huge", MarathonApp(cmd="sleep 3600", cpus=0.1, mem=100_000, instances=1))
    item = wait_until(lambda: next((q for q in httpx.get(f"{services}/v2/queue").json()["queue"]
                                    if q["processedOffersSummary"]["unusedOffersCount"] > 0), None),
                      30, "offers declined")
    reasons = {r["reason"]: r["declined"] for r in item["processedOffersSummary"]["rejectSummaryLastOffers"]}
    assert reasons["InsufficientMemory"] >= 1 and item["count"] == 1
    queue = client.list_queue()
    assert queue and queue[0].app.id == "/huge"
    view = httpx.get(f"{services}/v2/apps/huge?embed=app.queue").json()["app"]
    summary = view["queue"]["processedOffersSummary"]
    assert summary["unusedOffersCount"] > 0 and summary["lastUnusedOfferAt"], "the app's view says it too"
    assert "queue" not in httpx.get(f"{services}/v2/apps/huge").json()["app"], "only when asked for"


def test_event_stream(client: MarathonClient, services: str) -> None:
    seen: list[dict[str, Any]] = []

    def listen() -> None:
        with httpx.stream("GET", f"{services}/v2/events", headers={"Accept": "text/event-stream"},
                          timeout=httpx.Timeout(5, read=30)) as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    seen.append(json.loads(line[5:]))
                    if any(e["eventType"] == "deployment_success" for e in seen):
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    wait_until(lambda: seen, 10, "event_stream_attached")
    client.create_app("evented", MarathonApp(cmd="sleep 3600", cpus=0.1, mem=16, instances=1))
    thread.join(60)
    kinds = [e["eventType"] for e in seen]
    assert kinds[0] == "event_stream_attached"
    assert {"api_post_event", "deployment_info", "status_update_event", "deployment_success"} <= set(kinds)
    update = next(e for e in seen if e["eventType"] == "status_update_event")
    assert update["appId"] == "/evented" and update["taskStatus"] in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING")
    events = marathon.models.events.EventFactory()
    for item in seen:
        events.process(item)  # every event parses with the client's own models


def test_meseta_local_runs_the_services_scheduler(tmp_path: Path) -> None:
    port, services_port = free_port(), free_port()
    proc = start_daemon(["local", "--port", str(port), "--agents", "1", "--work-dir", str(tmp_path),
                         "--agent-resources", DEFAULT_AGENT_RESOURCES, "--services-port", str(services_port),
                         "--jobs-port", "0"], tmp_path / "local.log")
    try:
        url = f"http://127.0.0.1:{services_port}"
        wait_until(lambda: pings(url), 30, "the services API")
        local = MarathonClient(url)
        local.create_app("hello", MarathonApp(cmd="sleep 3600", cpus=0.1, mem=16, instances=2))
        deployed(local, "hello", 2)
        state = httpx.get(f"http://127.0.0.1:{port}/master/state").json()
        assert [f["name"] for f in state["frameworks"]] == ["marathon"]
    finally:
        stop_processes([proc])


def test_groups_with_dependencies_deploy_in_order(client: MarathonClient, services: str) -> None:
    from marathon.models import MarathonGroup

    group = MarathonGroup(id="/shop", apps=[
        MarathonApp(id="/shop/db", cmd="sleep 3600", cpus=0.1, mem=16, instances=1),
        MarathonApp(id="/shop/web", cmd="sleep 3600", cpus=0.1, mem=16, instances=2, dependencies=["/shop/db"]),
    ])
    answer = client.create_group(group)
    plans = [d for d in httpx.get(f"{services}/v2/deployments").json() if d["id"] == answer["deploymentId"]]
    for plan in plans:  # (it may be over already)
        order = [[a["app"] for a in step["actions"] if a["action"] == "ScaleApplication"] for step in plan["steps"]]
        assert [s for s in order if s] == [["/shop/db"], ["/shop/web"]], "db is deployed before web"
    deployed(client, "/shop/db", 1)
    web = deployed(client, "/shop/web", 2)
    db_started = min(t.started_at for t in client.get_app("/shop/db", embed_tasks=True).tasks)
    assert all(t.staged_at >= db_started for t in web.tasks), "web launched only once db was running"
    assert [g.id for g in client.list_groups()] == ["/shop"]
    assert {a.id for a in client.get_group("/shop").apps} == {"/shop/db", "/shop/web"}
    client.scale_group("/shop", 2)
    deployed(client, "/shop/web", 4)

    # group versions: each change through the groups API is one; a rollback restores the apps
    versions = httpx.get(f"{services}/v2/groups/shop/versions").json()
    assert len(versions) == 2 and versions == sorted(versions, reverse=True), versions
    client.update_group("/shop", MarathonGroup(id="/shop", apps=[
        MarathonApp(id="/shop/db", cmd="sleep 3601", cpus=0.1, mem=16, instances=1)]))
    wait_until(lambda: not client.list_deployments() and {a.id for a in client.list_apps()} == {"/shop/db"},
               30, "web removed, db changed")
    then = httpx.get(f"{services}/v2/groups/shop/versions/{versions[-1]}").json()
    assert {a["id"]: a["instances"] for a in then["apps"]} == {"/shop/db": 1, "/shop/web": 2}
    answer = client.rollback_group("/shop", versions[-1])
    assert answer["deploymentId"]
    deployed(client, "/shop/web", 2)
    assert client.get_app("/shop/db").cmd == "sleep 3600", "the first version's definitions"
    assert httpx.put(f"{services}/v2/groups/shop", json={"version": "2000-01-01T00:00:00.000Z"}).status_code == 404
    client.delete_group("/shop", force=True)
    wait_until(lambda: not client.list_apps(), 30, "the group's apps gone")


def test_crash_loop_backs_off_and_the_delay_can_be_reset(client: MarathonClient, services: str) -> None:
    client.create_app("crashy", MarathonApp(cmd="sleep 0.2; exit 1", cpus=0.1, mem=16, instances=1,
                                            backoff_seconds=5, backoff_factor=2, max_launch_delay_seconds=60))

    def delayed() -> Any:
        queue = httpx.get(f"{services}/v2/queue").json()["queue"]
        item = next((q for q in queue if q["app"]["id"] == "/crashy"), None)
        return item if item and item["delay"]["timeLeftSeconds"] > 0 and not item["delay"]["overdue"] else None

    item = wait_until(delayed, 30, "the crash loop to be backed off")
    assert item["count"] == 1
    failure = client.get_app("crashy").last_task_failure
    assert failure is not None and failure.state == "TASK_FAILED"
    answer = httpx.delete(f"{services}/v2/queue//crashy/delay")
    assert answer.status_code == 204
    item = httpx.get(f"{services}/v2/queue").json()["queue"]
    assert all(q["delay"]["timeLeftSeconds"] == 0 for q in item if q["app"]["id"] == "/crashy")
    assert httpx.delete(f"{services}/v2/queue//nothing/delay").status_code == 404


def test_service_port_collisions_are_rejected(client: MarathonClient, services: str) -> None:
    first = {"id": "/ports-a", "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 0,
             "portDefinitions": [{"port": 10555, "protocol": "tcp"}]}
    assert httpx.post(f"{services}/v2/apps", json=first).status_code == 201
    second = {**first, "id": "/ports-b"}
    answer = httpx.post(f"{services}/v2/apps", json=second)
    assert answer.status_code == 422, answer.text
    assert any("10555" in e for d in answer.json()["details"] for e in d["errors"])
    assert {a.id for a in client.list_apps()} == {"/ports-a"}


def test_readiness_check_holds_the_deployment_until_the_task_is_ready(
        client: MarathonClient, services: str, tmp_path: Path) -> None:
    """busybox httpd serves a directory of the test's: /ready 404s until the test writes it."""
    www = tmp_path / "www"
    www.mkdir()
    app = {"id": "/warming", "instances": 1, "cpus": 0.1, "mem": 16,
           "cmd": f"exec busybox httpd -f -p $PORT0 -h {www}",
           "portDefinitions": [{"port": 0, "name": "http-api"}],
           "readinessChecks": [{"path": "/ready", "intervalSeconds": 2, "timeoutSeconds": 1,
                                "preserveLastResponse": True}]}
    assert httpx.post(f"{services}/v2/apps", json=app).status_code == 201

    def waiting() -> Any:
        deployments = [d for d in client.list_deployments() if "/warming" in d.affected_apps]
        results = [r for d in deployments for a in d.current_actions for r in a.readiness_check_results or []]
        return results or None

    (result,) = wait_until(waiting, 30, "a readiness result in /v2/deployments")
    assert result["ready"] is False and result["lastResponse"]["status"] == 404, result
    answer = httpx.get(f"{services}/v2/apps/warming?embed=app.readiness").json()["app"]
    assert answer["readinessCheckResults"][0]["taskId"] == result["taskId"]
    assert answer["tasksRunning"] == 1 and answer["deployments"], "running, but not ready: still deploying"

    (www / "ready").write_text("ok\n")
    deployed(client, "warming", 1, timeout=20)
    client.delete_app("warming", force=True)
