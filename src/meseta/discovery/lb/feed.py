"""What ``meseta lb`` reads from and tells the services scheduler (HTTP, asyncio).

    GET    /v2/apps?embed=apps.tasks&embed=apps.readiness    full state: at start, after each trigger
    GET    /v2/events?event_type=...                          SSE triggers (status, health, api post,
                                                              deployments, instance_draining_event)
    PUT    /v2/loadbalancers/<lbId> {"groups", "ttlSeconds"}  registration, renewed every ttlSeconds/3
    POST   /v2/loadbalancers/<lbId>/drained {"taskIds"}       these tasks' servers are drained
    DELETE /v2/loadbalancers/<lbId>                           clean exit

A services scheduler without the drain API answers 404 to the registration and 400 to the
``instance_draining_event`` filter: the LB then says so in its log and status (no drain before kill).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

log = logging.getLogger(__name__)

TRIGGERS = ("status_update_event", "health_status_changed_event", "api_post_event", "deployment_info",
            "deployment_success", "deployment_failed", "deployment_step_success", "app_terminated_event")
DRAINING = "instance_draining_event"
TTL_SECONDS = 15


class Feed:
    def __init__(self, urls: Sequence[str], lb_id: str, groups: Sequence[str]) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.lb_id = lb_id
        self.groups = list(groups)
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.05),
                                        headers={"User-Agent": "meseta-lb", "Accept": "application/json"})
        self.drain_supported: bool | None = None

    @property
    def url(self) -> str:
        return self.urls[0]

    def _rotate(self) -> None:
        self.urls.append(self.urls.pop(0))

    async def apps(self) -> list[dict[str, Any]]:
        for _ in self.urls:
            try:
                response = await self.client.get(f"{self.url}/v2/apps",
                                                  params=[("embed", "apps.tasks"), ("embed", "apps.readiness")])
                response.raise_for_status()
                return list(response.json()["apps"])
            except (httpx.HTTPError, ValueError, KeyError) as error:
                log.warning("GET %s/v2/apps failed: %s", self.url, error)
                self._rotate()
        raise ConnectionError("no services scheduler answered GET /v2/apps")

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Events until the stream ends (the caller reconnects); the first item is {"eventType": "connected"}."""
        types = [*TRIGGERS, *([DRAINING] if self.drain_supported is not False else [])]
        params: list[tuple[str, str | int | float | bool | None]] = [("event_type", t) for t in types]
        async with self.client.stream("GET", f"{self.url}/v2/events", params=params,
                                      headers={"Accept": "text/event-stream"},
                                      timeout=httpx.Timeout(10.0, read=None)) as response:
            if response.status_code == 400 and DRAINING in types:
                self.drain_supported = False
                log.warning("%s does not stream %s: instances will not be drained before they are killed",
                            self.url, DRAINING)
                return
            response.raise_for_status()
            yield {"eventType": "connected"}
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    try:
                        yield json.loads(line[5:])
                    except ValueError:
                        log.warning("unreadable event from %s: %.200s", self.url, line)

    async def register(self) -> bool:
        """PUT the registration; False if the scheduler has no drain API (404/405)."""
        response = await self.client.put(f"{self.url}/v2/loadbalancers/{self.lb_id}",
                                         json={"groups": self.groups, "ttlSeconds": TTL_SECONDS})
        if response.status_code in (404, 405):
            if self.drain_supported is not False:
                log.warning("%s has no /v2/loadbalancers: instances will not be drained before they are killed",
                            self.url)
            self.drain_supported = False
            return False
        response.raise_for_status()
        self.drain_supported = True
        return True

    async def drained(self, task_ids: Sequence[str]) -> None:
        response = await self.client.post(f"{self.url}/v2/loadbalancers/{self.lb_id}/drained",
                                          json={"taskIds": list(task_ids)})
        if response.status_code not in (200, 404):  # 404: the task is gone already
            log.warning("POST drained %s: %s %s", task_ids, response.status_code, response.text[:200])

    async def deregister(self) -> None:
        try:
            await self.client.delete(f"{self.url}/v2/loadbalancers/{self.lb_id}")
        except httpx.HTTPError as error:
            log.warning("DELETE /v2/loadbalancers/%s failed: %s", self.lb_id, error)

    async def close(self) -> None:
        await self.client.aclose()
