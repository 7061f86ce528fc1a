"""A container's root filesystem: an overlay of its image's layers, mounted in a mount namespace
of its own, with a few devices and the sandbox at /mnt/mesos/sandbox.

Layout of one container's share (under ``<work_dir>/provisioner/containers/<container>/``)::

    upper/  work/     the overlay's writable layer and its work directory; the agent seeds upper/
                      with every mount point (dev/null..., proc, mnt/mesos/sandbox, each absolute
                      volume's target) and the container's etc/hosts, etc/hostname, etc/resolv.conf
                      before the first launch (``plan_mounts``)
    rootfs/           where the overlay is mounted (only inside the container's mount namespace)

A container's process chain (``RootfsMount.wrap``)::

    unshare --mount             a private mount namespace (mounts vanish with the container)
      /bin/sh: mount the overlay on rootfs/, the sandbox on rootfs/mnt/mesos/sandbox, then one
               ``mount -o [r]bind[,ro]`` per volume (``Bind``)
        unshare [--pid --fork --mount-proc] --root=rootfs --wd=<workdir> [--setuid --setgid] -- the task

Mount points are made by the agent in Python, not by the shell: a target in upper/ is a fresh
directory or file of the agent's own, which overlayfs shows over whatever the image has there (an
image whose ``/data`` links to ``/etc`` cannot redirect a mount onto the host), and a target or
source in the sandbox must resolve inside it. Seeding costs no process: a container starts with
about 6 (two sh, unshare x2, mount x2) and one more per volume, where making them in the shell took 25.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from meseta.protocol.container_info import VolumeMount

SANDBOX_IN_CONTAINER = "/mnt/mesos/sandbox"  # Mesos's MESOS_SANDBOX inside an image
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


class MountError(ValueError):
    """A volume or file cannot be bound; the message names it."""


@dataclass(frozen=True)
class Bind:
    source: str  # a host path
    target: str  # a host path: under the rootfs (or the sandbox, for a container without an image)
    read_only: bool

    def command(self) -> str:
        q = shlex.quote
        options = "bind,ro" if self.read_only else "rbind"
        return f"mount -o {options} {q(self.source)} {q(self.target)}"


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
             workdir: str = SANDBOX_IN_CONTAINER, binds: Iterable[Bind] = (),
             ids: tuple[int, int] | None = None) -> tuple[str, ...]:
        """``binds`` from ``plan_mounts``; ``ids``: (uid, gid) to run as."""
        r, q = str(self.rootfs), shlex.quote
        steps = [f"mount -t overlay overlay -o lowerdir={q(self.lowerdir())},upperdir={q(str(self.upper))},"
                 f"workdir={q(str(self.work))} {q(r)}",
                 f"mount --bind {q(str(sandbox))} {q(r + SANDBOX_IN_CONTAINER)}",
                 *(bind.command() for bind in binds)]
        script = " && ".join(steps) + ' && exec "$@"'
        pid = ("--pid", "--fork", "--mount-proc") if pid_namespace else ()
        switch = ("--setgid", str(ids[1]), "--setuid", str(ids[0])) if ids is not None else ()
        inner = ("unshare", *pid, f"--root={r}", f"--wd={workdir}", *switch, "--", *argv)
        return ("unshare", "--mount", "--", "/bin/sh", "-c", script, "meseta-rootfs", *inner)


def wrap_sandbox_binds(argv: tuple[str, ...], binds: Iterable[Bind]) -> tuple[str, ...]:
    """A container without an image: its (sandbox) volumes bound in a mount namespace of its own."""
    script = " && ".join(bind.command() for bind in binds) + ' && exec "$@"'
    return ("unshare", "--mount", "--", "/bin/sh", "-c", script, "meseta-volumes", *argv)


def plan_mounts(mount: RootfsMount | None, sandbox: Path, volumes: Iterable[VolumeMount],
                etc_files: Mapping[str, Path]) -> list[Bind]:
    """Make every mount point (blocking, small: call it off the loop) and return the binds, volumes
    first. Without an image only sandbox volumes exist (``container_info`` refuses the others)."""
    sandbox = sandbox.resolve()
    if mount is not None:
        _seed(mount.upper)
    binds = [_volume(volume, mount, sandbox) for volume in volumes]
    if mount is not None:  # copied into the container's own layer: no mount, and the task may edit its copy
        for name, source in sorted(etc_files.items()):
            _copy_etc_file(source, mount.upper, name)
    return binds


def _copy_etc_file(source: Path, upper: Path, name: str) -> None:
    """``source`` as ``<upper>/etc/<name>``, where ``name`` must be a plain file name: the copy is
    opened relative to the layer's own etc directory and never follows a link, so it cannot land on
    the host's /etc (a key like "/etc/hosts" once made ``upper / "etc" / name`` the host's file)."""
    if not name or "/" in name or name in (".", ".."):
        raise MountError(f"/etc file {name!r} is not a plain file name")
    etc = upper / "etc"
    if etc.is_symlink():
        raise MountError(f"{etc} is a symbolic link")
    etc.mkdir(exist_ok=True)
    data = source.read_bytes()
    directory = os.open(etc, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=directory)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=directory)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    finally:
        os.close(directory)


def _seed(upper: Path) -> None:
    for directory in ("proc", "dev", SANDBOX_IN_CONTAINER.lstrip("/")):
        (upper / directory).mkdir(parents=True, exist_ok=True)
    for name in DEVICES:
        node = upper / "dev" / name
        if not node.exists():
            os.mknod(node, 0o666 | stat.S_IFCHR, os.stat(f"/dev/{name}").st_rdev)
            os.chmod(node, 0o666)


def _volume(volume: VolumeMount, mount: RootfsMount | None, sandbox: Path) -> Bind:
    where = f"volume {volume.container_path}"
    if volume.kind == "SANDBOX_PATH":
        source = _inside(sandbox, volume.source, f"{where}: source {volume.source}")
        source.mkdir(parents=True, exist_ok=True)
    else:
        source = Path(volume.source)
        if not source.exists():
            raise MountError(f"{where}: host path {volume.source} does not exist")
    directory = source.is_dir()
    if volume.container_path.startswith("/"):
        assert mount is not None  # container_info: an absolute container path needs an image
        point = mount.upper / volume.container_path.lstrip("/")
        _make_point(point, directory)
        target = mount.rootfs / volume.container_path.lstrip("/")
    else:
        target = _inside(sandbox, volume.container_path, f"{where}: target")
        _make_point(target, directory)
        if mount is not None:  # the sandbox as the container sees it, once bound at /mnt/mesos/sandbox
            target = mount.rootfs / SANDBOX_IN_CONTAINER.lstrip("/") / volume.container_path
    return Bind(str(source), str(target), volume.read_only)


def _inside(root: Path, relative: str, what: str) -> Path:
    path = root / relative
    resolved = Path(os.path.realpath(path))
    if resolved != root and root not in resolved.parents:
        raise MountError(f"{what} resolves outside the sandbox")
    return path


def _make_point(path: Path, directory: bool) -> None:
    if directory:
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.touch()


class UnknownUser(ValueError):
    """A user or group name that neither the image nor the host knows."""


def resolve_ids(user: str, lowers: Iterable[Path]) -> tuple[int, int]:
    """``user[:group]`` (names or numbers, as Docker's User) as (uid, gid): names from the image's
    own /etc/passwd and /etc/group (its top-most layer that has them), else from the host's."""
    name, _, group = user.partition(":")
    layers = list(lowers)[::-1]
    if name.isdigit():
        uid, gid = int(name), int(name)
        entry = _entry(layers, "passwd", lambda fields: fields[2] == name)
        if entry is not None:
            gid = int(entry[3])
    else:
        entry = _entry(layers, "passwd", lambda fields: fields[0] == name)
        if entry is None:
            entry = _host_passwd(name)
        uid, gid = int(entry[2]), int(entry[3])
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            found = _entry(layers, "group", lambda fields: fields[0] == group)
            if found is None:
                raise UnknownUser(f"group '{group}' is in neither the image's /etc/group nor the host's")
            gid = int(found[2])
    return uid, gid


def _entry(layers: list[Path], table: str, match: Callable[[list[str]], bool]) -> list[str] | None:
    for layer in layers:
        path = layer / "etc" / table
        if path.is_file() and not path.is_symlink():
            for line in path.read_text(errors="replace").splitlines():
                fields = line.split(":")
                if len(fields) >= 4 and fields[2].isdigit() and (table == "group" or fields[3].isdigit()) \
                        and match(fields):
                    return fields
            return None
    return None


def _host_passwd(name: str) -> list[str]:
    import pwd

    try:
        record = pwd.getpwnam(name)
    except KeyError:
        raise UnknownUser(f"user '{name}' is in neither the image's /etc/passwd nor the host's") from None
    return [record.pw_name, "x", str(record.pw_uid), str(record.pw_gid)]
