"""The only module that forks: start a process tree in its own session, watch it, stop it.

    launch(spec) -> Popen(start_new_session) -> pidfd readable -> reaped -> ExitStatus
    terminate(grace): SIGTERM to the process group, SIGKILL after ``grace`` seconds

Exits are noticed through a pidfd on the event loop (no thread per child), so an agent can
run thousands of tasks.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class LaunchError(Exception):
    """The process could not be started; the message says why."""


@dataclass(frozen=True)
class LaunchSpec:
    argv: tuple[str, ...]
    env: Mapping[str, str]  # the complete environment: nothing is inherited from the agent
    cwd: Path
    stdout_path: Path
    stderr_path: Path
    user: str | None = None


@dataclass(frozen=True)
class ExitStatus:
    code: int | None
    signal: int | None

    @property
    def succeeded(self) -> bool:
        return self.code == 0

    def describe(self) -> str:
        if self.signal is not None:
            return f"Command terminated with signal {signal.strsignal(self.signal) or self.signal}"
        return f"Command exited with status {self.code}"


class ProcessHandle:
    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self._done: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self._watch()

    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(self.pid)
        except OSError:  # already gone or no pidfd support: poll instead
            self._poller = loop.create_task(self._poll())
            return

        def readable() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            self._reap()

        loop.add_reader(fd, readable)

    async def _poll(self) -> None:
        while self._popen.poll() is None:
            await asyncio.sleep(0.05)
        self._reap()

    def _reap(self) -> None:
        code = self._popen.wait()
        if not self._done.done():
            status = ExitStatus(None, -code) if code < 0 else ExitStatus(code, None)
            self._done.set_result(status)

    @property
    def exit_status(self) -> ExitStatus | None:
        return self._done.result() if self._done.done() else None

    async def wait(self) -> ExitStatus:
        return await asyncio.shield(self._done)

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    async def terminate(self, grace_period: float) -> ExitStatus:
        if self._done.done():
            self.signal_group(signal.SIGKILL)  # leftovers in the group
            return self._done.result()
        self.signal_group(signal.SIGTERM)
        try:
            status = await asyncio.wait_for(self.wait(), grace_period) if grace_period > 0 else None
        except TimeoutError:
            status = None
        self.signal_group(signal.SIGKILL)
        return status or await self.wait()


class AdoptedProcess(ProcessHandle):
    """A task wrapper started by an earlier agent process: not our child, so its exit is seen
    through a pidfd and its status read from the file the wrapper writes (``wrap_with_status``)."""

    def __init__(self, pid: int, status_file: Path) -> None:
        self.pid = pid
        self._status_file = status_file
        self._done = asyncio.get_running_loop().create_future()
        self._watch()

    async def _poll(self) -> None:
        while _alive(self.pid):
            await asyncio.sleep(0.05)
        self._reap()

    def _reap(self) -> None:
        if not self._done.done():
            self._done.set_result(read_exit_status(self._status_file) or ExitStatus(None, signal.SIGKILL))


# The wrapper that makes a task's exit status survive its agent: the task runs in the
# foreground (a trapped signal is a handler, not an ignore, so the task keeps the default
# dispositions), its status goes into a file with the shell's own printf (one write), and a
# signal death is re-raised. The file is read only once the wrapper is gone (reaped, or seen
# dead through /proc or a pidfd), so no rename is needed to keep readers from a torn file; a
# wrapper killed mid-write leaves it empty, read as no status, as a missing one was. (Writing
# it aside and `mv`-ing it in forked /bin/mv for every task: ~2.3 ms of CPU, more than the
# wrapper and a `true` task together.)
STATUS_WRAPPER = (
    'status=$1; shift; trap : TERM INT HUP; "$@"; code=$?; '
    'printf "%s\\n" "$code" > "$status"; '
    'if [ "$code" -gt 128 ]; then trap - TERM INT HUP; kill -"$((code - 128))" $$; fi; exit "$code"'
)
WRAPPER_NAME = "meseta-task"


def wrap_with_status(argv: tuple[str, ...], status_file: Path) -> tuple[str, ...]:
    return ("/bin/sh", "-c", STATUS_WRAPPER, WRAPPER_NAME, str(status_file), *argv)


def read_exit_status(status_file: Path) -> ExitStatus | None:
    try:
        code = int(status_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return ExitStatus(None, code - 128) if code > 128 else ExitStatus(code, None)


def is_task_wrapper(pid: int, status_file: Path) -> bool:
    """Whether ``pid`` is still the wrapper that writes ``status_file`` (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return WRAPPER_NAME.encode() in cmdline and str(status_file).encode() in cmdline


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Launcher(Protocol):
    async def launch(self, spec: LaunchSpec) -> ProcessHandle: ...


class PosixLauncher:
    async def launch(self, spec: LaunchSpec) -> ProcessHandle:
        kwargs: dict[str, Any] = {}
        if spec.user is not None and os.geteuid() == 0:
            try:
                record = pwd.getpwnam(spec.user)
            except KeyError:
                raise LaunchError(f"Failed to switch to user '{spec.user}': no such user") from None
            if record.pw_uid != os.geteuid():
                kwargs = {"user": record.pw_uid, "group": record.pw_gid, "extra_groups": []}
        try:
            with open(spec.stdout_path, "ab") as out, open(spec.stderr_path, "ab") as err:
                popen = subprocess.Popen(
                    list(spec.argv), env=dict(spec.env), cwd=spec.cwd, stdin=subprocess.DEVNULL,
                    stdout=out, stderr=err, start_new_session=True, close_fds=True, **kwargs,
                )
        except OSError as exc:
            raise LaunchError(f"Failed to execute {spec.argv[0]!r}: {exc.strerror or exc}") from None
        return ProcessHandle(popen)


class FailingLauncher:
    """Error injection: every launch fails with ``message``."""

    def __init__(self, message: str = "launch failed") -> None:
        self.message = message

    async def launch(self, spec: LaunchSpec) -> ProcessHandle:
        raise LaunchError(self.message)
