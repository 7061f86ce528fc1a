"""The /etc files an image container gets are copies in its own layer, never the host's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from meseta.agent.containerizer.rootfs import MountError, RootfsMount, plan_mounts


def _mount(tmp_path: Path) -> RootfsMount:
    upper = tmp_path / "upper"
    upper.mkdir()
    return RootfsMount(rootfs=tmp_path / "rootfs", upper=upper, work=tmp_path / "work", lowers=())


def test_the_copies_land_in_the_containers_layer(tmp_path: Path) -> None:
    source = tmp_path / "hosts.src"
    source.write_text("10.0.0.2 c1\n")
    mount = _mount(tmp_path)
    plan_mounts(mount, tmp_path, (), {"hosts": source})
    assert (mount.upper / "etc" / "hosts").read_text() == "10.0.0.2 c1\n"


@pytest.mark.parametrize("name", ["/etc/hosts", "../hosts", "etc/hosts", "", ".."])
def test_a_name_that_is_not_a_plain_file_name_is_refused(tmp_path: Path, name: str) -> None:
    source = tmp_path / "hosts.src"
    source.write_text("x\n")
    with pytest.raises(MountError, match="plain file name"):
        plan_mounts(_mount(tmp_path), tmp_path, (), {name: source})


def test_a_link_in_the_layer_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    source = tmp_path / "resolv.src"
    source.write_text("nameserver 10.0.0.1\n")
    mount = _mount(tmp_path)
    (mount.upper / "etc").mkdir()
    (mount.upper / "etc" / "resolv.conf").symlink_to(victim)
    plan_mounts(mount, tmp_path, (), {"resolv.conf": source})
    assert victim.read_text() == "keep\n"
    copy = mount.upper / "etc" / "resolv.conf"
    assert not copy.is_symlink() and copy.read_text() == "nameserver 10.0.0.1\n"
