"""Getting the tasks' output to the user: fetched when a task is done, or followed while it runs.

    without --follow   task done for good -> download stdout and stderr (at most FETCHES at once,
                       over each agent's keep-alive connections) -> printed in index order: task i's output
                       once tasks 0..i-1 have been printed (a retried task: its last attempt's)
    --follow           task started -> a follower polls its files every FOLLOW_POLL seconds and
                       prints what is new (``[i] `` before each line when --count > 1); the task
                       ended -> one last read, then the follower stops
    --no-output        nothing is read from the agents

A file that cannot be read (agent gone, sandbox collected) is reported on stderr, and the run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from meseta.batch.sandbox import FOLLOW_CHUNK, AgentSandboxes, SandboxError
from meseta.batch.terminal import LinePrefixer, Terminal

FETCHES = 16  # outputs downloaded at once (the agents serve files from 4 threads each)
FOLLOW_POLL = 0.25  # seconds between reads of a followed task's files
STREAMS = ("stdout", "stderr")


@dataclass(slots=True)
class FollowedFile:
    """One file of a followed task: how far it has been printed."""

    name: str  # stdout or stderr
    prefixer: LinePrefixer
    offset: int = 0
    seen: bool = False  # it existed at some read


class Outputs:
    def __init__(self, terminal: Terminal, count: int, *, follow: bool, fetch: bool) -> None:
        self.terminal, self.count, self.follow, self.fetch = terminal, count, follow, fetch
        self.framework_id = ""
        self.addresses: dict[str, str] = {}  # agent id -> host:port
        self.agents: dict[str, AgentSandboxes] = {}
        self.fetching = asyncio.Semaphore(FETCHES)
        self.ready: dict[int, tuple[bytes, bytes]] = {}
        self.next_printed = 0
        self.ended: dict[str, asyncio.Event] = {}  # followed task id -> set when it ended
        self.work: set[asyncio.Task[None]] = set()

    def note_agent(self, agent_id: str, address: str | None) -> None:
        if address is not None:
            self.addresses[agent_id] = address

    def _agent(self, agent_id: str) -> AgentSandboxes:
        files = self.agents.get(agent_id)
        if files is None:
            address = self.addresses.get(agent_id)
            if address is None:
                raise SandboxError(f"agent {agent_id}: its address is unknown (no offer named it)")
            files = self.agents[agent_id] = AgentSandboxes(address, agent_id, self.framework_id)
        return files

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.work.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.work.discard(task)
        if not task.cancelled() and task.exception() is not None:  # a bug: say so, go on
            self.terminal.note(f"reading output failed: {task.exception()!r}")

    # ------------------------------------------------------------- events from the scheduler
    def on_started(self, index: int, task_id: str, agent_id: str) -> None:
        if self.follow and task_id not in self.ended:
            self.ended[task_id] = asyncio.Event()
            self._spawn(self._follow(index, task_id, agent_id, self.ended[task_id]))

    def on_ended(self, index: int, task_id: str, agent_id: str, final: bool) -> None:
        if task_id in self.ended:
            self.ended[task_id].set()
        if final and self.fetch and not self.follow:
            self._spawn(self._fetch(index, task_id, agent_id))
        elif final:
            self._printable(index, b"", b"")

    async def close(self) -> None:
        """Wait for every fetch and follower, then print what is left in order."""
        while self.work:
            await asyncio.gather(*list(self.work), return_exceptions=True)
        for files in self.agents.values():
            await files.close()

    async def cancel(self) -> None:
        for task in list(self.work):
            task.cancel()
        with contextlib.suppress(Exception):
            await self.close()

    # ------------------------------------------------------------- fetch once done
    async def _fetch(self, index: int, task_id: str, agent_id: str) -> None:
        out, err = b"", b""
        try:
            async with self.fetching:
                files = self._agent(agent_id)
                try:
                    sandbox = await files.sandbox(task_id)
                    out = await files.download(f"{sandbox}/stdout")
                except SandboxError as exc:
                    if exc.status != 404:
                        raise
                    sandbox = await files.sandbox(task_id, look_up=True)
                    out = await files.download(f"{sandbox}/stdout")
                err = await files.download(f"{sandbox}/stderr")
        except (SandboxError, KeyError, ValueError) as exc:
            self.terminal.note(f"task {index}: output not fetched: {exc}")
        finally:  # printed or not, the tasks after it are not held up
            self._printable(index, out, err)

    def _printable(self, index: int, out: bytes, err: bytes) -> None:
        self.ready[index] = (out, err)
        while self.next_printed in self.ready:
            out, err = self.ready.pop(self.next_printed)
            if out:
                self.terminal.out(out)
            if err:
                self.terminal.err(err)
            self.next_printed += 1

    # ------------------------------------------------------------- follow while running
    async def _follow(self, index: int, task_id: str, agent_id: str, ended: asyncio.Event) -> None:
        prefix = f"[{index}] " if self.count > 1 else ""
        files_read = [FollowedFile(name, LinePrefixer(prefix)) for name in STREAMS]
        try:
            files = self._agent(agent_id)
            sandbox = await files.sandbox(task_id)  # its files appear there once the agent starts it
            while True:
                last = ended.is_set()
                if last and not any(f.seen for f in files_read):  # not where the layout says: ask /state
                    sandbox = await files.sandbox(task_id, look_up=True)
                for followed in files_read:
                    await self._read_new(files, sandbox, followed)
                if last:
                    break
                await _until(ended, FOLLOW_POLL)
        except SandboxError as exc:
            self.terminal.note(f"task {index}: stopped following its output: {exc}")
        for followed in files_read:
            self._emit(followed.name, followed.prefixer.end())

    async def _read_new(self, files: AgentSandboxes, sandbox: str, followed: FollowedFile) -> None:
        path = f"{sandbox}/{followed.name}"
        size = await files.size(path)
        followed.seen = followed.seen or size is not None
        while size is not None and followed.offset < size:
            length = min(FOLLOW_CHUNK, size - followed.offset)
            text = await files.read(path, followed.offset, length)
            followed.offset += length
            self._emit(followed.name, followed.prefixer.feed(text))

    def _emit(self, name: str, text: str) -> None:
        if text:
            (self.terminal.out if name == "stdout" else self.terminal.err)(text.encode())


async def _until(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
