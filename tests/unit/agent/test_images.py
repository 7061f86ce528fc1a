"""Where the agent looks for image tarballs, and which registries it reaches over plain HTTP
(ContainerInfo itself is read by ``meseta.protocol.container_info``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meseta.agent.containerizer.images import ImageError, ImageStore
from meseta.agent.containerizer.registry import Registry


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
