"""A simulated agent speaking the real master <-> agent protocol, without running anything.

It registers over HTTP, answers PINGs, answers every RUN_TASK with a TASK_RUNNING update
(uuid, agent_id, source SOURCE_EXECUTOR) as a real agent's executor would (and, with
``finish_after``, a TASK_FINISHED that many seconds later: batch work that ends on its own), and
every KILL_TASK of a task it runs with TASK_KILLED. It remembers the task ids it was asked to run and to kill
(benchmarks count launches and kills from them). Thousands fit in one process, so benchmarks
and simulations load a real master through its real endpoints.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import httpx

from meseta.core.resources import Resources
from meseta.protocol.agent_wire import AGENT_CALL_PATH, AGENT_STREAM_PATH, STREAM_ID_HEADER
from meseta.protocol.recordio import RecordIODecoder
from meseta.runtime.fast_http import FastPoster


class FakeAgent:
    def __init__(self, master: str, hostname: str, resources: str, client: httpx.AsyncClient,
                 poster: FastPoster | None = None, finish_after: float | None = None) -> None:
        """``client`` holds the event stream; ``poster`` (optional, shareable) makes the calls."""
        self.master = master if master.startswith("http") else f"http://{master}"
        host, _, port = self.master.split("//")[1].partition(":")
        self.poster = poster or FastPoster(host, int(port or 5050), connections=2)
        self.hostname = hostname
        self.resources = Resources.parse(resources)
        self.client = client
        self.agent_id: str | None = None
        self.stream_id = ""
        self.tasks_run = 0
        self.launched: list[str] = []  # task ids, in RUN_TASK order
        self.killed: list[str] = []
        self.finish_after = finish_after
        self._finishing: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        info = {"hostname": self.hostname, "port": 5051, "resources": self.resources.to_json()}
        body = {"type": "REGISTER", "agent_info": info}
        async with self.client.stream("POST", self.master + AGENT_STREAM_PATH, json=body) as response:
            self.stream_id = response.headers[STREAM_ID_HEADER]
            decoder = RecordIODecoder()
            async for chunk in response.aiter_raw():
                for record in decoder.feed(chunk):
                    await self._on_message(json.loads(record))

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "REGISTERED":
            self.agent_id = message["registered"]["agent_id"]["value"]
        elif kind == "PING":
            await self._call({"type": "PONG"})
        elif kind == "RUN_TASK":
            self.tasks_run += 1
            self.launched.append(message["task"]["task_id"]["value"])
            await self._update(message["framework_info"]["id"], message["task"]["task_id"], "TASK_RUNNING")
            if self.finish_after is not None:
                task = asyncio.get_running_loop().create_task(
                    self._finish(message["framework_info"]["id"], message["task"]["task_id"]))
                self._finishing.add(task)
                task.add_done_callback(self._finishing.discard)
        elif kind == "KILL_TASK":
            task_id = message["task_id"]["value"]
            if task_id in self.launched and task_id not in self.killed:
                self.killed.append(task_id)
                await self._update(message["framework_id"], message["task_id"], "TASK_KILLED")

    async def _finish(self, framework_id: dict[str, str], task_id: dict[str, str]) -> None:
        assert self.finish_after is not None
        await asyncio.sleep(self.finish_after)
        if task_id["value"] not in self.killed:
            await self._update(framework_id, task_id, "TASK_FINISHED")

    async def _update(self, framework_id: dict[str, str], task_id: dict[str, str], state: str) -> None:
        status = {
            "task_id": task_id,
            "state": state,
            "source": "SOURCE_EXECUTOR",
            "agent_id": {"value": self.agent_id},
            "timestamp": time.time(),
            "uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
        }
        update = {"framework_id": framework_id, "status": status, "latest_state": state}
        await self._call({"type": "STATUS_UPDATE", "update": update})

    async def _call(self, body: dict[str, Any]) -> None:
        body = {**body, "agent_id": {"value": self.agent_id}}
        await self.poster.post(AGENT_CALL_PATH, body, {STREAM_ID_HEADER: self.stream_id})
