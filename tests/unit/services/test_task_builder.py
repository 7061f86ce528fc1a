"""TaskInfo translation of an app's networks, port mappings, volumes and images (spec
discovery-containers 5.7's table): normalised apps placed in a real offer by offer_matching."""

from __future__ import annotations

from typing import Any

import pytest

from meseta.services.launch.offer_matching import match
from meseta.services.launch.task_builder import port_assignments, task_info
from meseta.services.spec.app_definition import assign_service_ports, normalise

V = "2026-01-01T00:00:00.000Z"
OFFER = {"id": {"value": "O1"}, "agent_id": {"value": "S1"}, "hostname": "agent-1",
         "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 8}},
                       {"name": "mem", "type": "SCALAR", "scalar": {"value": 8192}},
                       {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31009}]}}]}


def launched(raw: dict[str, Any], *, bridge_name: str = "mesos-bridge") -> dict[str, Any]:
    """The TaskInfo of the first instance of ``raw`` placed in OFFER."""
    app, problems = normalise({"id": "/web", "cmd": "serve", "cpus": 0.1, "mem": 16, **raw}, now_version=V)
    assert app is not None, problems
    app = assign_service_ports(app, set())
    result = match(app, OFFER, [], count=1)
    assert result.used, result.reasons
    return task_info(app, result.placements[0], agent_id="S1", host="agent-1", uuid="u1", bridge_name=bridge_name)


def host_ports(info: dict[str, Any]) -> list[int]:
    ranges = [r for r in info["resources"] if r["name"] == "ports"]
    return sorted(p for r in ranges for x in r["ranges"]["range"] for p in range(x["begin"], x["end"] + 1))


def env(info: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["value"] for v in info["command"]["environment"]["variables"]}


def discovery(info: dict[str, Any]) -> list[tuple[int, str, dict[str, str]]]:
    return [(p["number"], p["protocol"], {lb["key"]: lb["value"] for lb in p["labels"]["labels"]})
            for p in info["discovery"]["ports"]["ports"]]


BRIDGE_MAPPINGS = [{"containerPort": 80, "hostPort": 0, "name": "http"},
                   {"containerPort": 0, "hostPort": 0, "protocol": "udp,tcp", "name": "dns"},
                   {"containerPort": 8125, "protocol": "udp"}]  # hostPort absent in bridge mode: 0


def test_docker_host_is_docker_network_host_and_host_ports_everywhere() -> None:
    info = launched({"container": {"type": "DOCKER", "docker": {"image": "nginx"}},
                     "portDefinitions": [{"port": 0, "name": "web"}]})
    (port,) = host_ports(info)
    assert info["container"] == {"type": "DOCKER", "docker": {"image": "nginx", "network": "HOST",
                                                              "force_pull_image": False}}
    assert env(info)["PORT0"] == env(info)["PORT_WEB"] == env(info)["PORT"] == str(port)
    assert discovery(info) == [(port, "tcp", {})], "host mode: no scope label, as Marathon sends it"
    labelled = launched({"portDefinitions": [{"port": 0, "protocol": "udp,tcp", "labels": {"VIP_0": "/a:1"}}]})
    (port,) = host_ports(labelled)
    assert discovery(labelled) == [(port, "udp", {"VIP_0": "/a:1"}), (port, "tcp", {"VIP_0": "/a:1"})]


def test_docker_bridge_maps_every_host_port_once_per_protocol() -> None:
    info = launched({"networks": [{"mode": "container/bridge"}],
                     "container": {"type": "DOCKER", "portMappings": BRIDGE_MAPPINGS,
                                   "docker": {"image": "nginx", "forcePullImage": True}}})
    ports = host_ports(info)
    assert len(ports) == 3, "hostPort 0 and an absent hostPort both take a host port in bridge mode"
    by_index = [m["host_port"] for m in info["container"]["docker"]["port_mappings"]]
    http, dns, statsd = by_index[0], by_index[1], by_index[3]
    assert sorted({http, dns, statsd}) == ports
    assert info["container"]["docker"] == {
        "image": "nginx", "network": "BRIDGE", "force_pull_image": True,
        "port_mappings": [{"host_port": http, "container_port": 80, "protocol": "tcp"},
                          {"host_port": dns, "container_port": dns, "protocol": "udp"},  # containerPort 0
                          {"host_port": dns, "container_port": dns, "protocol": "tcp"},  # = the host port
                          {"host_port": statsd, "container_port": 8125, "protocol": "udp"}]}
    assert "network_infos" not in info["container"]
    variables = env(info)
    assert [variables[f"PORT{i}"] for i in range(3)] == [str(http), str(dns), str(statsd)]
    assert variables["PORT_80"] == variables["PORT_HTTP"] == str(http)
    assert variables[f"PORT_{dns}"] == str(dns) and variables["PORT_8125"] == str(statsd)
    assert variables["PORTS"] == f"{http},{dns},{statsd}"
    assert (dns, "udp", {"network-scope": "host"}) in discovery(info)
    assert (dns, "tcp", {"network-scope": "host"}) in discovery(info)


def test_docker_container_network_is_user_with_its_network_info() -> None:
    info = launched({"networks": [{"mode": "container", "name": "overlay", "labels": {"tier": "web"}}],
                     "container": {"type": "DOCKER", "docker": {"image": "nginx"},
                                   "portMappings": [{"containerPort": 80, "name": "http"},
                                                    {"containerPort": 9090, "hostPort": 0, "name": "metrics"}]}})
    (metrics,) = host_ports(info)  # the mapping without hostPort takes none from the offer
    assert info["container"]["docker"] == {"image": "nginx", "network": "USER", "force_pull_image": False}
    assert info["container"]["network_infos"] == [
        {"name": "overlay", "ip_addresses": [{}], "labels": {"labels": [{"key": "tier", "value": "web"}]},
         "port_mappings": [{"host_port": metrics, "container_port": 9090, "protocol": "tcp"}]}]
    variables = env(info)
    assert variables["PORT0"] == variables["PORT_80"] == "80", "no host port: the container port"
    assert "PORT_HTTP" not in variables and variables["PORT_METRICS"] == variables["PORT1"] == str(metrics)
    assert variables["PORT"] == variables["PORTS"] == str(metrics), "declared container ports are not in PORTS"
    assert discovery(info) == [(80, "tcp", {"network-scope": "container", "network-name": "overlay"}),
                               (metrics, "tcp", {"network-scope": "host"})]


def test_mesos_host_sends_no_network_info_and_cached_follows_force_pull() -> None:
    info = launched({"container": {"type": "MESOS", "docker": {"image": "alpine", "forcePullImage": True}}})
    assert info["container"] == {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "alpine"},
                                                                      "cached": False}}}
    plain = launched({"container": {"type": "MESOS", "docker": {"image": "alpine"}}})
    assert plain["container"]["mesos"]["image"]["cached"] is True
    assert "container" not in launched({}), "no image, no network, no volume: no ContainerInfo"


@pytest.mark.parametrize("bridge_name", ["mesos-bridge", "cni-test"])
def test_mesos_bridge_joins_the_bridge_network_with_the_host_port_mappings(bridge_name: str) -> None:
    info = launched({"networks": [{"mode": "container/bridge", "labels": {"a": "b"}}],
                     "container": {"type": "MESOS", "portMappings": BRIDGE_MAPPINGS}}, bridge_name=bridge_name)
    (network,) = info["container"]["network_infos"]
    assert info["container"]["type"] == "MESOS" and "mesos" not in info["container"], "no image: host filesystem"
    assert network["name"] == bridge_name and network["ip_addresses"] == [{}]
    assert network["labels"] == {"labels": [{"key": "a", "value": "b"}]}
    assert [(m["container_port"], m["protocol"]) for m in network["port_mappings"]] == [
        (80, "tcp"), (network["port_mappings"][1]["host_port"], "udp"),
        (network["port_mappings"][1]["host_port"], "tcp"), (8125, "udp")]
    assert {m["host_port"] for m in network["port_mappings"]} == set(host_ports(info))


def test_mesos_container_networks_get_one_network_info_each_with_their_mappings() -> None:
    info = launched({"networks": [{"mode": "container", "name": "a"}, {"mode": "container", "name": "b"}],
                     "container": {"type": "MESOS", "docker": {"image": "alpine"}, "portMappings": [
                         {"containerPort": 80, "hostPort": 0, "networkNames": ["a"], "name": "web"},
                         {"containerPort": 81, "hostPort": 0, "networkNames": ["b"]},
                         {"containerPort": 82}]}})
    first, second = info["container"]["network_infos"]
    web, other = host_ports(info)[0], host_ports(info)[1]
    assert (first["name"], second["name"]) == ("a", "b")
    assert [m["container_port"] for m in first["port_mappings"]] == [80]
    assert [m["container_port"] for m in second["port_mappings"]] == [81]
    assert {first["port_mappings"][0]["host_port"], second["port_mappings"][0]["host_port"]} == {web, other}
    assert (82, "tcp", {"network-scope": "container", "network-name": "a"}) in discovery(info)
    assert (82, "tcp", {"network-scope": "container", "network-name": "b"}) in discovery(info)


def test_a_mapping_without_container_or_host_port_gets_a_stable_generated_container_port() -> None:
    raw = {"networks": [{"mode": "container", "name": "n"}], "container": {"type": "MESOS"}}  # default mapping
    info = launched(raw)
    assert host_ports(info) == []
    variables = env(info)
    port = int(variables["PORT0"])
    assert 1025 <= port <= 65535 and variables[f"PORT_{port}"] == str(port) and variables["PORTS"] == str(port)
    app, _ = normalise({"id": "/a", "cmd": "x", **raw}, now_version=V)
    assert app is not None
    task_id = info["task_id"]["value"]
    assert port_assignments(app, [], task_id)[0].container_port == port, "found again from the task id"


def test_volumes_become_mesos_volumes_for_both_container_types() -> None:
    volumes = [{"containerPath": "/etc/app", "hostPath": "/srv/app", "mode": "RO"},
               {"containerPath": "scratch", "hostPath": "/tmp/scratch", "mode": "RW"}]
    expected = [{"container_path": "/etc/app", "host_path": "/srv/app", "mode": "RO"},
                {"container_path": "scratch", "host_path": "/tmp/scratch", "mode": "RW"}]
    mesos = launched({"container": {"type": "MESOS", "volumes": volumes}})
    assert mesos["container"] == {"type": "MESOS", "volumes": expected}, "a volume alone makes a ContainerInfo"
    docker = launched({"container": {"type": "DOCKER", "docker": {"image": "x"}, "volumes": volumes}})
    assert docker["container"]["volumes"] == expected


def test_legacy_ip_address_launches_like_container_networking() -> None:
    info = launched({"container": {"type": "DOCKER", "docker": {"image": "nginx"}},
                     "ipAddress": {"networkName": "overlay",
                                   "discovery": {"ports": [{"number": 80, "name": "http", "protocol": "udp,tcp"}]}}})
    assert host_ports(info) == []
    assert info["container"]["docker"]["network"] == "USER"
    assert info["container"]["network_infos"] == [{"name": "overlay", "ip_addresses": [{}]}]
    assert discovery(info) == [(80, "udp", {"network-scope": "container", "network-name": "overlay"}),
                               (80, "tcp", {"network-scope": "container", "network-name": "overlay"})]


@pytest.mark.parametrize(("protocol", "expected"), [("HTTP", "host"), ("TCP", "host"), ("MESOS_HTTP", "container"),
                                                    ("MESOS_TCP", "container")])
def test_health_check_port_index_is_the_host_port_unless_a_mesos_check_in_a_container(protocol: str,
                                                                                      expected: str) -> None:
    info = launched({"networks": [{"mode": "container/bridge"}], "healthChecks": [{"protocol": protocol}],
                     "container": {"type": "MESOS", "portMappings": [{"containerPort": 8080, "hostPort": 0}]}})
    (host,) = host_ports(info)
    check = info["health_check"]
    port = (check.get("http") or check.get("tcp") or {})["port"]
    assert port == (host if expected == "host" else 8080)


def test_health_check_on_a_port_without_host_port_is_its_container_port() -> None:
    info = launched({"networks": [{"mode": "container", "name": "n"}], "healthChecks": [{"protocol": "HTTP"}],
                     "container": {"type": "MESOS", "portMappings": [{"containerPort": 8080}]}})
    assert info["health_check"]["http"]["port"] == 8080
    host = launched({"healthChecks": [{"protocol": "MESOS_TCP", "portIndex": 1}],
                     "portDefinitions": [{"port": 0}, {"port": 0}]})
    assert host["health_check"]["tcp"]["port"] == host_ports(host)[1], "host mode: the host port"
