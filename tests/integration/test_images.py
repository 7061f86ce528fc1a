"""Tasks on a container image without Docker: the test builds a tiny image from busybox-static,
as a docker-archive and as an OCI layout tarball (two layers, the second whiting out a file of
the first), and a pymesos task with ContainerInfo.mesos.image runs on it and sees the image's
files, not the host's, with its sandbox at /mnt/mesos/sandbox."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from meseta.testing.clusters import master_and_agent
from meseta.testing.pymesos_recorder import Recorder, driver_for, task

pytestmark = pytest.mark.integration
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static (scripts/install-test-system.sh)


def _layer(files: dict[str, bytes], links: dict[str, str] = {}) -> bytes:  # noqa: B006
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out.getvalue()


def _layers() -> list[bytes]:
    applets = {f"bin/{a}": "/bin/busybox" for a in ("sh", "cat", "ls", "test", "pwd", "echo", "[")}
    base = _layer({"bin/busybox": BUSYBOX.read_bytes(), "etc/os-release": b"tiny-image\n",
                   "etc/removed": b"gone in layer 2\n"}, applets)
    return [base, _layer({"etc/.wh.removed": b"", "hello.txt": b"from layer 2\n"})]


def _tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def docker_archive(path: Path) -> Path:
    layers = _layers()
    manifest = [{"Config": "config.json", "RepoTags": ["tiny:1"], "Layers": ["l0/layer.tar", "l1/layer.tar"]}]
    return _tarball(path, {"manifest.json": json.dumps(manifest).encode(), "config.json": b"{}",
                           "l0/layer.tar": layers[0], "l1/layer.tar": layers[1]})


def oci_layout(path: Path) -> Path:
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        blobs[f"blobs/sha256/{digest}"] = data
        return f"sha256:{digest}"

    layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(gzip.compress(layer))}
              for layer in _layers()]
    manifest = blob(json.dumps({"schemaVersion": 2, "config": {"digest": blob(b"{}")}, "layers": layers}).encode())
    index = {"schemaVersion": 2, "manifests": [{"digest": manifest}]}
    return _tarball(path, {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": json.dumps(index).encode(),
                           **blobs})


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
