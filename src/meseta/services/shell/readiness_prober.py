"""The readiness checks' HTTP side: one asyncio task per probed instance, run from the services
leader (as Marathon does; health checks, by contrast, run on the agents).

    sync(wanted probes)  -> a task for each new one, the ones no longer wanted cancelled
    task: GET url (timeout) -> machine.readiness_answer -> ready: done | wait interval, again
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

import httpx

from meseta.services.deploy.readiness import BODY_LIMIT, Answer, Probe

log = logging.getLogger(__name__)

Report = Callable[[Probe, Answer], Awaitable[bool]]  # -> whether the instance is now ready


class ReadinessProber:
    def __init__(self, report: Report) -> None:
        self.report = report
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None

    def sync(self, probes: list[Probe]) -> None:
        wanted = {p.task_id: p for p in probes}
        for task_id in [t for t in self._tasks if t not in wanted]:
            self._tasks.pop(task_id).cancel()
        for task_id, probe in wanted.items():
            if task_id not in self._tasks:
                task = asyncio.get_running_loop().create_task(self._run(probe))
                self._tasks[task_id] = task
                task.add_done_callback(functools.partial(self._ended, task_id))

    def _ended(self, task_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(task_id) is task:
            del self._tasks[task_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("readiness probe of %s failed", task_id, exc_info=task.exception())

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self, probe: Probe) -> None:
        while True:
            answer = await self._get(probe)
            if await self.report(probe, answer):
                return
            await asyncio.sleep(probe.interval)

    async def _get(self, probe: Probe) -> Answer:
        """One GET, all of it within the probe's timeout; at most BODY_LIMIT bytes of the body read."""
        if self._client is None:
            self._client = httpx.AsyncClient(verify=False, follow_redirects=False)  # HTTPS: not verified
        try:
            async with asyncio.timeout(probe.timeout), self._client.stream("GET", probe.url) as response:
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= BODY_LIMIT:
                        break
                return Answer(response.status_code, response.headers.get("content-type", ""),
                              body[:BODY_LIMIT].decode(errors="replace"))
        except Exception as exc:  # refused, reset, timed out, a URL httpx refuses...
            log.debug("readiness %s of %s: %r", probe.url, probe.task_id, exc)
            return Answer(0, "", repr(exc))
