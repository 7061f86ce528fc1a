"""Tasks on a container image without Docker: the test builds a tiny image from busybox-static,
as a docker-archive and as an OCI layout tarball (two layers, the second whiting out a file of
the first), and a pymesos task with ContainerInfo.mesos.image runs on it and sees the image's
files, not the host's, with its sandbox at /mnt/mesos/sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meseta.testing.clusters import master_and_agent
from meseta.testing.images import docker_archive, oci_layout
from meseta.testing.pymesos_recorder import Recorder, driver_for, task

pytestmark = pytest.mark.integration
def _image(name: str) -> dict[str, Any]:
    return {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": name}}}}



def test_tasks_run_on_docker_archive_and_oci_images(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    registry.mkdir()
    docker_archive(registry / "tiny:1.tar")
    oci = oci_layout(tmp_path / "tiny-oci.tar")
    inside = ('test "$(cat /etc/os-release)" = tiny-image && test ! -e /etc/removed && test -f /hello.txt'
              ' && test ! -e /etc/debian_version && test "$(pwd)" = /mnt/mesos/sandbox'
              ' && test "$MESOS_SANDBOX" = /mnt/mesos/sandbox && test $$ -eq 1 && echo ran-in-image > out.txt')
    recorder = Recorder()
    with master_and_agent(tmp_path, "--resources", "cpus:4;mem:1024;disk:256", "--docker-registry", str(registry),
                          "--isolation", "namespaces/pid") as (master, _), driver_for(master, recorder) as driver:

        def run(task_id: str, image: str, command: str = inside) -> dict[str, Any]:
            offer = recorder.take_offers()[0]
            driver.launchTasks(offer["id"], [task(task_id, offer, command={"value": command},
                                                  container=_image(image))], filters={"refuse_seconds": 0})
            return recorder.final(task_id)

        assert run("docker-archive", "tiny:1")["state"] == "TASK_FINISHED"
        assert run("oci", str(oci))["state"] == "TASK_FINISHED"
        assert run("host-check", "tiny:1", "test -e /etc/debian_version")["state"] == "TASK_FAILED"  # control
        outputs = list((tmp_path / "agent").glob("slaves/*/frameworks/*/executors/*/runs/*-*/out.txt"))
        assert len(outputs) == 2 and {o.read_text() for o in outputs} == {"ran-in-image\n"}
        missing = run("missing", "nothing:here")
        assert missing["state"] == "TASK_FAILED" and missing["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
        assert "nothing:here" in missing["message"]
        assert len(list((tmp_path / "agent" / "provisioner" / "images").iterdir())) == 2  # unpacked once each


def test_volumes_bind_host_and_sandbox_paths_into_an_image_and_a_plain_container(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    registry.mkdir()
    docker_archive(registry / "tiny:1.tar")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from the host\n")
    with_image = {**_image("tiny:1"), "volumes": [
        {"container_path": "/data", "host_path": str(shared), "mode": "RO"},
        {"container_path": "scratch", "mode": "RW", "source": {"type": "SANDBOX_PATH",
                                                               "sandbox_path": {"type": "SELF", "path": "kept"}}}]}
    in_image = ('test "$(cat /data/in.txt)" = "from the host" && ! echo x > /data/new.txt'
                ' && echo written > scratch/out.txt && test "$(cat /etc/os-release)" = tiny-image')
    plain = {"type": "MESOS", "volumes": [{"container_path": "host", "host_path": str(shared), "mode": "RW"}]}
    recorder = Recorder()
    with master_and_agent(tmp_path, "--resources", "cpus:4;mem:1024;disk:256", "--docker-registry", str(registry),
                          ) as (master, _), driver_for(master, recorder) as driver:

        def run(task_id: str, command: str, container: dict[str, Any]) -> dict[str, Any]:
            offer = recorder.take_offers()[0]
            driver.launchTasks(offer["id"], [task(task_id, offer, command={"value": command}, container=container)],
                               filters={"refuse_seconds": 0})
            return recorder.final(task_id)

        assert run("image-volumes", in_image, with_image)["state"] == "TASK_FINISHED"
        kept = list((tmp_path / "agent").glob("slaves/*/frameworks/*/executors/image-volumes/runs/*-*/kept/out.txt"))
        assert [k.read_text() for k in kept] == ["written\n"]
        assert run("plain-volume", "echo back > host/back.txt", plain)["state"] == "TASK_FINISHED"
        assert (shared / "back.txt").read_text() == "back\n" and not (shared / "new.txt").exists()
        absent = {**_image("tiny:1"), "volumes": [{"container_path": "/x", "host_path": str(tmp_path / "none"),
                                                   "mode": "RW"}]}
        failed = run("absent-source", "true", absent)
        assert failed["state"] == "TASK_FAILED" and "does not exist" in (failed.get("message") or "") + _stderr(
            tmp_path, "absent-source")
        refused = run("absolute-without-image", "true", {"type": "MESOS", "volumes": [
            {"container_path": "/etc/x", "host_path": str(shared), "mode": "RW"}]})
        assert refused["state"] == "TASK_ERROR" and "container.volumes[0].container_path" in refused["message"]


def _stderr(tmp_path: Path, executor: str) -> str:
    found = list((tmp_path / "agent").glob(f"slaves/*/frameworks/*/executors/{executor}/runs/*-*/stderr"))
    return found[0].read_text() if found else ""
