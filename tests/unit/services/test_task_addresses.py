"""A task's addresses: taken from its statuses' container_status, stored with the instance, shown
in task JSON and events, and used by readiness checks of ports without a host port."""

from __future__ import annotations

from typing import Any

from meseta.services import codec, wire
from meseta.services.effects import Emit, Store
from meseta.services.machine import ip_addresses_of

from .test_machine import NOW, launches, machine, offer, post


def status(task_id: str, state: str = "TASK_RUNNING", **container: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"task_id": {"value": task_id}, "agent_id": {"value": "S-h1"}, "state": state}
    if container:
        out["container_status"] = {"container_id": {"value": "c1"}, **container}
    return out


def overlay(ip: str, name: str | None = "overlay") -> dict[str, Any]:
    info: dict[str, Any] = {"ip_addresses": [{"protocol": "IPv4", "ip_address": ip}]}
    if name:
        info["name"] = name
    return info


def launch_one(**fields: Any) -> tuple[Any, str]:
    m = machine()
    post(m, **fields)
    (launch,) = launches(m.offers([offer("O1")], NOW))
    return m, launch.tasks[0]["task_id"]["value"]


def test_addresses_are_read_from_every_network_info_and_junk_is_skipped() -> None:
    raw = status("t", network_infos=[
        overlay("10.1.0.5"), {"ip_addresses": [{"ip_address": "fd00::5"}, {}, {"ip_address": 7}, "x"]},
        {"name": "n", "ip_addresses": "nope"}, 3])
    assert ip_addresses_of(raw) == [{"ipAddress": "10.1.0.5", "protocol": "IPv4", "networkName": "overlay"},
                                    {"ipAddress": "fd00::5", "protocol": "IPv6"}]
    assert ip_addresses_of(status("t")) == [] and ip_addresses_of({"container_status": "x"}) == []


def test_the_latest_addresses_are_stored_shown_and_sent_in_events() -> None:
    m, task_id = launch_one(id="/web", portDefinitions=[{"port": 0}])
    effects = m.status(status(task_id, network_infos=[overlay("192.0.2.7", None)]), NOW + 1)
    (event,) = [e.event for e in effects if isinstance(e, Emit) and e.event["eventType"] == "status_update_event"]
    assert event["ipAddresses"] == [{"ipAddress": "192.0.2.7", "protocol": "IPv4"}]
    (store,) = [e for e in effects if isinstance(e, Store)]
    assert store.changes[0][2]["ip_addresses"] == [{"ipAddress": "192.0.2.7", "protocol": "IPv4"}]
    app = m.root.apps["/web"]
    assert wire.task_json(m.instances[task_id], app)["ipAddresses"] == [{"ipAddress": "192.0.2.7", "protocol": "IPv4"}]
    assert m.status(status(task_id), NOW + 2) == [], "a status without container_status keeps them, tells nothing"
    moved = m.status(status(task_id, network_infos=[overlay("192.0.2.8", None)]), NOW + 3)
    assert any(isinstance(e, Store) for e in moved), "new addresses with the same state are stored"
    assert m.instances[task_id].ip_addresses[0]["ipAddress"] == "192.0.2.8"


def test_an_instance_stored_before_addresses_existed_loads_without_them() -> None:
    m, task_id = launch_one(id="/web")
    old = codec.instance_json(m.instances[task_id])
    del old["ip_addresses"]
    assert codec.instance_from_json(old).ip_addresses == []


def test_readiness_of_a_port_without_host_port_waits_for_the_ip_then_probes_the_container() -> None:
    m, task_id = launch_one(
        id="/net", networks=[{"mode": "container", "name": "a"}, {"mode": "container", "name": "b"}],
        portDefinitions=None, readinessChecks=[{"portName": "api", "path": "ready"}],
        container={"type": "MESOS", "portMappings": [{"containerPort": 8080, "name": "api", "networkNames": ["b"]}]})
    assert m.instances[task_id].host_ports == [], "no host port taken from the offer"
    m.status(status(task_id), NOW + 1)
    assert m.readiness_probes() == [], "running, but no address reported yet"
    m.status(status(task_id, network_infos=[overlay("10.0.1.2", "a"), overlay("10.0.2.2", "b")]), NOW + 2)
    (probe,) = m.readiness_probes()
    assert probe.url == "http://10.0.2.2:8080/ready", "the address on the port's own network"


def test_readiness_of_a_container_port_with_a_host_port_uses_the_agent() -> None:
    m, task_id = launch_one(
        id="/net", networks=[{"mode": "container", "name": "a"}], portDefinitions=None,
        readinessChecks=[{"portName": "api"}],
        container={"type": "MESOS", "portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "api"}]})
    m.status(status(task_id, network_infos=[overlay("10.0.1.2", "a")]), NOW + 1)
    (probe,) = m.readiness_probes()
    assert probe.url == f"http://h1:{m.instances[task_id].host_ports[0]}/"


def test_a_definition_stored_before_its_network_was_refused_stays_queued_instead_of_crashing() -> None:
    m = machine()
    post(m, id="/old", networks=[{"mode": "container", "name": "n"}], portDefinitions=None,
         container={"type": "MESOS", "portMappings": [{"containerPort": 80}]})
    del m.root.apps["/old"]["networks"][0]["name"]  # as an older version let it in
    assert launches(m.offers([offer("O1")], NOW)) == [] and m.queue == {"/old": 1}
    m.root.apps["/old"]["networks"][0]["name"] = "n"
    assert len(launches(m.offers([offer("O2")], NOW))) == 1 and m.queue == {}
