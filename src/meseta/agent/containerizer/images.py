"""Container images without Docker: docker-archive and OCI tarballs, unpacked once, each task on
its own overlay of them.

Where images come from (``ContainerInfo.mesos.image`` of type DOCKER, or a DOCKER ContainerInfo's
``docker.image``: both name an image the same way)::

    docker.name "/abs/path.tar"    that tarball
    docker.name "name:tag"         <--docker-registry>/name:tag.tar, or <registry>/name.tar for :latest

Layout (this module owns it)::

    <work_dir>/provisioner/images/<key>/rootfs       the image's layers unpacked in order (whiteouts
                                                     applied); key = sha256(path, size, mtime)
    <work_dir>/provisioner/containers/<container>/   upper/ work/ rootfs/: the container's overlay

The container's overlay and process chain: ``meseta.agent.containerizer.rootfs``.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from meseta.agent.containerizer.rootfs import RootfsMount


class ImageError(Exception):
    """The image cannot be found or read; the message names it."""


DOCKER_UNSUPPORTED = ("parameters", "privileged", "port_mappings", "volume_driver")


def image_name(container: Mapping[str, Any] | None) -> str | None:
    """The docker image name of a ContainerInfo, or None when the task has no image.

    MESOS with ``mesos.image``, and DOCKER with ``docker.image``: both run here with the image as
    the root filesystem (Mesos's unified containerizer; there is no Docker daemon). What a DOCKER
    container asks that this cannot honour (parameters, privileged, a network other than HOST and
    its port mappings) is refused by name, never run on the host without a word."""
    if not container:
        return None
    kind = container.get("type", "MESOS")
    if kind == "DOCKER":
        return _docker_image_name(container.get("docker") or {})
    if kind != "MESOS":
        raise ImageError(f"container.type {kind}: only MESOS and DOCKER containers are supported")
    image = (container.get("mesos") or {}).get("image") or {}
    if not image:
        return None
    if image.get("type", "DOCKER") != "DOCKER" or not (image.get("docker") or {}).get("name"):
        raise ImageError("container.mesos.image: only DOCKER images with a name are supported")
    return str(image["docker"]["name"])


def _docker_image_name(docker: Mapping[str, Any]) -> str:
    asked = [f"container.docker.{key}" for key in DOCKER_UNSUPPORTED if docker.get(key)]
    network = docker.get("network", "HOST")
    if network != "HOST":
        asked.append(f"container.docker.network {network}")
    if asked:
        raise ImageError(f"{', '.join(asked)}: not supported (a DOCKER container runs its image with the Mesos "
                         "containerizer, on the host's network)")
    name = docker.get("image")
    if not isinstance(name, str) or not name:
        raise ImageError("container.docker.image: a DOCKER container needs an image")
    return name


class ImageStore:
    def __init__(self, work_dir: Path, registry: Path | None = None) -> None:
        self.root = work_dir / "provisioner"
        self.registry = registry
        self._lock = threading.Lock()  # one unpacking at a time; later users find it done

    def locate(self, name: str) -> Path:
        if name.startswith("/"):
            path = Path(name)
        elif self.registry is not None:
            repository, _, tag = name.partition(":")
            candidates = [self.registry / f"{repository}:{tag or 'latest'}.tar"]
            if tag in ("", "latest"):
                candidates.append(self.registry / f"{repository}.tar")
            path = next((c for c in candidates if c.exists()), candidates[0])
        else:
            raise ImageError(f"image '{name}': no --docker-registry directory is configured on this agent")
        if not path.is_file():
            raise ImageError(f"image '{name}': no tarball at {path}")
        return path

    def layers(self, name: str) -> Path:
        """The unpacked image (blocking: call it from a thread); unpacked on first use only."""
        tarball = self.locate(name)
        stat = tarball.stat()
        key = hashlib.sha256(f"{tarball}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:32]
        done = self.root / "images" / key / "rootfs"
        with self._lock:
            if not done.exists():
                staging = done.with_name("rootfs.partial")
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                try:
                    unpack(tarball, staging)
                except (OSError, tarfile.TarError, KeyError, ValueError, json.JSONDecodeError) as exc:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise ImageError(f"image '{name}': cannot unpack {tarball}: {exc}") from None
                staging.rename(done)
        return done

    def prepare(self, container_id: str, lower: Path) -> RootfsMount:
        base = self.root / "containers" / container_id
        mount = RootfsMount((lower,), base / "upper", base / "work", base / "rootfs")
        for path in (mount.upper, mount.work, mount.rootfs):
            path.mkdir(parents=True, exist_ok=True)
        return mount

    def release(self, container_id: str) -> None:
        shutil.rmtree(self.root / "containers" / container_id, ignore_errors=True)


def unpack(tarball: Path, dest: Path) -> None:
    """A docker-archive (manifest.json) or OCI layout (index.json) tarball, layers in order."""
    with tarfile.open(tarball) as outer:
        names = set(outer.getnames())
        if "manifest.json" in names:
            manifest = json.load(_member(outer, "manifest.json"))
            layers = [str(layer) for layer in manifest[0]["Layers"]]
        elif "index.json" in names:
            index = json.load(_member(outer, "index.json"))
            digest = index["manifests"][0]["digest"]
            manifest = json.load(_member(outer, _blob(digest)))
            layers = [_blob(layer["digest"]) for layer in manifest["layers"]]
        else:
            raise ValueError("neither a docker archive (manifest.json) nor an OCI layout (index.json)")
        for layer in layers:
            _apply_layer(io.BytesIO(_member(outer, layer).read()), dest)


def _blob(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    return f"blobs/{algorithm}/{value}"


def _member(outer: tarfile.TarFile, name: str) -> IO[bytes]:
    found = outer.extractfile(name)
    if found is None:
        raise KeyError(f"{name} is not a file in the image")
    return found


def _apply_layer(data: IO[bytes], dest: Path) -> None:
    """Extract one layer; ``.wh.<name>`` deletes <name> from the layers below, ``.wh..wh..opq``
    empties its directory first (the OCI whiteout rules)."""
    with tarfile.open(fileobj=data) as layer:
        members = []
        for member in layer.getmembers():
            parent, _, base = member.name.rstrip("/").rpartition("/")
            if base == ".wh..wh..opq":
                opaque = dest / parent
                if opaque.is_dir():
                    for child in opaque.iterdir():
                        _remove(child)
            elif base.startswith(".wh."):
                _remove(dest / parent / base[len(".wh."):])
            else:
                members.append(member)
        layer.extractall(dest, members=members, filter="tar")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
