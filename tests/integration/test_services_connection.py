"""A services scheduler that loses the master says so and comes back by itself (issue 14, point 4).

Real processes: `meseta master` (SQLite registry under its work dir), `meseta agent` and
`meseta services`. The master is killed and started again on the same port: meanwhile /ping is
503 with the reason, /v2/info?embed=connection and /metrics say disconnected, the log says it;
afterwards the framework subscribes again with its id and an app created meanwhile launches."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.client.scheduler import Scheduler, SchedulerDriver
from meseta.runtime.serve import free_port
from meseta.testing.clusters import start_daemon, wait_for_agents
from meseta.testing.local_cluster import LocalCluster
from meseta.testing.processes import stop_processes
from meseta.testing.waiting import async_wait_until, wait_until

pytestmark = pytest.mark.timeout(180)
APP = {"cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1}


def start_master(base: Path, port: int) -> subprocess.Popen[bytes]:
    return start_daemon(["master", "--port", str(port), "--work-dir", str(base / "master"),
                         "--allocation-interval", "0.2"], base / f"master-{len(list(base.glob('master-*.log')))}.log")


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[dict[str, Any]]:
    port, services_port = free_port(), free_port()
    master = f"127.0.0.1:{port}"
    procs = {"master": start_master(tmp_path, port),
             "agent": start_daemon(["agent", "--master", master, "--port", str(free_port()),
                                    "--work-dir", str(tmp_path / "agent"), "--no-switch-user",
                                    "--resources", "cpus:2;mem:1024;disk:1024;ports:[31000-31100]"],
                                   tmp_path / "agent.log"),
             "services": start_daemon(["services", "--master", master, "--port", str(services_port),
                                       "--work-dir", str(tmp_path / "services")], tmp_path / "services.log")}
    try:
        wait_for_agents(master, 1)
        yield {"procs": procs, "port": port, "url": f"http://127.0.0.1:{services_port}", "base": tmp_path}
    finally:
        stop_processes(list(procs.values()))


def ping(url: str) -> httpx.Response | None:
    try:
        return httpx.get(f"{url}/ping", timeout=2)
    except httpx.HTTPError:
        return None


def running(url: str, app_id: str) -> bool:
    response = httpx.get(f"{url}/v2/apps{app_id}", timeout=5)
    return response.status_code == 200 and response.json()["app"]["tasksRunning"] >= 1


def connection(url: str) -> dict[str, Any]:
    info: dict[str, Any] = httpx.get(f"{url}/v2/info", params={"embed": "connection"}, timeout=5).json()
    return info["connection"]  # type: ignore[no-any-return]


def test_master_killed_and_restarted_services_reports_and_reconnects(processes: dict[str, Any]) -> None:
    url, procs, base = processes["url"], processes["procs"], processes["base"]
    wait_until(lambda: (r := ping(url)) is not None and r.status_code == 200, 30, "services subscribed (/ping 200)")
    framework_id = httpx.get(f"{url}/v2/info", timeout=5).json()["frameworkId"]
    assert httpx.post(f"{url}/v2/apps", json={**APP, "id": "/before"}, timeout=5).status_code == 201
    wait_until(lambda: running(url, "/before"), 30, "/before running")

    procs["master"].send_signal(signal.SIGKILL)
    procs["master"].wait(10)
    wait_until(lambda: (r := ping(url)) is not None and r.status_code == 503, 30, "/ping 503 without a master")
    answer = ping(url)
    assert answer is not None and answer.text.startswith("not connected to Mesos: "), answer and answer.text
    state = connection(url)
    assert state["connected"] is False and state["reason"] and state["since"], state
    metrics = httpx.get(f"{url}/metrics", timeout=5).json()
    assert metrics["gauges"]["marathon.mesos.connected.gauge"] == {"value": 0}
    assert metrics["counters"]["marathon.mesos.disconnections.counter"]["count"] >= 1
    assert "disconnected from the master" in (base / "services.log").read_text()
    assert httpx.post(f"{url}/v2/apps", json={**APP, "id": "/meanwhile"}, timeout=5).status_code == 201

    procs["master"] = start_master(base, processes["port"])
    wait_until(lambda: (r := ping(url)) is not None and r.status_code == 200, 60, "services subscribed again")
    assert connection(url)["connected"] is True
    assert httpx.get(f"{url}/v2/info", timeout=5).json()["frameworkId"] == framework_id
    wait_until(lambda: running(url, "/meanwhile"), 60, "/meanwhile (created while disconnected) running")
    assert running(url, "/before")
    assert "Traceback" not in (base / "services.log").read_text()


class RaisingOnce(Scheduler):
    """A framework whose first offers callback raises (as ServicesMachine.offers did on 1e308 cpus)."""

    def __init__(self) -> None:
        self.subscriptions = 0
        self.raised = False

    async def registered(self, driver: SchedulerDriver, framework_id: str, master_info: dict[str, Any]) -> None:
        self.subscriptions += 1

    async def reregistered(self, driver: SchedulerDriver, master_info: dict[str, Any]) -> None:
        self.subscriptions += 1

    async def resource_offers(self, driver: SchedulerDriver, offers: list[dict[str, Any]]) -> None:
        if not self.raised:
            self.raised = True
            raise OverflowError("cannot convert float infinity to integer")
        await driver.decline([o["id"]["value"] for o in offers])


async def test_a_raising_callback_is_logged_and_the_driver_subscribes_again(tmp_path: Path) -> None:
    with LocalCluster(tmp_path) as cluster:
        scheduler = RaisingOnce()
        driver = SchedulerDriver(scheduler, {"user": "root", "name": "raising", "failover_timeout": 60}, cluster.master)
        await driver.start()
        try:
            await async_wait_until(lambda: scheduler.raised and scheduler.subscriptions >= 2 and driver.connected,
                                   20, "a second subscription after the raising callback")
        finally:
            await driver.stop()
        logged = cluster.logged_errors()
        assert len(logged) == 1 and "scheduler callback failed" in logged[0] and "OverflowError" in logged[0], logged


class Refused(Scheduler):
    def __init__(self) -> None:
        self.errors: list[str] = []

    async def error(self, driver: SchedulerDriver, message: str) -> None:
        self.errors.append(message)


async def test_a_removed_framework_is_refused_for_good_and_the_driver_says_why(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    info = {"user": "root", "name": "removed", "failover_timeout": 60}
    with LocalCluster(tmp_path) as cluster:
        first = SchedulerDriver(Scheduler(), info, cluster.master)
        await first.start()
        await async_wait_until(lambda: first.connected, 20, "the first subscription")
        await first.stop()  # TEARDOWN: the master removes the framework
        scheduler = Refused()
        again = SchedulerDriver(scheduler, {**info, "id": {"value": first.framework_id}}, cluster.master)
        await again.start()
        try:
            await asyncio.wait_for(again.join(), 20)  # run() ends: refused for good, no retry
        finally:
            await again.stop()
        assert scheduler.errors == ["Framework has been removed"]
        assert not again.connected and again.last_error == "the master says: Framework has been removed"
        assert "refused by the master for good (the master says: Framework has been removed)" in caplog.text
        assert cluster.logged_errors() == []
