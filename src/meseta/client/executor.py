"""An asyncio executor driver for the Mesos v1 executor API (``POST /api/v1/executor`` on the agent).

Lifecycle (``run``)::

    read MESOS_* from the environment -> SUBSCRIBE (with unacknowledged tasks and updates)
        SUBSCRIBED -> registered()   LAUNCH -> launch_task()   KILL -> kill_task()
        ACKNOWLEDGED -> the update is forgotten   MESSAGE -> framework_message()
        SHUTDOWN -> shutdown(), then stop
        stream ends: MESOS_CHECKPOINT=1 -> resubscribe within the backoff; else shutdown()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Mapping
from typing import Any

import httpx

from meseta.client.scheduler_protocol import decode_data, encode_data, new_uuid
from meseta.protocol.recordio import RecordIODecoder
from meseta.protocol.task_states import TERMINAL

_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "secs": 1.0, "mins": 60.0, "hrs": 3600.0, "days": 86400.0,
          "weeks": 604800.0}


def parse_duration(text: str, default: float = 0.0) -> float:
    """Stout durations: ``5secs``, ``2.5mins``, ``100ms``."""
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * _UNITS[unit]
            except ValueError:
                return default
    return default


class Executor:
    """Override the callbacks you need; every one is a coroutine and defaults to doing nothing."""

    async def registered(self, driver: ExecutorDriver, executor_info: dict[str, Any],
                         framework_info: dict[str, Any], agent_info: dict[str, Any]) -> None: ...
    async def launch_task(self, driver: ExecutorDriver, task: dict[str, Any]) -> None: ...
    async def launch_group(self, driver: ExecutorDriver, tasks: list[dict[str, Any]]) -> None: ...
    async def kill_task(self, driver: ExecutorDriver, task_id: str) -> None: ...
    async def acknowledged(self, driver: ExecutorDriver, task_id: str, uuid: str) -> None: ...
    async def framework_message(self, driver: ExecutorDriver, data: bytes) -> None: ...
    async def shutdown(self, driver: ExecutorDriver) -> None: ...
    async def error(self, driver: ExecutorDriver, message: str) -> None: ...


class ExecutorDriver:
    def __init__(self, executor: Executor, *, env: Mapping[str, str] | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        env = os.environ if env is None else env
        self.executor = executor
        self.base = f"http://{env['MESOS_AGENT_ENDPOINT']}"
        self.framework_id = env["MESOS_FRAMEWORK_ID"]
        self.executor_id = env["MESOS_EXECUTOR_ID"]
        self.checkpoint = env.get("MESOS_CHECKPOINT") == "1"
        self.backoff_max = parse_duration(env.get("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs"), 2.0)
        self.tasks: dict[str, dict[str, Any]] = {}  # launched, not yet terminal-and-acknowledged
        self.updates: dict[str, dict[str, Any]] = {}  # uuid -> status, until ACKNOWLEDGED
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
        self._stopped = False

    def _ids(self) -> dict[str, Any]:
        return {"framework_id": {"value": self.framework_id}, "executor_id": {"value": self.executor_id}}

    async def run(self) -> None:
        while not self._stopped:
            with contextlib.suppress(httpx.HTTPError, OSError):
                await self._subscribe_once()
            if self._stopped or not self.checkpoint:
                break
            await asyncio.sleep(min(1.0, self.backoff_max))
        if not self._stopped:
            await self.executor.shutdown(self)
        await self._client.aclose()

    async def _subscribe_once(self) -> None:
        body = {"type": "SUBSCRIBE", **self._ids(), "subscribe": {
            "unacknowledged_tasks": list(self.tasks.values()),
            "unacknowledged_updates": [{"status": s} for s in self.updates.values()]}}
        async with self._client.stream("POST", self.base + "/api/v1/executor", json=body) as response:
            if response.status_code != 200:
                raise httpx.HTTPError(f"SUBSCRIBE answered {response.status_code}")
            decoder = RecordIODecoder()
            async for chunk in response.aiter_raw():
                for record in decoder.feed(chunk):
                    await self._on_event(json.loads(record))
                    if self._stopped:
                        return

    async def _on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        payload = event.get(kind.lower()) or {}
        if kind == "SUBSCRIBED":
            await self.executor.registered(self, payload["executor_info"], payload["framework_info"],
                                           payload["agent_info"])
        elif kind == "LAUNCH":
            self.tasks[payload["task"]["task_id"]["value"]] = payload["task"]
            await self.executor.launch_task(self, payload["task"])
        elif kind == "LAUNCH_GROUP":
            tasks = payload["task_group"]["tasks"]
            for task in tasks:
                self.tasks[task["task_id"]["value"]] = task
            await self.executor.launch_group(self, tasks)
        elif kind == "KILL":
            await self.executor.kill_task(self, payload["task_id"]["value"])
        elif kind == "ACKNOWLEDGED":
            status = self.updates.pop(payload["uuid"], None)
            if status is not None and status["state"] in TERMINAL:
                self.tasks.pop(payload["task_id"]["value"], None)
            await self.executor.acknowledged(self, payload["task_id"]["value"], payload["uuid"])
        elif kind == "MESSAGE":
            await self.executor.framework_message(self, decode_data(payload.get("data", "")))
        elif kind == "SHUTDOWN":
            self._stopped = True
            await self.executor.shutdown(self)
        elif kind == "ERROR":
            await self.executor.error(self, str(payload.get("message", "")))

    async def send_status_update(self, status: dict[str, Any]) -> None:
        status = {"timestamp": time.time(), "uuid": new_uuid(), **status,
                  "source": "SOURCE_EXECUTOR", "executor_id": {"value": self.executor_id}}
        self.updates[status["uuid"]] = status
        await self._post({"type": "UPDATE", **self._ids(), "update": {"status": status}})

    async def send_framework_message(self, data: bytes) -> None:
        await self._post({"type": "MESSAGE", **self._ids(), "message": {"data": encode_data(data)}})

    async def _post(self, body: dict[str, Any]) -> None:
        response = await self._client.post(self.base + "/api/v1/executor", json=body)
        if response.status_code != 202:
            raise RuntimeError(f"{body['type']} answered {response.status_code}: {response.text}")

    async def stop(self) -> None:
        self._stopped = True


