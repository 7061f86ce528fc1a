"""The seeds' PaaS, end to end with real components: images pushed by skopeo into Debian's
docker-registry, pulled by the agent; the unmodified marathon 0.13.0 client deploys a DOCKER app on
``container/bridge`` networking (CNI bridge + portmap from containernetworking-plugins, real
iptables); each instance answers through its mapped host port and its own IP; HTTP health checks
pass through the mapping; a rolling upgrade to a new tag keeps capacity; deletion leaves nothing.
A raw v1 scheduler (pymesos) launches a DOCKER task by image name and reads its IP in TASK_RUNNING."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.testing.bridge_network import BridgeNetwork, answer, cni_available
from meseta.testing.images import BUSYBOX, docker_archive
from meseta.testing.local_cluster import LocalCluster
from meseta.testing.registry import LocalRegistry
from meseta.testing.waiting import wait_until

marathon = pytest.importorskip("marathon")
from marathon import MarathonClient  # noqa: E402
from marathon.models import MarathonApp, MarathonHealthCheck  # noqa: E402
from marathon.models.container import (  # noqa: E402
    MarathonContainer,
    MarathonContainerPortMapping,
    MarathonDockerContainer,
)

pytestmark = [
    pytest.mark.integration, pytest.mark.timeout(300),
    pytest.mark.skipif(not cni_available() or not BUSYBOX.exists(),
                       reason="needs root, containernetworking-plugins and busybox-static"),
]

SERVE = "mkdir -p /srv && echo $VERSION > /srv/index.html && exec httpd -f -p 80 -h /srv"


def web_image(tmp: Path, version: str) -> Path:
    """busybox httpd serving "<version>" on port 80, from the image's own Cmd and Env."""
    return docker_archive(tmp / f"web-{version}.tar", tag=f"web:{version}", config={
        "Cmd": ["sh", "-c", SERVE], "Env": ["PATH=/bin", f"VERSION={version}"], "ExposedPorts": {"80/tcp": {}}})


@pytest.fixture
def paas(tmp_path: Path) -> Iterator[tuple[LocalCluster, LocalRegistry, BridgeNetwork]]:
    with LocalRegistry(tmp_path) as registry, BridgeNetwork(tmp_path) as network:
        for version in ("1", "2"):
            registry.push(web_image(tmp_path, version), f"web:{version}")
        options = {"docker_registry": registry.url, **network.agent_options(cgroups=True)}
        with LocalCluster(tmp_path / "cluster", agents=1, services=True, agent_options=options) as cluster:
            yield cluster, registry, network


def _tasks(services: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{services}/v2/apps/web/tasks").json()["tasks"])


def _healthy(task: dict[str, Any]) -> bool:
    results = task.get("healthCheckResults") or []
    return task.get("state") == "TASK_RUNNING" and bool(results) and all(r.get("alive") for r in results)


def test_marathon_deploys_a_bridged_docker_app_from_the_registry(
        paas: tuple[LocalCluster, LocalRegistry, BridgeNetwork]) -> None:
    cluster, registry, network = paas
    services = cluster.services_url
    client = MarathonClient(services)
    app = MarathonApp(
        instances=3, cpus=0.1, mem=32, networks=[{"mode": "container/bridge"}],
        container=MarathonContainer(type="DOCKER", docker=MarathonDockerContainer(image="web:1"),
                                    port_mappings=[MarathonContainerPortMapping(container_port=80, host_port=0)]),
        health_checks=[MarathonHealthCheck(protocol="HTTP", port_index=0, path="/", interval_seconds=1,
                                           timeout_seconds=1, grace_period_seconds=60,
                                           max_consecutive_failures=3)],
        upgrade_strategy={"minimumHealthCapacity": 1.0, "maximumOverCapacity": 0.34})
    client.create_app("web", app)
    wait_until(lambda: sum(map(_healthy, _tasks(services))) == 3, 90, "3 healthy instances of web:1")

    subnet = ipaddress.ip_network(f"{network.subnet_prefix}0/24")
    tasks = _tasks(services)
    ips = [task["ipAddresses"][0]["ipAddress"] for task in tasks]
    assert len(set(ips)) == 3 and all(ipaddress.ip_address(ip) in subnet for ip in ips)
    for task in tasks:  # the same container port 80 three times on one agent: each its own namespace
        assert answer(f"http://127.0.0.1:{task['ports'][0]}/") == "1\n"  # through the mapped host port
        assert answer(f"http://{task['ipAddresses'][0]['ipAddress']}:80/") == "1\n"  # at its own address
    state = httpx.get(f"http://{cluster.master}/master/state").json()
    statuses = [s for f in state["frameworks"] for t in f["tasks"] for s in t["statuses"]
                if s["state"] == "TASK_RUNNING"]
    assert {s["container_status"]["network_infos"][0]["ip_addresses"][0]["ip_address"] for s in statuses} == set(ips)
    assert all(s["container_status"]["container_id"]["value"] for s in statuses)
    assert registry.blob_gets() > 0
    live = network.leaks()  # the check sees the live containers' namespaces, veths, rules and cgroups
    assert any(item.startswith("netns:") for item in live) and any(item.startswith("cgroup:") for item in live)

    healthy_counts: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            healthy_counts.append(sum(map(_healthy, _tasks(services))))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        client.update_app("web", MarathonApp(container=MarathonContainer(
            type="DOCKER", docker=MarathonDockerContainer(image="web:2"),
            port_mappings=[MarathonContainerPortMapping(container_port=80, host_port=0)])))

        def upgraded() -> bool:
            tasks = _tasks(services)
            return (len(tasks) == 3 and all(map(_healthy, tasks))
                    and all(answer(f"http://127.0.0.1:{t['ports'][0]}/") == "2\n" for t in tasks)
                    and not client.list_deployments())

        wait_until(upgraded, 120, "3 healthy instances of web:2 and no deployment")
    finally:
        stop.set()
        watcher.join()
    assert healthy_counts and min(healthy_counts) >= 3, f"capacity fell during the upgrade: {min(healthy_counts)}"

    client.delete_app("web", force=True)
    wait_until(lambda: not httpx.get(f"{services}/v2/apps").json()["apps"], 30, "the app gone")
    agent_state = f"http://127.0.0.1:{cluster.agent_ports[0]}/state"
    wait_until(lambda: not any(e["tasks"] for f in httpx.get(agent_state).json()["frameworks"]
                               for e in f["executors"]), 30, "no task left on the agent")
    wait_until(lambda: network.leaks() == [], 30, "nothing of the containers left on the host")
    assert cluster.logged_errors() == []


def test_a_raw_scheduler_launches_a_docker_task_by_image_name_and_reads_its_ip(
        paas: tuple[LocalCluster, LocalRegistry, BridgeNetwork]) -> None:
    from meseta.testing.pymesos_recorder import Recorder, driver_for, task

    cluster, _, network = paas
    recorder = Recorder()
    with driver_for(cluster.master, recorder) as driver:
        offer = recorder.take_offers()[0]
        port = next(r for r in offer["resources"] if r["name"] == "ports")["ranges"]["range"][0]["begin"]
        container = {"type": "DOCKER", "docker": {"image": "web:1", "network": "BRIDGE", "port_mappings": [
            {"host_port": port, "container_port": 80, "protocol": "tcp"}]}}
        raw = task("web-raw", offer, command={"shell": False}, container=container)
        raw["resources"].append({"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": port,
                                                                                          "end": port}]}})
        driver.launchTasks(offer["id"], [raw], filters={"refuse_seconds": 0})
        recorder.wait(lambda: "TASK_RUNNING" in recorder.states("web-raw"), 60, "web-raw running")
        running = next(u for u in recorder.updates if u["task_id"]["value"] == "web-raw"
                       and u["state"] == "TASK_RUNNING")
        ip = running["container_status"]["network_infos"][0]["ip_addresses"][0]["ip_address"]
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(f"{network.subnet_prefix}0/24")
        assert running["container_status"]["container_id"]["value"]
        wait_until(lambda: answer(f"http://{ip}:80/") == "1\n", 20, "the task at its own address")
        assert answer(f"http://127.0.0.1:{port}/") == "1\n"
        driver.killTask({"value": "web-raw"})
        assert recorder.final("web-raw")["state"] == "TASK_KILLED"
    wait_until(lambda: network.leaks() == [], 30, "nothing of the container left on the host")
