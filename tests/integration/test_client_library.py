"""meseta.client's asyncio scheduler and executor drivers against real master and agent processes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from meseta.client import Scheduler, SchedulerDriver

EXECUTOR = Path(__file__).with_name("client_executor.py")
RESOURCES = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
             {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]


class Collector(Scheduler):
    def __init__(self) -> None:
        self.offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.updates: list[dict[str, Any]] = []
        self.messages: list[bytes] = []
        self.changed = asyncio.Event()
        self.registered_id: str | None = None

    async def registered(self, driver: SchedulerDriver, framework_id: str, master_info: dict[str, Any]) -> None:
        self.registered_id = framework_id
        self.changed.set()

    async def resource_offers(self, driver: SchedulerDriver, offers: list[dict[str, Any]]) -> None:
        for offer in offers:
            self.offers.put_nowait(offer)

    async def status_update(self, driver: SchedulerDriver, status: dict[str, Any]) -> None:
        self.updates.append(status)
        self.changed.set()

    async def framework_message(self, driver: SchedulerDriver, executor_id: str, agent_id: str, data: bytes) -> None:
        self.messages.append(data)
        self.changed.set()

    async def until(self, predicate: Any, timeout: float = 20.0) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(loop(), timeout)

    def states(self, task_id: str) -> list[str]:
        return [u["state"] for u in self.updates if u["task_id"]["value"] == task_id]


@pytest.mark.integration
async def test_client_scheduler_and_executor_end_to_end(separate_processes: str) -> None:
    collector = Collector()
    driver = SchedulerDriver(collector, {"user": "", "name": "client-lib"}, separate_processes)
    await driver.start()
    try:
        await collector.until(lambda: collector.registered_id is not None)
        offer = await asyncio.wait_for(collector.offers.get(), 20)
        agent_id = offer["agent_id"]["value"]
        executor = {"executor_id": {"value": "client-echo"}, "resources": RESOURCES,
                    "command": {"value": f"{sys.executable} {EXECUTOR}"}}
        tasks = [{"name": "c", "task_id": {"value": "cmd"}, "agent_id": offer["agent_id"], "resources": RESOURCES,
                  "command": {"value": "true"}},
                 {"name": "e", "task_id": {"value": "exe"}, "agent_id": offer["agent_id"], "resources": RESOURCES,
                  "executor": executor}]
        await driver.launch([offer["id"]["value"]], tasks)
        await collector.until(lambda: "TASK_FINISHED" in collector.states("cmd")
                              and "TASK_FINISHED" in collector.states("exe"))
        await driver.message(agent_id, "client-echo", b"hi")
        await collector.until(lambda: b"echo:hi" in collector.messages)
        count = len(collector.updates)
        await driver.reconcile([{"task_id": {"value": "nope"}}])
        await collector.until(lambda: len(collector.updates) > count)
        assert collector.updates[-1]["state"] == "TASK_LOST" and "uuid" not in collector.updates[-1]
        await driver.suppress()
        await driver.revive()
    finally:
        await driver.stop()
