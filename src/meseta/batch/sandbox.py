"""Reading the tasks' ``stdout`` and ``stderr`` from the agents' sandboxes, over HTTP.

Where a task's files are::

    agent address    the offer's url (``offers.agent_address``), noted when the task was launched
    sandbox          the agent's GET /state: frameworks[id=ours].executors|completed_executors
                     [].directory of the executor whose tasks|completed_tasks hold the task id
                     (one /state read answers for every task of the run on that agent; reads are
                     coalesced); when the executor has aged out of /state, the layout the agent
                     owns: <flags.work_dir>/slaves/<agent>/frameworks/<fw>/executors/<task>/runs/latest
    whole file       GET /files/download?path=<sandbox>/stdout   (raw bytes, the size at open)
    growing file     GET /files/read?path=...&offset=-1  -> {"offset": size}, then
                     GET /files/read?path=...&offset=N&length=size-N  (so exactly those bytes are
                     consumed; the agent decodes them as UTF-8, a character cut by the writer
                     mid-way shows as U+FFFD)

All agents share one ``httpx.AsyncClient`` (keep-alive connections, at most CONNECTIONS in all);
callers bound how many fetches run at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

CONNECTIONS = 32  # keep-alive connections to all agents together
FOLLOW_CHUNK = 1024 * 1024  # bytes read per /files/read while following


class SandboxError(RuntimeError):
    """A sandbox or file could not be read; the message names the agent and the task."""


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

    def __init__(self, client: httpx.AsyncClient, address: str, agent_id: str, framework_id: str) -> None:
        self.client, self.base = client, f"http://{address}"
        self.agent_id, self.framework_id = agent_id, framework_id
        self.known: dict[str, str] = {}
        self.work_dir: str | None = None
        self._reading = asyncio.Lock()

    async def sandbox(self, task_id: str, *, fallback: bool = True) -> str | None:
        """The task's sandbox directory; None while the agent does not show it yet (fallback off)."""
        if task_id not in self.known:
            async with self._reading:  # one /state read at a time; it answers for every waiting task
                if task_id not in self.known:
                    await self._read_state()
        if task_id in self.known:
            return self.known[task_id]
        if fallback and self.work_dir:
            return (f"{self.work_dir}/slaves/{self.agent_id}/frameworks/{self.framework_id}/executors/"
                    f"{task_id}/runs/latest")
        return None

    async def _read_state(self) -> None:
        state = (await self._get("/state")).json()
        self.work_dir = str((state.get("flags") or {}).get("work_dir") or "") or None
        self.known.update(sandboxes_in_state(state, self.framework_id))

    async def _get(self, route: str, **params: Any) -> httpx.Response:
        try:
            response = await self.client.get(self.base + route, params=params)
        except httpx.HTTPError as exc:
            raise SandboxError(f"agent {self.base}: {route}: {exc or type(exc).__name__}") from None
        if response.status_code != 200:
            raise SandboxError(f"agent {self.base}: {route} answered {response.status_code}: {response.text[:200]}")
        return response

    async def download(self, path: str) -> bytes:
        return (await self._get("/files/download", path=path)).content

    async def size(self, path: str) -> int | None:
        """The file's size now; None while it does not exist."""
        try:
            return int((await self._get("/files/read", path=path, offset=-1)).json()["offset"])
        except SandboxError as exc:
            if " 404" in str(exc):
                return None
            raise

    async def read(self, path: str, offset: int, length: int) -> str:
        return str((await self._get("/files/read", path=path, offset=offset, length=length)).json()["data"])


def shared_client() -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    return httpx.AsyncClient(timeout=httpx.Timeout(30.0), limits=limits)
