"""Reading the tasks' ``stdout`` and ``stderr`` from the agents' sandboxes, over HTTP.

Where a task's files are::

    agent address    the offer's url (``offers.agent_address``), noted when the task was launched
    sandbox          the layout the agent owns (Mesos's; a command task's executor id is its task id):
                       <flags.work_dir>/slaves/<agent>/frameworks/<fw>/executors/<task>/runs/latest
                     with work_dir from one GET /state per agent; where that path is not found,
                     /state is read again for the directory it shows for the task:
                       frameworks[id=ours].executors|completed_executors[].directory of the
                       executor whose tasks|completed_tasks hold the task id
    whole file       GET /files/download?path=<sandbox>/stdout   (raw bytes, the size at open)
    growing file     GET /files/read?path=...&offset=-1  -> {"offset": size}, then
                     GET /files/read?path=...&offset=N&length=size-N  (so exactly those bytes are
                     consumed; the agent decodes them as UTF-8, a character cut by the writer
                     mid-way shows as U+FFFD)

Each agent is read over its own few keep-alive connections (``http_get.Getter``, CONNECTIONS);
callers bound how many fetches run at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from meseta.batch.http_get import GetError, Getter

CONNECTIONS = 4  # keep-alive connections to each agent (it serves files from 4 threads)
FOLLOW_CHUNK = 1024 * 1024  # bytes read per /files/read while following


class SandboxError(RuntimeError):
    """A sandbox or file could not be read; the message names the agent and the path."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the agent's HTTP status, when it answered


def sandboxes_in_state(state: Mapping[str, Any], framework_id: str) -> dict[str, str]:
    """task id -> sandbox directory, for this framework's tasks in an agent's /state."""
    found: dict[str, str] = {}
    for framework in [*state.get("frameworks", ()), *state.get("completed_frameworks", ())]:
        if framework.get("id") != framework_id:
            continue
        for executor in [*framework.get("executors", ()), *framework.get("completed_executors", ())]:
            for task in [*executor.get("tasks", ()), *executor.get("completed_tasks", ())]:
                found[str(task.get("id"))] = str(executor.get("directory"))
    return found


class AgentSandboxes:
    """The sandboxes of this run's tasks on one agent."""

    def __init__(self, address: str, agent_id: str, framework_id: str) -> None:
        host, _, port = address.rpartition(":")
        self.getter, self.base = Getter(host, int(port), CONNECTIONS), f"http://{address}"
        self.agent_id, self.framework_id = agent_id, framework_id
        self.known: dict[str, str] = {}
        self.work_dir: str | None = None
        self._reading = asyncio.Lock()

    async def sandbox(self, task_id: str, *, look_up: bool = False) -> str:
        """The task's sandbox directory: the agent's layout under its work_dir (one /state read per
        agent), or with ``look_up`` the directory /state shows for the task (read again now)."""
        if self.work_dir is None or look_up:
            async with self._reading:  # one /state read at a time; it answers for every waiting task
                if self.work_dir is None or (look_up and task_id not in self.known):
                    await self._read_state()
        if look_up and task_id in self.known:
            return self.known[task_id]
        if not self.work_dir:
            raise SandboxError(f"agent {self.base}: /state names no work_dir and no sandbox of task {task_id}")
        return f"{self.work_dir}/slaves/{self.agent_id}/frameworks/{self.framework_id}/executors/{task_id}/runs/latest"

    async def _read_state(self) -> None:
        state = await self._json("/state")
        try:
            self.work_dir = str((state.get("flags") or {}).get("work_dir") or "")
            self.known.update(sandboxes_in_state(state, self.framework_id))
        except (AttributeError, TypeError) as exc:
            raise SandboxError(f"agent {self.base}: /state is not what an agent answers: {exc}") from None

    async def _get(self, route: str, **params: Any) -> bytes:
        try:
            status, body = await self.getter.get(route, params)
        except GetError as exc:
            raise SandboxError(f"agent {self.base}: {exc}") from None
        if status != 200:
            text = body[:200].decode(errors="replace")
            raise SandboxError(f"agent {self.base}: {route} answered {status}: {text}", status)
        return body

    async def _json(self, route: str, **params: Any) -> Any:
        body = await self._get(route, **params)
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise SandboxError(f"agent {self.base}: {route} answered no JSON: {exc}") from None
        if not isinstance(document, dict):
            raise SandboxError(f"agent {self.base}: {route} answered {type(document).__name__}, not an object")
        return document

    async def download(self, path: str) -> bytes:
        return await self._get("/files/download", path=path)

    async def size(self, path: str) -> int | None:
        """The file's size now; None while it does not exist."""
        try:
            return int((await self._json("/files/read", path=path, offset=-1))["offset"])
        except SandboxError as exc:
            if exc.status == 404:
                return None
            raise

    async def read(self, path: str, offset: int, length: int) -> str:
        return str((await self._json("/files/read", path=path, offset=offset, length=length))["data"])

    async def close(self) -> None:
        await self.getter.close()
