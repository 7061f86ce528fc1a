"""A container's root filesystem: an overlay of its image's layers, mounted in a mount namespace
of its own, with a small /dev and the sandbox at /mnt/mesos/sandbox.

Layout of one container's share (under ``<work_dir>/provisioner/containers/<container>/``)::

    upper/  work/     the overlay's writable layer and its work directory
    rootfs/           where the overlay is mounted (only inside the container's mount namespace)

A container's process chain (``RootfsMount.wrap``)::

    unshare --mount --fork      a private mount namespace (mounts vanish with the container)
      /bin/sh: mount the overlay on rootfs/, a small /dev, the sandbox on rootfs/mnt/mesos/sandbox
        unshare [--pid --fork --mount-proc] --root=rootfs --wd=<workdir> -- the task
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

SANDBOX_IN_CONTAINER = "/mnt/mesos/sandbox"  # Mesos's MESOS_SANDBOX inside an image
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


@dataclass(frozen=True)
class RootfsMount:
    lowers: tuple[Path, ...]  # the image's unpacked layers, base first
    upper: Path
    work: Path
    rootfs: Path

    def lowerdir(self) -> str:
        """overlayfs's lowerdir option: the top layer first."""
        return ":".join(str(path) for path in reversed(self.lowers))

    def wrap(self, argv: tuple[str, ...], sandbox: Path, pid_namespace: bool,
             workdir: str = SANDBOX_IN_CONTAINER) -> tuple[str, ...]:
        r, q = str(self.rootfs), shlex.quote
        steps = [f"mount -t overlay overlay -o lowerdir={q(self.lowerdir())},upperdir={q(str(self.upper))},"
                 f"workdir={q(str(self.work))} {q(r)}",
                 f"mkdir -p {q(r + SANDBOX_IN_CONTAINER)} {q(r + '/proc')} {q(r + '/dev')}",
                 f"mount --bind {q(str(sandbox))} {q(r + SANDBOX_IN_CONTAINER)}",
                 f"mount -t tmpfs -o mode=755 tmpfs {q(r + '/dev')}"]
        steps += [f"touch {q(r + '/dev/' + d)} && mount --bind /dev/{d} {q(r + '/dev/' + d)}" for d in DEVICES]
        script = " && ".join(steps) + ' && exec "$@"'
        pid = ("--pid", "--fork", "--mount-proc") if pid_namespace else ()
        inner = ("unshare", *pid, f"--root={r}", f"--wd={workdir}", "--", *argv)
        return ("unshare", "--mount", "--fork", "--", "/bin/sh", "-c", script, "meseta-rootfs", *inner)
