"""A container's root filesystem: an overlay of its image's layers, mounted in a mount namespace
of its own, with a small /dev and the sandbox at /mnt/mesos/sandbox.

Layout of one container's share (under ``<work_dir>/provisioner/containers/<container>/``)::

    upper/  work/     the overlay's writable layer and its work directory
    rootfs/           where the overlay is mounted (only inside the container's mount namespace)

A container's process chain (``RootfsMount.wrap``)::

    unshare --mount --fork      a private mount namespace (mounts vanish with the container)
      /bin/sh: mount the overlay on rootfs/, a small /dev, the sandbox on rootfs/mnt/mesos/sandbox,
               each volume (``volume_binds``), /etc/hosts, /etc/hostname, /etc/resolv.conf
        unshare [--pid --fork --mount-proc] --root=rootfs --wd=<workdir> [--setuid --setgid] -- the task

Every mount target is checked to resolve inside its root first (``realpath -m``): an image whose
``/data`` is a symlink to ``/etc`` must not make the agent create or cover anything on the host.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from meseta.protocol.container_info import VolumeMount

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
             workdir: str = SANDBOX_IN_CONTAINER, volumes: Iterable[VolumeMount] = (),
             etc_files: Mapping[str, Path] | None = None, ids: tuple[int, int] | None = None) -> tuple[str, ...]:
        """``etc_files``: name -> host file bound read-only at /etc/<name>; ``ids``: (uid, gid) to run as."""
        r, q = str(self.rootfs), shlex.quote
        steps = [f"mount -t overlay overlay -o lowerdir={q(self.lowerdir())},upperdir={q(str(self.upper))},"
                 f"workdir={q(str(self.work))} {q(r)}",
                 f"mkdir -p {q(r + SANDBOX_IN_CONTAINER)} {q(r + '/proc')} {q(r + '/dev')}",
                 f"mount --bind {q(str(sandbox))} {q(r + SANDBOX_IN_CONTAINER)}",
                 f"mount -t tmpfs -o mode=755 tmpfs {q(r + '/dev')}"]
        steps += [f"touch {q(r + '/dev/' + d)} && mount --bind /dev/{d} {q(r + '/dev/' + d)}" for d in DEVICES]
        script = " && ".join(steps) + " && " + volume_binds(volumes, sandbox, r)
        for name, source in sorted((etc_files or {}).items()):
            script += _bind(str(source), r + "/etc/" + name, r, read_only=True, file=True, make_source=False)
        script += ' exec "$@"'
        pid = ("--pid", "--fork", "--mount-proc") if pid_namespace else ()
        switch = ("--setgid", str(ids[1]), "--setuid", str(ids[0])) if ids is not None else ()
        inner = ("unshare", *pid, f"--root={r}", f"--wd={workdir}", *switch, "--", *argv)
        return ("unshare", "--mount", "--fork", "--", "/bin/sh", "-c", script, "meseta-rootfs", *inner)


def volume_binds(volumes: Iterable[VolumeMount], sandbox: Path, root: str) -> str:
    """Shell steps (each ending in `` &&``) that bind each volume at its container path: an absolute
    one under ``root`` (the image's rootfs), a relative one in the sandbox as the container sees it."""
    in_sandbox = root + SANDBOX_IN_CONTAINER if root != str(sandbox) else root
    out = ""
    for volume in volumes:
        target = (root if volume.container_path.startswith("/") else in_sandbox + "/") + volume.container_path
        if volume.kind == "SANDBOX_PATH":
            out += _bind(str(sandbox / volume.source), target, root, volume.read_only, file=False, make_source=True)
        else:
            out += _bind(volume.source, target, root, volume.read_only, file=False, make_source=False)
    return out


def _bind(source: str, target: str, root: str, read_only: bool, *, file: bool, make_source: bool) -> str:
    q = shlex.quote

    def fail(message: str) -> str:
        return f"{{ echo {q(message)} >&2; exit 1; }}"

    step = f"mkdir -p {q(source)} && " if make_source else ""
    step += f"{{ test -e {q(source)} || {fail(f'volume source {source} does not exist')}; }} && "
    step += (f'case "$(realpath -m {q(target)})/" in {q(root.rstrip("/") + "/")}*) ;; '
             f"*) {fail(f'mount target {target} resolves outside the container')};; esac && ")
    make_file = f'mkdir -p "$(dirname {q(target)})" && {{ test -e {q(target)} || touch {q(target)}; }}'
    if file:
        step += f"{make_file} && "
    else:
        step += f"{{ if test -d {q(source)}; then mkdir -p {q(target)}; else {make_file}; fi; }} && "
    step += f"mount --rbind {q(source)} {q(target)} && "
    if read_only:
        step += f"mount -o remount,bind,ro {q(target)} && "
    return step


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
