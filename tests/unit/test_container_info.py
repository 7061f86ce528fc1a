"""ContainerInfo read into a ContainerSpec: every network mode, mappings, volumes, and refusals by name."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meseta.protocol.container_info import (
    HOST,
    ContainerInfoError,
    NetworkRequest,
    PortMapping,
    VolumeMount,
    container_spec,
)

HELD = {31000, 31001}


def spec(container: Any, **kwargs: Any) -> Any:
    return container_spec(container, holds_port=HELD.__contains__, **kwargs)


def docker_named(name: str) -> dict[str, Any]:
    return {"type": "DOCKER", "docker": {"image": name}}


def docker(**fields: Any) -> dict[str, Any]:
    return {"type": "DOCKER", "docker": {"image": "busybox:1", **fields}}


def test_no_container_and_a_plain_mesos_container_run_on_the_host() -> None:
    assert spec(None) == HOST and spec({}) == HOST and spec({"type": "MESOS"}) == HOST


def test_a_mesos_image_and_its_cached_flag() -> None:
    image = {"type": "DOCKER", "docker": {"name": "busybox:1"}, "cached": False}
    got = spec({"type": "MESOS", "mesos": {"image": image}})
    assert got.image == "busybox:1" and got.force_pull and got.networks is None


def test_docker_networks_map_to_cni_networks() -> None:
    assert spec(docker()).networks is None
    assert spec(docker(network="NONE")).networks == ()
    bridged = spec(docker(network="BRIDGE", force_pull_image=True,
                          port_mappings=[{"host_port": 31000, "container_port": 80, "protocol": "tcp"}]),
                   bridge_network="br")
    assert bridged.force_pull and bridged.networks == (NetworkRequest("br", (PortMapping(31000, 80, "tcp"),)),)
    user = spec({**docker(network="USER"), "network_infos": [
        {"name": "blue", "labels": {"labels": [{"key": "tier", "value": "web"}]}}]})
    assert user.networks == (NetworkRequest("blue", (), {"tier": "web"}),)


def test_mesos_named_networks_carry_their_mappings_and_unnamed_ones_are_ignored() -> None:
    got = spec({"type": "MESOS", "network_infos": [
        {"ip_addresses": [{}]},
        {"name": "a", "port_mappings": [{"host_port": 31001, "container_port": 8080}]},
        {"name": "b"}]})
    assert got.networks == (NetworkRequest("a", (PortMapping(31001, 8080),)), NetworkRequest("b"))
    assert got.host_ports() == [31001]


@pytest.mark.parametrize(("container", "named"), [
    (docker(parameters=[{"key": "cap-add", "value": "ALL"}]), "container.docker.parameters"),
    (docker(privileged=True), "container.docker.privileged"),
    (docker(volume_driver="flocker"), "container.docker.volume_driver"),
    (docker(network="OVERLAY"), "container.docker.network OVERLAY"),
    (docker(port_mappings=[{"host_port": 31000, "container_port": 80}]), "container.docker.port_mappings"),
    (docker(network="USER"), "container.network_infos"),
    ({"type": "DOCKER"}, "container.docker"),
    ({"type": "APPC"}, "container.type APPC"),
    (docker_named("WEB:1"), "container.docker.image: image 'WEB:1': repository component"),
    (docker_named("../x"), "container.docker.image: image '../x'"),
    (docker_named("a:b@sha256:12"), "digest"),
    ({"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "a b"}}}},
     "container.mesos.image.docker.name"),
    ({"type": "MESOS", "docker": {"image": "a", "parameters": True}}, "container.docker: only a DOCKER"),
    ({"type": "MESOS", "hostname": "web"}, "container.hostname"),
    ({"type": "MESOS", "linux_info": {"share_pid_namespace": True}}, "container.linux_info"),
    ({"type": "MESOS", "mesos": {"image": {"type": "APPC", "appc": {"name": "x"}}}}, "container.mesos.image.type"),
    ({"type": "MESOS", "network_infos": [{"name": "a", "port_mappings": [{"host_port": 32000, "container_port": 1}]}]},
     "host_port 32000 is not among the task's ports"),
    ({"type": "MESOS", "network_infos": [{"name": "a"}, {"name": "a"}]}, "network_infos[1].name"),
    ({"type": "MESOS", "network_infos": [{"port_mappings": [{"host_port": 31000, "container_port": 1}]}]},
     "network_infos[0].name"),
    ({"type": "MESOS", "network_infos": [{"name": "a", "port_mappings": [
        {"host_port": 31000, "container_port": 0}]}]}, "container_port"),
    ({"type": "MESOS", "network_infos": [{"name": "a", "port_mappings": [
        {"host_port": 31000, "container_port": 1, "protocol": "sctp"}]}]}, "protocol"),
    ({"type": "MESOS", "volumes": [{"container_path": "/data", "host_path": "/srv", "mode": "RW"}]},
     "an absolute path needs a container image"),
    ({"type": "MESOS", "volumes": [{"container_path": "d", "host_path": "/srv"}]}, "volumes[0].mode"),
    ({"type": "MESOS", "volumes": [{"container_path": "../d", "host_path": "/srv", "mode": "RW"}]}, "'..'"),
    ({"type": "MESOS", "volumes": [{"container_path": "./.", "host_path": "/srv", "mode": "RW"}]},
     "cannot cover the whole sandbox"),
    (docker() | {"volumes": [{"container_path": "//", "host_path": "/srv", "mode": "RO"}]},
     "volumes[0].container_path //: a volume cannot cover the whole root filesystem"),
    ({"type": "MESOS", "volumes": [{"container_path": "d", "mode": "RW",
                                    "source": {"type": "DOCKER_VOLUME"}}]}, "source.type DOCKER_VOLUME"),
    ({"type": "MESOS", "volumes": [{"container_path": "d", "mode": "RW", "source": {
        "type": "SANDBOX_PATH", "sandbox_path": {"type": "PARENT", "path": "x"}}}]}, "only SELF"),
])
def test_what_cannot_run_here_is_refused_by_name(container: dict[str, Any], named: str) -> None:
    with pytest.raises(ContainerInfoError, match=named.replace("(", r"\(").replace("[", r"\[")):
        spec(container)


def test_volumes_of_every_kind() -> None:
    got = spec({"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "x"}}}, "volumes": [
        {"container_path": "/data", "host_path": "/srv/data", "mode": "RO"},
        {"container_path": "cache", "host_path": "tmp/cache", "mode": "RW"},
        {"container_path": "/logs", "mode": "RW", "source": {"type": "HOST_PATH", "host_path": {"path": "/var/l"}}},
        {"container_path": "scratch", "mode": "RW", "source": {"type": "SANDBOX_PATH",
                                                               "sandbox_path": {"type": "SELF", "path": "s"}}},
    ]})
    assert got.volumes == (VolumeMount("/data", "/srv/data", "HOST_PATH", True),
                           VolumeMount("cache", "tmp/cache", "SANDBOX_PATH", False),
                           VolumeMount("/logs", "/var/l", "HOST_PATH", False),
                           VolumeMount("scratch", "s", "SANDBOX_PATH", False))


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2, 70000) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
                               ["type", "docker", "mesos", "image", "network", "port_mappings", "host_port",
                                "container_port", "protocol", "name", "network_infos", "volumes", "mode",
                                "container_path", "host_path", "source", "cached", "force_pull_image"]),
                               inner, max_size=4), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_json_is_read_or_refused_with_a_container_info_error(value: Any) -> None:
    try:
        spec(value)
    except ContainerInfoError as exc:
        assert str(exc)
