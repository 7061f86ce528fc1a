"""Blocking file work of the image store (run in threads): copying a blob while hashing it, and
unpacking a layer tar into an overlay lower directory.

An overlay lower layer keeps the layer's whiteouts in overlayfs's own form:
``.wh.<name>`` becomes a character device 0:0 named <name>, ``.wh..wh..opq`` becomes the
``trusted.overlay.opaque=y`` xattr on its directory (both need root, as the agent is).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import IO

from meseta.agent.containerizer.image_refs import ImageError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class _Hashing:
    """A reader that hashes what passes through it."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source, self.hasher, self.size = source, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.hasher.update(data)
        self.size += len(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return "sha256:" + self.hasher.hexdigest()


def copy_hashed(source: IO[bytes], blobs: Path) -> str:
    """Copy a stream into ``blobs/<hex>`` (via a temporary name); its ``sha256:<hex>``."""
    blobs.mkdir(parents=True, exist_ok=True)
    partial = blobs / f".partial-{os.getpid()}-{id(source)}"
    hasher = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            while chunk := source.read(1 << 20):
                hasher.update(chunk)
                out.write(chunk)
        os.replace(partial, blobs / hasher.hexdigest())
    finally:
        partial.unlink(missing_ok=True)
    return "sha256:" + hasher.hexdigest()


def unpack_layer(blob: Path, dest: Path, diff_id: str | None) -> int:
    """Unpack a (gzipped or plain) layer tar into a new ``dest``; the bytes it holds. When
    ``diff_id`` is given, the uncompressed tar must have that sha256."""
    dest.mkdir(parents=True)
    root = dest.resolve()
    total = 0
    with open(blob, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if gzipped else raw  # type: ignore[assignment]
        reader = _Hashing(stream)
        opaque: list[Path] = []
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    parent, _, base = member.name.strip("/").rpartition("/")
                    if base == OPAQUE or base.startswith(WHITEOUT):
                        where = _inside(root, parent, member.name)
                        if base == OPAQUE:
                            opaque.append(where)
                        else:
                            where.mkdir(parents=True, exist_ok=True)
                            _whiteout(where / base[len(WHITEOUT):])
                        continue
                    tar.extract(member, dest, filter="tar")
                    total += member.size
            digest = reader.drain()
        except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
            raise ImageError(f"layer {blob.name}: cannot unpack: {exc}") from None
    if diff_id is not None and digest != diff_id:
        raise ImageError(f"layer {blob.name}: uncompressed sha256 is {digest}, the image config says {diff_id}")
    for directory in opaque:
        directory.mkdir(parents=True, exist_ok=True)
        os.setxattr(directory, "trusted.overlay.opaque", b"y")
    return total


def _inside(root: Path, relative: str, name: str) -> Path:
    where = (root / relative).resolve() if relative else root
    if where != root and root not in where.parents:
        raise ImageError(f"layer member '{name}': whiteout outside the layer")
    return where


def _whiteout(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def tree_size(path: Path) -> int:
    return sum(entry.stat(follow_symlinks=False).st_size for entry in path.rglob("*"))
