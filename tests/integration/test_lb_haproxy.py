"""`meseta lb` with a real HAProxy, real `meseta services`, master and agents, and busybox httpd tasks:
backends follow scaling through the runtime API (same HAProxy worker, no reload), a new service port or
vhost takes a seamless reload, an app with a bad label is reported while the others keep serving, and a
rolling upgrade + scale down + scale up under load fails no request."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.runtime.serve import free_port
from meseta.testing.clusters import services_cluster, start_daemon
from meseta.testing.lb_load import LbProcess, Load, lb_process
from meseta.testing.processes import processes_with, stop_processes
from meseta.testing.services_api import pings
from meseta.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(300)


def web_app(app_id: str, port: int, instances: int, version: str, **labels: str) -> dict[str, Any]:
    cmd = f"mkdir -p www && echo {version} > www/index.html && exec busybox httpd -f -p $PORT0 -h www"
    return {"id": app_id, "cmd": cmd, "cpus": 0.05, "mem": 16, "instances": instances,
            "portDefinitions": [{"port": port, "protocol": "tcp"}],
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "http", **labels},
            "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 5,
                              "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 2}],
            "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    base = tmp_path_factory.mktemp("lb")
    with services_cluster(base, agents=1) as (_, url):
        yield base, url


@pytest.fixture
def services(cluster: tuple[Path, str]) -> Iterator[str]:
    _, url = cluster
    yield url
    for app in httpx.get(f"{url}/v2/apps", timeout=10).json()["apps"]:
        httpx.delete(f"{url}/v2/apps{app['id']}", params={"force": "true"}, timeout=10)
    wait_until(lambda: not httpx.get(f"{url}/v2/apps", timeout=10).json()["apps"], 60, "apps removed")


@pytest.fixture
def lb(cluster: tuple[Path, str], services: str, tmp_path: Path) -> Iterator[LbProcess]:
    with lb_process(tmp_path, services) as running:
        yield running


def put(services: str, app: dict[str, Any]) -> None:
    response = httpx.put(f"{services}/v2/apps{app['id']}", json=app, timeout=10)
    assert response.status_code in (200, 201), response.text


def settled(services: str, app_id: str, healthy: int) -> None:
    def done() -> bool:
        app = httpx.get(f"{services}/v2/apps{app_id}", timeout=10).json()["app"]
        return app["tasksHealthy"] == healthy and app["tasksRunning"] == healthy and not app["deployments"]
    wait_until(done, 90, f"{app_id} with {healthy} healthy tasks and no deployment")


def in_rotation(lb: LbProcess, name: str, count: int) -> None:
    wait_until(lambda: len([s for s in lb.servers(name) if not s["draining"]]) == count, 30,
               f"{count} servers in {name}", describe=lb.status)


def workers(lb: LbProcess) -> list[int]:
    """The current workers' pids (``show proc`` on the master CLI, which is away while the master
    re-executes itself for a reload: asked again until it answers)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(lb.work_dir / "master.sock"))
                sock.sendall(b"show proc;quit\n")
                text = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    section, pids = "", []
    for line in text.splitlines():
        if line.startswith("#"):
            section = line
        elif section.startswith("# workers") and line.split() and line.split()[0].isdigit():
            pids.append(int(line.split()[0]))
    return pids


def bodies(url: str, n: int, **headers: str) -> set[str]:
    return {httpx.get(url, headers=headers, timeout=5).text.strip() for _ in range(n)}


def test_backends_follow_scaling_through_the_runtime_api_without_reload(services: str, lb: LbProcess) -> None:
    put(services, web_app("/web", 10101, 2, "v1"))
    settled(services, "/web", 2)
    in_rotation(lb, "web_10101", 2)
    assert bodies("http://127.0.0.1:10101/", 4) == {"v1"}
    reloads, pids = lb.status()["reloads"], workers(lb)
    assert reloads == 1  # the new frontend; from here on only slots change

    put(services, web_app("/web", 10101, 5, "v1"))
    settled(services, "/web", 5)
    in_rotation(lb, "web_10101", 5)
    put(services, web_app("/web", 10101, 1, "v1"))
    settled(services, "/web", 1)
    in_rotation(lb, "web_10101", 1)
    assert bodies("http://127.0.0.1:10101/", 4) == {"v1"}
    assert lb.status()["reloads"] == reloads and workers(lb) == pids, "scaling went through the runtime API"

    put(services, web_app("/web", 10101, 10, "v1"))  # more than the 8 slots: one reload grows them
    settled(services, "/web", 10)
    in_rotation(lb, "web_10101", 10)
    assert lb.status()["reloads"] == reloads + 1


def test_a_vhost_or_new_port_reloads_seamlessly_and_a_bad_label_is_reported(services: str, lb: LbProcess) -> None:
    put(services, web_app("/a", 10111, 1, "a1"))
    settled(services, "/a", 1)
    in_rotation(lb, "a_10111", 1)
    pids = workers(lb)
    # one connection a request: a reload must refuse or cut none (an idle keep-alive connection the old
    # worker closes can race a client's next request on it: what a reload costs, see benchmark L1)
    with Load("http://127.0.0.1:10111/", rate=50, threads=2, headers={"Connection": "close"}) as load:
        put(services, web_app("/b", 10112, 1, "b1", HAPROXY_0_VHOST="b.example.test"))
        settled(services, "/b", 1)
        in_rotation(lb, "b_10112", 1)
        put(services, web_app("/bad", 10113, 1, "x", HAPROXY_0_BALANCE="fastest"))
        put(services, web_app("/far", 30000, 1, "x"))  # outside --lb-port-range
        with socket.socket() as squatter:  # passes haproxy -c, but HAProxy cannot bind it
            squatter.bind(("127.0.0.1", 10114))
            squatter.listen()
            put(services, web_app("/busy", 10114, 1, "x"))
            wait_until(lambda: {r["appId"] for r in lb.status()["rejected"]} == {"/bad", "/far", "/busy"}, 60,
                       "rejections", describe=lb.status)
            busy = {r["appId"]: r["reason"] for r in lb.status()["rejected"]}["/busy"]
            assert bodies("http://127.0.0.1:10111/", 2) == {"a1"}
        time.sleep(1)
    assert load.failed == 0 and load.sent > 20, load.failures[:5]
    assert workers(lb) != pids, "the new frontends came with a reload"
    assert bodies(f"http://127.0.0.1:{lb.http_port}/", 2, Host="b.example.test") == {"b1"}
    assert bodies("http://127.0.0.1:10112/", 2) == {"b1"}
    reasons = {r["appId"]: r["reason"] for r in lb.status()["rejected"]}
    assert "HAPROXY_0_BALANCE" in reasons["/bad"] and "fastest" in reasons["/bad"]
    assert "--lb-port-range" in reasons["/far"]
    assert "port 10114 on 127.0.0.1 cannot be bound" in busy  # retried at the next sync
    rejected_events = {e["appId"] for e in lb.status()["events"] if e["eventType"] == "lb_app_rejected_event"}
    assert rejected_events >= {"/bad", "/far", "/busy"}
    with pytest.raises(httpx.ConnectError):
        httpx.get("http://127.0.0.1:10113/", timeout=2)
    assert bodies("http://127.0.0.1:10111/", 2) == {"a1"}


def test_rolling_upgrade_scale_down_and_up_under_load_fail_no_request(services: str, lb: LbProcess) -> None:
    put(services, web_app("/roll", 10121, 5, "v1"))
    settled(services, "/roll", 5)
    in_rotation(lb, "roll_10121", 5)
    with Load("http://127.0.0.1:10121/", rate=150, threads=6) as load:
        time.sleep(1)
        put(services, web_app("/roll", 10121, 5, "v2"))
        settled(services, "/roll", 5)
        put(services, web_app("/roll", 10121, 2, "v2"))
        settled(services, "/roll", 2)
        put(services, web_app("/roll", 10121, 5, "v2"))
        settled(services, "/roll", 5)
        in_rotation(lb, "roll_10121", 5)
        time.sleep(1)
    assert load.sent > 500, load.sent
    assert load.failed == 0, (load.failed, load.failures[:10])
    assert set(load.bodies) == {"v1", "v2"}, load.bodies


def test_an_instance_is_drained_before_it_is_killed(services: str, lb: LbProcess) -> None:
    """Two slow requests in flight (one per instance) survive a scale down: the LB drains the doomed
    instance (no new sessions, then its sessions end), confirms, and only then is it killed."""
    slow = ("mkdir -p www/cgi-bin && echo ok > www/index.html && "
            "printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\nsleep 3\\necho slow\\n' > www/cgi-bin/slow && "
            "chmod +x www/cgi-bin/slow && exec busybox httpd -f -p $PORT0 -h www")
    app = {**web_app("/slow", 10131, 2, "v1"), "cmd": slow, "taskKillGracePeriodSeconds": 30}
    put(services, app)
    settled(services, "/slow", 2)
    in_rotation(lb, "slow_10131", 2)
    registered = httpx.get(f"{services}/v2/loadbalancers", timeout=5).json()["loadBalancers"]
    assert [r["id"] for r in registered] == [lb.status()["lbId"]] and lb.status()["drainSupported"] is True
    before = {t["id"] for t in httpx.get(f"{services}/v2/apps/slow", timeout=5).json()["app"]["tasks"]}
    results: list[str] = []

    def fetch() -> None:
        results.append(httpx.get("http://127.0.0.1:10131/cgi-bin/slow", timeout=20).text.strip())

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    put(services, {**app, "instances": 1})
    settled(services, "/slow", 1)
    for thread in threads:
        thread.join(20)
    assert results == ["slow", "slow"]
    after = {t["id"] for t in httpx.get(f"{services}/v2/apps/slow", timeout=5).json()["app"]["tasks"]}
    (killed,) = before - after
    drained = [e for e in lb.status()["events"] if e["eventType"] == "lb_drained_event"]
    assert [e["taskId"] for e in drained] == [killed] and drained[0]["servers"]


def test_meseta_local_runs_an_lb_for_the_external_group(tmp_path: Path) -> None:
    port, services_port = free_port(), free_port()
    proc = start_daemon(["local", "--port", str(port), "--agents", "1", "--work-dir", str(tmp_path),
                         "--services-port", str(services_port), "--jobs-port", "0", "--dns-port", "0", "--no-cni",
                         "--lb-port-range", "10140-10149"], tmp_path / "local.log")
    url = f"http://127.0.0.1:{services_port}"
    try:
        wait_until(lambda: pings(url), 30, "meseta local's services API")
        put(url, web_app("/local", 10141, 1, "here"))
        put(url, web_app("/outside", 10150, 1, "there"))
        settled(url, "/local", 1)
        wait_until(lambda: bodies("http://127.0.0.1:10141/", 1) == {"here"}, 30, "the app through the LB")
        settled(url, "/outside", 1)
        with pytest.raises(httpx.ConnectError):
            httpx.get("http://127.0.0.1:10150/", timeout=2)
        log = (tmp_path / "local.log").read_text()
        assert "haproxy?stats" in log and "10150 is outside the LB's --lb-port-range 10140-10149" in log
    finally:
        stop_processes([proc])
    assert not processes_with(str(tmp_path / "lb" / "haproxy.cfg")), "HAProxy stopped with meseta local"


def test_the_lb_registers_for_its_groups_and_deregisters_on_exit(services: str, tmp_path: Path) -> None:
    with lb_process(tmp_path, services, group="internal") as running:
        listed = httpx.get(f"{services}/v2/loadbalancers", timeout=5).json()["loadBalancers"]
        lb_id = running.status()["lbId"]
        assert [(r["id"], r["groups"], r["ttlSeconds"]) for r in listed] == [(lb_id, ["internal"], 15)]
    assert httpx.get(f"{services}/v2/loadbalancers", timeout=5).json()["loadBalancers"] == []


def test_reload_mode_applies_every_change_by_a_seamless_reload(services: str, tmp_path: Path) -> None:
    with lb_process(tmp_path, services, mode="reload") as running:
        put(services, web_app("/rl", 10161, 1, "r1"))
        settled(services, "/rl", 1)
        in_rotation(running, "rl_10161", 1)
        reloads = running.status()["reloads"]
        with Load("http://127.0.0.1:10161/", rate=30, threads=1) as load:
            put(services, web_app("/rl", 10161, 3, "r1"))
            settled(services, "/rl", 3)
            in_rotation(running, "rl_10161", 3)
        assert running.status()["reloads"] > reloads and bodies("http://127.0.0.1:10161/", 3) == {"r1"}
        assert load.sent > 0 and not [f for f in load.failures if "Connect" in f], load.failures
