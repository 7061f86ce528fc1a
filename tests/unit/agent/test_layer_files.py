"""A layer tar unpacked as an overlay lower directory: whiteouts become overlayfs's own, the
uncompressed digest is checked, and hostile members are refused by name (we run as root)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from meseta.agent.containerizer.image_refs import ImageError
from meseta.agent.containerizer.layer_files import copy_hashed, unpack_layer


def _tar(entries: list[tuple[str, bytes | None, str | None]]) -> bytes:
    """(name, file data or None for a directory, symlink target)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data, link in entries:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_whiteouts_become_overlay_whiteouts_and_the_digest_is_checked(tmp_path: Path) -> None:
    layer = _tar([("etc", None, None), ("etc/.wh.gone", b"", None), ("var", None, None),
                  ("var/.wh..wh..opq", b"", None), ("var/new", b"fresh\n", None), ("bin", None, None),
                  ("bin/sh", None, "/bin/busybox")])
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(layer))
    dest = tmp_path / "layer" / "rootfs"
    assert unpack_layer(blob, dest, "sha256:" + hashlib.sha256(layer).hexdigest()) == len(b"fresh\n")
    gone = (dest / "etc" / "gone").lstat()
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    assert os.getxattr(dest / "var", "trusted.overlay.opaque") == b"y"
    assert (dest / "var" / "new").read_text() == "fresh\n" and not (dest / "var" / ".wh..wh..opq").exists()
    assert os.readlink(dest / "bin" / "sh") == "/bin/busybox"
    with pytest.raises(ImageError, match=r"uncompressed sha256 is sha256:[0-9a-f]{64}, the image config says"):
        unpack_layer(blob, tmp_path / "again", "sha256:" + "0" * 64)


@pytest.mark.parametrize(("entries", "named"), [
    ([("../escape", b"x", None)], "outside the destination"),
    ([("link", None, "/etc"), ("link/passwd", b"x", None)], "outside the destination"),
    ([("../../.wh.passwd", b"", None)], "whiteout outside the layer"),
    ([("up", None, "/"), ("up/tmp/.wh.x", b"", None)], "whiteout outside the layer"),
])
def test_hostile_layers_are_refused(tmp_path: Path, entries: list[tuple[str, bytes | None, str | None]],
                                    named: str) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(_tar(entries))
    with pytest.raises(ImageError, match=named):
        unpack_layer(blob, tmp_path / "layer", None)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "passwd").exists()


def test_not_a_tar_is_named(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(b"not a tar at all" * 100))
    with pytest.raises(ImageError, match="layer blob: cannot unpack"):
        unpack_layer(blob, tmp_path / "layer", None)


def test_blobs_are_copied_under_their_digest(tmp_path: Path) -> None:
    digest = copy_hashed(io.BytesIO(b"hello"), tmp_path / "blobs")
    assert digest == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert [p.name for p in (tmp_path / "blobs").iterdir()] == [digest.removeprefix("sha256:")]
