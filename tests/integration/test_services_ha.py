"""Two `meseta services --zk` instances over a real ZooKeeper: the stand-by proxies to the
leader; kill -9 the leader in the middle of a deployment and the other finishes it, with the
same framework id, without losing or duplicating a task."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meseta.runtime.serve import free_port
from meseta.testing.clusters import (
    DEFAULT_AGENT_RESOURCES,
    FAST_ALLOCATION,
    agent_resources,
    kill9,
    start_daemon,
    wait_for_agents,
)
from meseta.testing.processes import stop_processes
from meseta.testing.services_api import deployed, pings
from meseta.testing.waiting import wait_until
from meseta.testing.zookeeper import Ensemble

marathon = pytest.importorskip("marathon")
from marathon import MarathonClient  # noqa: E402
from marathon.models import MarathonApp, MarathonHealthCheck  # noqa: E402

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def cluster(tmp_path: Path, single_node: Ensemble) -> Iterator[tuple[str, list[int], list[subprocess.Popen[bytes]]]]:
    master = f"127.0.0.1:{free_port()}"
    procs = [start_daemon(["master", "--port", master.split(":")[1], "--work-dir", str(tmp_path / "m"),
                           *FAST_ALLOCATION], tmp_path / "master.log")]
    for i in range(2):
        procs.append(start_daemon(["agent", "--master", master, "--port", str(free_port()), "--work-dir",
                                   str(tmp_path / f"a{i}"), "--no-switch-user", "--resources", agent_resources(i, 2)],
                                  tmp_path / f"agent{i}.log"))
    ports = [free_port(), free_port()]
    services = [start_daemon(["services", "--master", master, "--port", str(p), "--work-dir", str(tmp_path / f"s{i}"),
                              "--zk", single_node.url("services"), "--zk-session-timeout", "2"],
                             tmp_path / f"services{i}.log")
                for i, p in enumerate(ports)]
    try:
        wait_for_agents(master, 2)
        yield master, ports, services
    finally:
        stop_processes([*procs, *services])


def _leader(ports: list[int]) -> int:
    def ask() -> list[int]:
        """[the leader's index in ``ports``] (a list: index 0 is an answer too), [] while none answers."""
        for port in ports:
            try:
                leader = httpx.get(f"http://127.0.0.1:{port}/v2/leader", timeout=2).json()["leader"]
                return [ports.index(int(leader.rsplit(":", 1)[1]))]
            except (httpx.HTTPError, ValueError, KeyError):
                continue
        return []
    return wait_until(ask, 30, "a services leader")[0]


def test_leader_killed_mid_deployment_the_other_finishes_it(
        tmp_path: Path, cluster: tuple[str, list[int], list[subprocess.Popen[bytes]]]) -> None:
    master, ports, services = cluster
    leading = _leader(ports)
    standby = 1 - leading
    wait_until(lambda: pings(f"http://127.0.0.1:{ports[standby]}"), 30, "the stand-by to answer")
    via_standby = MarathonClient(f"http://127.0.0.1:{ports[standby]}")
    assert via_standby.get_info().leader == f"127.0.0.1:{ports[leading]}", "the stand-by proxies to the leader"
    too_big = httpx.post(f"http://127.0.0.1:{ports[standby]}/v2/apps", content=b"x" * (17 * 1024 * 1024),
                         headers={"content-type": "application/json"}, timeout=30)
    assert too_big.status_code == 413 and "exceeds the limit" in too_big.json()["message"], "bounded before proxying"
    launches = tmp_path / "launches"
    # each instance turns healthy only ~3 s after it starts: the deployment is still running when we kill
    cmd = (f"echo $MESOS_TASK_ID >> {launches}; mkdir -p www; sleep 3; echo ok > www/health; "
           "exec busybox httpd -f -p $PORT0 -h www")
    check = MarathonHealthCheck(protocol="HTTP", path="/health", port_index=0, grace_period_seconds=30,
                                interval_seconds=1, timeout_seconds=1, max_consecutive_failures=3)
    via_standby.create_app("ha", MarathonApp(cmd=cmd, cpus=0.1, mem=16, instances=6, health_checks=[check]))
    wait_until(lambda: launches.exists() and len(launches.read_text().split()) >= 3, 30, "some instances started")
    framework = httpx.get(f"http://{master}/master/state").json()["frameworks"][0]["id"]
    kill9(services[leading])

    survivor = MarathonClient(f"http://127.0.0.1:{ports[standby]}")
    wait_until(lambda: pings(f"http://127.0.0.1:{ports[standby]}") and _leader([ports[standby]]) == 0, 30,
               "the stand-by to lead")
    app = deployed(survivor, "ha", 6, timeout=90)
    assert app.tasks_healthy == 6 and not survivor.list_deployments()
    started = launches.read_text().split()
    assert sorted(started) == sorted(t.id for t in app.tasks), "every task launched once, none lost"
    state = httpx.get(f"http://{master}/master/state").json()
    assert [f["id"] for f in state["frameworks"]] == [framework], "the same framework, failed over"
    assert sum(t["state"] == "TASK_RUNNING" for t in state["frameworks"][0]["tasks"]) == 6


def test_restarted_services_finds_its_apps_and_tasks(tmp_path: Path) -> None:
    master = f"127.0.0.1:{free_port()}"
    port = free_port()
    procs = [start_daemon(["master", "--port", master.split(":")[1], "--work-dir", str(tmp_path / "m"),
                           *FAST_ALLOCATION], tmp_path / "master.log"),
             start_daemon(["agent", "--master", master, "--port", str(free_port()), "--work-dir", str(tmp_path / "a"),
                           "--no-switch-user", "--resources", DEFAULT_AGENT_RESOURCES], tmp_path / "agent.log")]
    args = ["services", "--master", master, "--port", str(port), "--work-dir", str(tmp_path / "s")]
    services = start_daemon(args, tmp_path / "services.log")
    launches = tmp_path / "launches"
    try:
        wait_for_agents(master, 1)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: pings(url), 30, "services")
        client = MarathonClient(url)
        client.create_app("keep", MarathonApp(cmd=f"echo $MESOS_TASK_ID >> {launches}; exec sleep 3600",
                                              cpus=0.1, mem=16, instances=3))
        before = {t.id for t in deployed(client, "keep", 3).tasks}
        kill9(services)
        services = start_daemon(args, tmp_path / "services.log")
        wait_until(lambda: pings(url), 30, "services again")
        app = deployed(client, "keep", 3)
        assert {t.id for t in app.tasks} == before and sorted(launches.read_text().split()) == sorted(before)
        assert len(httpx.get(f"http://{master}/master/state").json()["frameworks"]) == 1
    finally:
        stop_processes([*procs, services])
