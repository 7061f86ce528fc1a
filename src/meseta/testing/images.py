"""Tiny container images for tests, built from Debian's busybox-static: two layers (the second
whiting out a file of the first, adding /hello.txt), as a docker-archive or an OCI layout tarball.

    docker_archive(path) -> path   manifest.json + config.json + l0/layer.tar, l1/layer.tar (tiny:1)
    oci_layout(path)     -> path   oci-layout + index.json + blobs/sha256/... (gzipped layers)

A task on either sees /etc/os-release = "tiny-image" and /hello.txt = "from layer 2".
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

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
