"""Tiny container images for tests, built from Debian's busybox-static: two layers (the second
whiting out a file of the first, adding /hello.txt), as a docker-archive or an OCI layout tarball.

    docker_archive(path, config=None, layers=2, tag="tiny:1", applets=APPLETS) -> path
        manifest.json + <hex>.json (a full image config: os, architecture, rootfs.diff_ids, and
        ``config`` = Entrypoint/Cmd/Env/WorkingDir/User/ExposedPorts as given) + l<n>/layer.tar;
        layers beyond 2 each add /layer<n>.txt = "layer <n>"
    oci_layout(path)     -> path   oci-layout + index.json + blobs/sha256/... (gzipped layers)

A task on either sees /etc/os-release = "tiny-image" and /hello.txt = "from layer 2".
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


APPLETS = ("sh", "cat", "ls", "test", "pwd", "echo", "[", "id", "env", "sleep", "httpd", "wget", "mkdir")


def _layers(count: int = 2, applets: tuple[str, ...] = APPLETS) -> list[bytes]:
    links = {f"bin/{a}": "/bin/busybox" for a in applets}
    base = _layer({"bin/busybox": BUSYBOX.read_bytes(), "etc/os-release": b"tiny-image\n",
                   "etc/removed": b"gone in layer 2\n"}, links)
    extra = [_layer({f"layer{n}.txt": f"layer {n}\n".encode()}) for n in range(2, count)]
    return [base, _layer({"etc/.wh.removed": b"", "hello.txt": b"from layer 2\n"}), *extra][:count]


def _tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def docker_archive(path: Path, config: Mapping[str, Any] | None = None, layers: int = 2, tag: str = "tiny:1",
                   applets: tuple[str, ...] = APPLETS) -> Path:
    """A docker-archive (``docker save`` form) that skopeo can push; ``config`` is the image's
    runtime config (Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts)."""
    tars = _layers(layers, applets)
    diff_ids = [f"sha256:{hashlib.sha256(tar).hexdigest()}" for tar in tars]
    blob = json.dumps({"architecture": "amd64", "os": "linux", "config": dict(config or {}),
                       "rootfs": {"type": "layers", "diff_ids": diff_ids},
                       "history": [{"created_by": f"meseta.testing.images layer {n}"} for n in range(len(tars))]},
                      sort_keys=True).encode()
    name = f"{hashlib.sha256(blob).hexdigest()}.json"
    members = {f"l{n}/layer.tar": tar for n, tar in enumerate(tars)}
    manifest = [{"Config": name, "RepoTags": [tag], "Layers": list(members)}]
    return _tarball(path, {"manifest.json": json.dumps(manifest).encode(), name: blob, **members})


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
