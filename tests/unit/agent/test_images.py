"""Image names from ContainerInfo and where the agent looks for their tarballs."""

from __future__ import annotations

from pathlib import Path

import pytest

from meseta.agent.containerizer.images import ImageError, ImageStore, force_pull, image_name
from meseta.agent.containerizer.registry import Registry


def test_image_names_from_container_info() -> None:
    assert image_name(None) is None and image_name({"type": "MESOS"}) is None
    assert image_name({"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "a:1"}}}}) == "a:1"
    with pytest.raises(ImageError, match=r"container\.mesos\.image"):
        image_name({"type": "MESOS", "mesos": {"image": {"type": "APPC", "appc": {"name": "a"}}}})


def test_a_docker_container_runs_its_image_here_and_what_it_cannot_have_is_named() -> None:
    """A DOCKER ContainerInfo once ran on the host without a word: it runs on its image now."""
    assert image_name({"type": "DOCKER", "docker": {"image": "alpine:3.19", "network": "HOST",
                                                   "force_pull_image": True}}) == "alpine:3.19"
    for docker, named in (({}, "docker.image"), ({"image": ""}, "docker.image"),
                          ({"image": "a", "privileged": True}, "docker.privileged"),
                          ({"image": "a", "parameters": [{"key": "cap-add", "value": "ALL"}]}, "docker.parameters"),
                          ({"image": "a", "network": "BRIDGE",
                            "port_mappings": [{"host_port": 1, "container_port": 2}]},
                           "docker.port_mappings, container.docker.network BRIDGE")):
        with pytest.raises(ImageError, match=named):
            image_name({"type": "DOCKER", "docker": docker})
    with pytest.raises(ImageError, match=r"container\.type APPC"):
        image_name({"type": "APPC"})


def test_the_registry_directory_and_absolute_paths(tmp_path: Path) -> None:
    (tmp_path / "web:2.tar").write_bytes(b"")
    (tmp_path / "base.tar").write_bytes(b"")
    store = ImageStore(tmp_path / "work", tmp_path)
    assert store.locate("web:2") == tmp_path / "web:2.tar"
    assert store.locate("base") == store.locate("base:latest") == tmp_path / "base.tar"
    assert store.locate(str(tmp_path / "web:2.tar")) == tmp_path / "web:2.tar"
    with pytest.raises(ImageError, match="'web:3': no tarball"):
        store.locate("web:3")
    with pytest.raises(ImageError, match="no --docker-registry"):
        ImageStore(tmp_path / "work").locate("web:2")


def test_force_pull_from_container_info() -> None:
    assert force_pull(None) is False
    assert force_pull({"type": "DOCKER", "docker": {"image": "a", "force_pull_image": True}}) is True
    assert force_pull({"type": "DOCKER", "docker": {"image": "a"}}) is False
    image = {"type": "DOCKER", "docker": {"name": "a"}}
    assert force_pull({"type": "MESOS", "mesos": {"image": {**image, "cached": False}}}) is True
    assert force_pull({"type": "MESOS", "mesos": {"image": image}}) is False


def test_which_hosts_are_pulled_over_plain_http() -> None:
    plain = Registry("http://127.0.0.1:5000", insecure=("reg.lan:5000", "other.lan"))
    assert plain.base("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert plain.base("localhost:6000") == "http://localhost:6000"  # a loopback neighbour of a plain default
    assert plain.base("reg.lan:5000") == "http://reg.lan:5000" and plain.base("other.lan:1") == "http://other.lan:1"
    assert plain.base("reg.example") == "https://reg.example"
    secure = Registry("https://127.0.0.1:5000")
    assert secure.base("localhost:6000") == "https://localhost:6000"
    assert Registry().base("registry-1.docker.io") == "https://registry-1.docker.io"
    for bad in ("ftp://x", "http://", "http://x/path"):
        with pytest.raises(ImageError, match="expected http"):
            Registry(bad)


def test_a_store_refuses_a_bad_docker_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("[1]")
    with pytest.raises(ImageError, match=r"--docker-config .*not a JSON object"):
        ImageStore(tmp_path, "http://127.0.0.1:5000", docker_config=tmp_path / "config.json")
    with pytest.raises(ImageError, match="cannot read it"):
        ImageStore(tmp_path, "http://127.0.0.1:5000", docker_config=tmp_path / "missing.json")
