"""One HAProxy in master-worker mode, its runtime API and its seamless reload (asyncio).

Files in the work directory (Unix socket paths must stay under 100 bytes)::

    <work>/haproxy.cfg       the running configuration (written only after ``haproxy -c`` accepted it)
    <work>/candidate.cfg     the file being validated
    <work>/haproxy.sock      stats socket, level admin, expose-fd listeners: the runtime API
    <work>/master.sock       master CLI (-S): ``show proc`` lists the current and old workers
    <work>/servers.state     ``show servers state`` saved right before each reload

Lifecycle::

    start(cfg): validate -> write -> haproxy -W -S master.sock -f haproxy.cfg -> stats socket answers
    reload(cfg): validate -> save server state -> write -> SIGUSR2 to the master -> a new worker answers
                 (the master hands the listening sockets to the new worker; old workers finish their
                 sessions, at most hard-stop-after)
    stop(): SIGTERM to the master (it stops its workers), SIGKILL after 5 s
    HAProxy stays in the LB's process group, so whoever kills that group kills HAProxy too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

MAX_SOCKET_PATH = 100
# What ``set server ... addr`` answers when it worked (every other answer text is an error).
FAILED = re.compile(r"\[failed: (\d+)\]")
INFO = re.compile(r"changed from .* by 'stats socket command'|^no need to change the addr")


class HAProxyError(RuntimeError):
    """HAProxy refused a configuration, a command, or did not come up."""


class ReloadFailed(HAProxyError):
    """The new configuration passed ``haproxy -c`` but did not load (a port in use...): the old workers serve on."""


class HAProxy:
    def __init__(self, binary: str, work_dir: Path) -> None:
        self.binary = binary
        self.work_dir = work_dir
        self.config = work_dir / "haproxy.cfg"
        self.candidate = work_dir / "candidate.cfg"
        self.socket = work_dir / "haproxy.sock"
        self.master_socket = work_dir / "master.sock"
        self.state_file = work_dir / "servers.state"
        self.process: asyncio.subprocess.Process | None = None
        self.reloads = 0
        if len(str(self.master_socket)) > MAX_SOCKET_PATH:
            raise HAProxyError(f"--work-dir {work_dir} is too long for a Unix socket path")

    async def validate(self, text: str) -> str | None:
        """None if ``haproxy -c`` accepts ``text``, else HAProxy's complaint."""
        self.candidate.write_text(text)
        proc = await asyncio.create_subprocess_exec(self.binary, "-c", "-f", str(self.candidate),
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode == 0:
            return None
        text = out.decode(errors="replace").replace(str(self.candidate), "config")
        alerts = [line.split(":", 1)[-1].strip() for line in text.splitlines() if "[ALERT]" in line]
        return "; ".join(alerts) or text.strip() or f"exit {proc.returncode}"

    async def start(self, text: str) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if (problem := await self.validate(text)) is not None:
            raise HAProxyError(f"configuration refused: {problem}")
        self.config.write_text(text)
        with (self.work_dir / "haproxy.log").open("ab") as log:  # our process group: killpg of the LB stops it
            self.process = await asyncio.create_subprocess_exec(
                self.binary, "-W", "-S", f"{self.master_socket},mode,600", "-f", str(self.config),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=log)
        async def up() -> bool:
            return bool((await self.processes())[0])

        try:
            await self._until(up, "HAProxy to start")
        except BaseException:
            await self.stop()
            raise

    async def reload(self, text: str, save_state: bool = True) -> None:
        """Seamless reload onto ``text`` (already validated by the caller or validated here)."""
        if (problem := await self.validate(text)) is not None:
            raise HAProxyError(f"configuration refused: {problem}")
        if save_state:
            self.state_file.write_text(await self.command("show servers state"))
        old, failed = await self.processes()
        previous = self.config.read_text()
        self.config.write_text(text)
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGUSR2)
        self.reloads += 1

        async def done() -> bool:
            pids, now_failed = await self.processes()
            if now_failed > failed:  # the old workers still serve the previous configuration
                self.config.write_text(previous)
                raise ReloadFailed(f"HAProxy could not load the new configuration; see {self.work_dir}/haproxy.log")
            return bool(pids) and not set(pids) & set(old)

        await self._until(done, "the reloaded HAProxy worker")

    async def _until(self, ready: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.returncode is not None:
                raise HAProxyError(f"HAProxy exited ({self.process.returncode}); see {self.work_dir}/haproxy.log")
            with contextlib.suppress(OSError):
                if await ready() and await self.command("show info"):
                    return
            if time.monotonic() > deadline:
                raise HAProxyError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)

    async def worker_pids(self) -> list[int]:
        return (await self.processes())[0]

    async def processes(self) -> tuple[list[int], int]:
        """The current workers' pids and the master's count of failed reloads (master CLI ``show proc``)."""
        text = await _ask(self.master_socket, "show proc;quit")  # the master CLI stays open without quit
        pids, section, failed = [], "", 0
        for line in text.splitlines():
            if line.startswith("#"):
                section = line
                continue
            fields = line.split()
            if (match := FAILED.search(line)) is not None:
                failed = int(match.group(1))
            if section.startswith("# workers") and fields and fields[0].isdigit():
                pids.append(int(fields[0]))
        return pids, failed

    async def command(self, command: str) -> str:
        return await _ask(self.socket, command)

    async def run(self, commands: Sequence[str]) -> None:
        """Runtime API commands in one connection; any answer text is an error (``set server`` is silent)."""
        if not commands:
            return
        answer = await _ask(self.socket, ";".join(c.replace("\\", "\\\\").replace(";", "\\;") for c in commands))
        problems = [line for line in answer.splitlines() if line.strip() and not INFO.search(line)]
        if problems:
            raise HAProxyError(f"runtime API: {'; '.join(problems)}")

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)  # its workers exit when the master is gone
            await self.process.wait()


async def _ask(path: Path, command: str) -> str:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(command.encode() + b"\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.read(), 10)).decode(errors="replace")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
