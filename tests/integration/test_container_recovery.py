"""Containers with images and networks survive an agent restart: separate ``meseta master`` and
``meseta agent`` processes, a loopback docker-registry, a CNI bridge network of the test's own and a
checkpointing pymesos framework. A bridged busybox httpd keeps answering while its agent is down
(``kill -9``), is recovered with the same address, and its network goes when it is killed; a
container whose process died meanwhile ends and is detached by recovery; a graceful stop (SIGTERM)
leaves nothing behind."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meseta.agent.containerizer.cni import CniIsolator, default_state_dir, netns_name
from meseta.runtime.serve import free_port
from meseta.testing.bridge_network import PLUGINS, BridgeNetwork, answer, cni_available
from meseta.testing.clusters import FAST_ALLOCATION, start_daemon, wait_for_agents
from meseta.testing.images import BUSYBOX, docker_archive
from meseta.testing.processes import processes_with, stop_processes
from meseta.testing.pymesos_recorder import Recorder, driver_for, task
from meseta.testing.registry import LocalRegistry
from meseta.testing.waiting import wait_until

pytestmark = [
    pytest.mark.integration, pytest.mark.timeout(240),
    pytest.mark.skipif(not cni_available() or not BUSYBOX.exists(),
                       reason="needs root, containernetworking-plugins and busybox-static"),
]

SERVE = "mkdir -p /srv && echo up > /srv/index.html && exec httpd -f -p 80 -h /srv"


class Restartable:
    """A master and one agent (registry + CNI flags) that the test kills and starts again."""

    def __init__(self, tmp: Path, registry: LocalRegistry, network: BridgeNetwork, marker: str) -> None:
        self.marker = marker
        self.network_config_dir = network.config_dir
        port, self.agent_port = free_port(), free_port()
        self.master = f"127.0.0.1:{port}"
        self.work_dir = tmp / "agent"
        self.log = tmp / "agent.log"
        self.agent_args = ["agent", "--master", self.master, "--port", str(self.agent_port), "--work-dir",
                           str(self.work_dir), "--no-switch-user", "--resources",
                           "cpus:2;mem:1024;disk:256;ports:[31000-31099]", "--docker-registry", registry.url,
                           "--network-cni-config-dir", str(network.config_dir),
                           "--network-cni-plugins-dir", str(PLUGINS)]
        self.procs = [start_daemon(["master", "--port", str(port), "--work-dir", str(tmp / "master"),
                                    *FAST_ALLOCATION], tmp / "master.log"),
                      start_daemon(self.agent_args, self.log)]

    def __enter__(self) -> Restartable:
        try:
            wait_for_agents(self.master, 1)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        stop_processes(self.procs)
        # after a failure: detach whatever the agent left, as its recovery would (nothing, after a pass)
        network = CniIsolator(self.network_config_dir, PLUGINS, default_state_dir(self.work_dir))
        asyncio.run(network.recover(set()))
        for pid in processes_with(self.marker):  # after a failure: tasks the agent did not stop
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue

    def signal_agent(self, signum: int) -> None:
        os.kill(self.procs[-1].pid, signum)  # the agent only: tasks live in their own sessions
        self.procs[-1].wait(90)  # a bound, not a speed check: a stop kills with grace and runs each CNI DEL

    def start_agent(self) -> None:
        self.procs.append(start_daemon(self.agent_args, self.log))

    def agent_tasks(self) -> dict[str, str]:
        state = httpx.get(f"http://127.0.0.1:{self.agent_port}/state", timeout=5).json()
        return {t["id"]: t["state"] for f in state["frameworks"] for e in f["executors"] for t in e["tasks"]}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[LocalRegistry, BridgeNetwork, str]]:
    marker = f"sleep 3000.{uuid.uuid4().int % 10**6:06d}"  # busybox sleeps a fraction too
    with LocalRegistry(tmp_path) as registry, BridgeNetwork(tmp_path) as network:
        registry.push(docker_archive(tmp_path / "web.tar", tag="web:1", config={
            "Cmd": ["sh", "-c", SERVE], "Env": ["PATH=/bin"], "ExposedPorts": {"80/tcp": {}}}), "web:1")
        yield registry, network, marker


def _port(offer: dict[str, Any]) -> int:
    return int(next(r for r in offer["resources"] if r["name"] == "ports")["ranges"]["range"][0]["begin"])


def _web(task_id: str, offer: dict[str, Any], port: int) -> dict[str, Any]:
    container = {"type": "DOCKER", "docker": {"image": "web:1", "network": "BRIDGE", "port_mappings": [
        {"host_port": port, "container_port": 80, "protocol": "tcp"}]}}
    web = task(task_id, offer, command={"shell": False}, container=container)
    web["resources"].append({"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": port, "end": port}]}})
    return web


def _sleeper(task_id: str, offer: dict[str, Any], marker: str) -> dict[str, Any]:
    container = {"type": "DOCKER", "docker": {"image": "web:1", "network": "BRIDGE"}}
    return task(task_id, offer, command={"value": f"exec {marker}"}, container=container)


def _ip(status: dict[str, Any]) -> str:
    return str(status["container_status"]["network_infos"][0]["ip_addresses"][0]["ip_address"])


def _running(recorder: Recorder, task_id: str) -> dict[str, Any]:
    recorder.wait(lambda: "TASK_RUNNING" in recorder.states(task_id), 60, f"{task_id} running")
    with recorder.lock:
        return next(u for u in recorder.updates if u["task_id"]["value"] == task_id and u["state"] == "TASK_RUNNING")


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _veths(bridge: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True).stdout
    return [line.split(": ")[1].split("@")[0] for line in out.splitlines() if line.strip()]


def _leaks(network: BridgeNetwork, *container_ids: str) -> list[str]:
    """network.leaks() with the namespaces narrowed to these containers' (other tests on the host make theirs)."""
    mine = {f"netns: {netns_name(c)}" for c in container_ids}
    return [leak for leak in network.leaks() if not leak.startswith("netns: ") or leak in mine]


def _of(leaks: list[str], ip: str, container_id: str) -> list[str]:
    """The leaks that belong to one container: its address (rules, lease), its id (rule comments), its netns."""
    names = (f"{ip}/", f"{ip} ", f"/{ip}", container_id, netns_name(container_id))
    return [leak for leak in leaks if any(n in leak for n in names) or leak.endswith(ip)]


def test_a_bridged_container_survives_a_killed_agent_and_a_dead_one_is_detached(
        tmp_path: Path, world: tuple[LocalRegistry, BridgeNetwork, str]) -> None:
    registry, network, marker = world
    recorder = Recorder()
    with Restartable(tmp_path, registry, network, marker) as cluster, \
            driver_for(cluster.master, recorder, checkpoint=True, failover_timeout=600) as driver:
        offer = recorder.take_offers()[0]
        port = _port(offer)
        driver.launchTasks(offer["id"], [_web("web", offer, port), _sleeper("doomed", offer, marker)],
                           filters={"refuse_seconds": 0})
        web, doomed = _running(recorder, "web"), _running(recorder, "doomed")
        ip, doomed_ip = _ip(web), _ip(doomed)
        web_id = web["container_status"]["container_id"]["value"]
        doomed_id = doomed["container_status"]["container_id"]["value"]
        subnet = ipaddress.ip_network(f"{network.subnet_prefix}0/24")
        assert ipaddress.ip_address(ip) in subnet and ipaddress.ip_address(doomed_ip) in subnet and ip != doomed_ip
        wait_until(lambda: answer(f"http://{ip}:80/") == "up\n", 20, "web at its own address")
        assert answer(f"http://127.0.0.1:{port}/") == "up\n"
        assert netns_name(doomed_id) in _netns() and len(_veths(network.bridge)) == 2
        time.sleep(0.5)  # the RUNNING acknowledgements reach the agent

        cluster.signal_agent(signal.SIGKILL)
        sleepers = processes_with(marker)
        assert sleepers, "the doomed container's process runs on without its agent"
        for pid in sleepers:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not processes_with(marker), 10, "the doomed process gone")
        for _ in range(3):  # with nobody managing it, web keeps answering on both addresses
            assert answer(f"http://{ip}:80/") == "up\n"
            assert answer(f"http://127.0.0.1:{port}/") == "up\n"
            time.sleep(0.5)

        cluster.start_agent()
        ended = recorder.final("doomed", 60)
        assert ended["state"] in ("TASK_FAILED", "TASK_KILLED"), ended
        wait_until(lambda: cluster.agent_tasks().get("web") == "TASK_RUNNING", 30, "web recovered on the agent")

        def doomed_detached() -> bool:
            return (netns_name(doomed_id) not in _netns() and len(_veths(network.bridge)) == 1
                    and not _of(_leaks(network, doomed_id), doomed_ip, doomed_id))
        wait_until(doomed_detached, 30, "the dead container detached by recovery",
                   describe=lambda: (_veths(network.bridge), _of(_leaks(network, doomed_id), doomed_ip, doomed_id)))
        assert answer(f"http://{ip}:80/") == "up\n" and answer(f"http://127.0.0.1:{port}/") == "up\n"

        before = len(recorder.updates)
        driver.reconcileTasks([{"task_id": {"value": "web"}, "agent_id": offer["agent_id"]}])
        recorder.wait(lambda: len(recorder.updates) > before, 20, "reconciliation")
        with recorder.lock:
            reconciled = [u for u in recorder.updates[before:] if u["task_id"]["value"] == "web"]
        assert reconciled and reconciled[-1]["state"] == "TASK_RUNNING", reconciled

        driver.killTask({"value": "web"})  # the recovered container can still be killed ...
        killed = recorder.final("web")
        assert killed["state"] == "TASK_KILLED", killed
        assert _ip(killed) == ip  # ... and its last status still names the address it had before the restart
        wait_until(lambda: _leaks(network, web_id, doomed_id) == [], 30, "nothing of either container left",
                   describe=lambda: _leaks(network, web_id, doomed_id))
        overlays = cluster.work_dir / "provisioner" / "containers"
        wait_until(lambda: not any(overlays.iterdir()), 10, "both containers' overlays deleted",
                   describe=lambda: list(overlays.iterdir()))


def test_a_graceful_agent_stop_leaves_no_network_behind(
        tmp_path: Path, world: tuple[LocalRegistry, BridgeNetwork, str]) -> None:
    registry, network, marker = world
    recorder = Recorder()
    with Restartable(tmp_path, registry, network, marker) as cluster, \
            driver_for(cluster.master, recorder, checkpoint=True, failover_timeout=600) as driver:
        offer = recorder.take_offers()[0]
        port = _port(offer)
        driver.launchTasks(offer["id"], [_web("web", offer, port), _sleeper("sleeper", offer, marker)],
                           filters={"refuse_seconds": 0})
        web, sleeper = _running(recorder, "web"), _running(recorder, "sleeper")
        ip, ids = _ip(web), [s["container_status"]["container_id"]["value"] for s in (web, sleeper)]
        wait_until(lambda: answer(f"http://{ip}:80/") == "up\n", 20, "web at its own address")
        assert {f"netns: {netns_name(i)}" for i in ids} <= set(_leaks(network, *ids)), "the check sees them"

        cluster.signal_agent(signal.SIGTERM)
        assert not processes_with(marker)
        assert answer(f"http://127.0.0.1:{port}/") is None
        assert _leaks(network, *ids) == []
        assert not any((cluster.work_dir / "provisioner" / "containers").iterdir())
