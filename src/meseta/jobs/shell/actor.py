"""The jobs scheduler's asyncio shell: a Mesos framework (``meseta.client``) around the pure
:class:`~meseta.jobs.machine.JobsMachine`.

    driver callbacks (subscribed, offers, updates)  --+
    REST API calls (jobs.shell.api)                   +--> one lock: machine handler, then its
    the clock: a wake-up at machine.next_wakeup()   --+    effects in order (client.effect_runner)

The clock sleeps until the machine's next wake-up (a due time, a revive ahead of one, a run's
time limit), at most a second, and is woken early by any API call, so a run starts on time
rather than at the next whole-second tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from meseta.client.effect_runner import EffectRunner
from meseta.client.scheduler import Scheduler, SchedulerDriver
from meseta.framework.effects import Effect
from meseta.jobs.effects import KINDS
from meseta.jobs.machine import JobsMachine
from meseta.runtime.kv_store import KvStore

log = logging.getLogger(__name__)
MAX_SLEEP = 1.0
EVENTS_KEPT = 1000
ONE_WEEK = 7 * 24 * 3600.0


def framework_info(name: str, role: str, user: str, framework_id: str | None, hostname: str) -> dict[str, Any]:
    info: dict[str, Any] = {"user": user, "name": name, "role": role, "checkpoint": True,
                            "failover_timeout": ONE_WEEK, "hostname": hostname}
    if framework_id:
        info["id"] = {"value": framework_id}
    return info


class JobsActor(Scheduler):
    def __init__(self, machine: JobsMachine, store: KvStore, master: str, *, name: str = "chronos",
                 role: str = "*", user: str = "root", hostname: str = "127.0.0.1",
                 clock: Callable[[], float] = time.time) -> None:
        self.machine = machine
        self.store = store
        self.clock = clock
        self.lock = asyncio.Lock()
        self.master = master
        self.name, self.role, self.user, self.hostname = name, role, user, hostname
        self.events: deque[dict[str, Any]] = deque(maxlen=EVENTS_KEPT)
        self.runner = EffectRunner(store, "jobs", self._emitted)
        self.driver: SchedulerDriver | None = None
        self._clock_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.started_at = clock()

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        stored = {kind: await asyncio.to_thread(self.store.load, kind) for kind in KINDS}
        self.machine.restore(stored, self.clock())
        info = framework_info(self.name, self.role, self.user, self.machine.framework_id, self.hostname)
        self.driver = self.runner.driver = SchedulerDriver(self, info, self.master)
        if self.machine.framework_id:
            self.driver.protocol.framework_id = self.machine.framework_id
        await self.driver.start()
        self._clock_task = asyncio.get_running_loop().create_task(self._clock_forever())

    async def stop(self) -> None:
        if self._clock_task is not None:
            self._clock_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock_task
        await self.runner.close()
        if self.driver is not None:
            await self.driver.stop(failover=True)  # keep the framework (and its runs) for the next leader

    def connected(self) -> bool:
        return self.driver is not None and self.driver.connected

    # ------------------------------------------------------------ one step at a time
    async def run(self, handler: Callable[..., list[Effect]], *args: Any) -> None:
        """Call a machine handler (its last argument is ``now``) and carry out its effects."""
        async with self.lock:
            effects = handler(*args, self.clock())
            await self.runner.execute(effects)
        self._wake.set()

    def _emitted(self, event: dict[str, Any]) -> None:
        event = {**event, "timestamp": self.clock()}
        self.events.append(event)
        log.info("jobs: %s", event)

    async def _clock_forever(self) -> None:
        while not self.runner.stopped:
            wakeup = self.machine.next_wakeup()
            delay = MAX_SLEEP if wakeup is None else min(MAX_SLEEP, max(0.0, wakeup - self.clock()))
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            if self._wake.is_set() and (wakeup is None or wakeup > self.clock()):
                continue  # woken by a change: look at the next wake-up again
            try:
                async with self.lock:
                    await self.runner.execute(self.machine.tick(self.clock()))
            except Exception:  # the clock must survive one bad tick
                log.exception("jobs: tick failed")

    # ------------------------------------------------------------ driver callbacks
    async def registered(self, driver: SchedulerDriver, framework_id: str, master_info: dict[str, Any]) -> None:
        log.info("jobs: subscribed as framework %s", framework_id)
        await self.run(self.machine.subscribed, framework_id)

    async def reregistered(self, driver: SchedulerDriver, master_info: dict[str, Any]) -> None:
        log.info("jobs: subscribed again as framework %s", driver.framework_id)
        await self.run(self.machine.subscribed, driver.framework_id)

    async def disconnected(self, driver: SchedulerDriver) -> None:
        log.warning("jobs: disconnected from the master (%s); subscribing again", driver.last_error)

    async def resource_offers(self, driver: SchedulerDriver, offers: list[dict[str, Any]]) -> None:
        await self.run(self.machine.offers, offers)

    async def offer_rescinded(self, driver: SchedulerDriver, offer_id: str) -> None:
        async with self.lock:
            self.machine.rescinded(offer_id)

    async def status_update(self, driver: SchedulerDriver, status: dict[str, Any]) -> None:
        await self.run(self.machine.update, status)

    async def error(self, driver: SchedulerDriver, message: str) -> None:
        log.error("jobs: the master says: %s", message)
