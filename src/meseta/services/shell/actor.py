"""The services scheduler's asyncio shell: a Mesos framework (``meseta.client``) around the
pure :class:`~meseta.services.machine.ServicesMachine`.

    driver callbacks (subscribed, offers, updates)  --+
    HTTP API calls (services.http)                    +--> one lock: machine handler, then its
    a tick every second                             --+    effects in order (client.effect_runner:
                                                           each Store written before what follows)
Launch, Decline and Kill calls go out without holding the lock: the next batch of offers is
handled while the master answers the last ACCEPT.

Connection to the master (``connection()``: what /ping, /v2/info?embed=connection and /metrics say)::

    not subscribed yet --SUBSCRIBED--> connected --stream broken / master down / callback raised-->
    disconnected (warning logged, reason kept) --backoff, SUBSCRIBE with the framework id--> connected
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from meseta.client.effect_runner import EffectRunner
from meseta.client.scheduler import Scheduler, SchedulerDriver
from meseta.runtime.kv_store import KvStore
from meseta.services import codec
from meseta.services.deploy.readiness import Answer, Probe
from meseta.services.effects import KINDS, Effect
from meseta.services.machine import ServicesMachine
from meseta.services.shell.event_bus import EventBus
from meseta.services.shell.readiness_prober import ReadinessProber

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0
SOON_SECONDS = 0.1
ONE_WEEK = 7 * 24 * 3600.0


def framework_info(name: str, role: str, framework_id: str | None, hostname: str) -> dict[str, Any]:
    info: dict[str, Any] = {"user": "root", "name": name, "role": role, "checkpoint": True,
                            "failover_timeout": ONE_WEEK, "hostname": hostname,
                            "capabilities": [{"type": "PARTITION_AWARE"}, {"type": "TASK_KILLING_STATE"}]}
    if framework_id:
        info["id"] = {"value": framework_id}
    return info


class ServicesActor(Scheduler):
    def __init__(self, machine: ServicesMachine, store: KvStore, master: str, *, name: str = "marathon",
                 role: str = "*", hostname: str = "127.0.0.1", clock: Callable[[], float] = time.time) -> None:
        self.machine = machine
        self.store = store
        self.bus = EventBus()
        self.clock = clock
        self.lock = asyncio.Lock()
        self.master = master
        self.name, self.role, self.hostname = name, role, hostname
        self.driver: SchedulerDriver | None = None
        self.runner = EffectRunner(store, "services", self.bus.publish)
        self._ticker: asyncio.Task[None] | None = None
        self._soon: asyncio.TimerHandle | None = None
        self.prober = ReadinessProber(self._readiness_answer)
        self.disconnections = 0  # subscriptions lost since the start
        self.disconnected_at: float | None = None  # the last loss (None: never subscribed yet)

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        stored = {kind: self._repaired(kind, await asyncio.to_thread(self.store.load, kind)) for kind in KINDS}
        self.machine.restore(stored, self.clock())
        info = framework_info(self.name, self.role, self.machine.framework_id, self.hostname)
        self.driver = self.runner.driver = SchedulerDriver(self, info, self.master)
        if self.machine.framework_id:
            self.driver.protocol.framework_id = self.machine.framework_id
        await self.driver.start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    @staticmethod
    def _repaired(kind: str, values: dict[str, Any]) -> dict[str, Any]:
        """Stored values an older version let in (lone surrogates) repaired, each one logged."""
        for key, value in values.items():
            fixed, places = codec.repaired(value)
            if places:
                log.warning("services: stored %s %r held text that is not valid Unicode at %s; replaced by U+FFFD",
                            kind, key.encode("utf-8", "backslashreplace").decode(), ", ".join(places[:5]))
                values[key] = fixed
        return values

    async def stop(self) -> None:
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.runner.close()  # what status updates left unwritten (not if fenced)
        await self.prober.close()
        if self.driver is not None:
            await self.driver.stop(failover=True)  # keep the framework (and its tasks) for the next leader

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self._tick(full=True)  # every app is looked at once a second
            except Exception:  # the loop must survive one bad tick
                log.exception("services tick failed")

    # ------------------------------------------------------------ one step at a time
    async def run(self, handler: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a machine handler (last positional argument ``now``) and execute its effects.
        Handlers return effects, or (result, effects)."""
        async with self.lock:
            out = handler(*args, self.clock(), **kwargs)
            result, effects = out if isinstance(out, tuple) else (None, out)
            await self.execute(effects)
            return result

    async def execute(self, effects: list[Effect]) -> None:
        await self.runner.execute(effects)

    # ------------------------------------------------------------ driver callbacks
    async def registered(self, driver: SchedulerDriver, framework_id: str, master_info: dict[str, Any]) -> None:
        log.info("services: subscribed as framework %s", framework_id)
        await self.run(self.machine.registered, framework_id)

    async def reregistered(self, driver: SchedulerDriver, master_info: dict[str, Any]) -> None:
        log.info("services: subscribed again as framework %s", driver.framework_id)
        await self.run(self.machine.registered, driver.framework_id)

    async def disconnected(self, driver: SchedulerDriver) -> None:
        self.disconnections += 1
        self.disconnected_at = self.clock()
        log.warning("services: disconnected from the master (%s); subscribing again", driver.last_error)

    def connection(self) -> tuple[bool, str | None, float | None]:
        """(connected to the master, why not, since when not): /ping, /v2/info and /metrics say it."""
        driver = self.driver
        if driver is None:
            return False, "not started", None
        if driver.connected:
            return True, None, None
        return False, driver.last_error or "not subscribed", self.disconnected_at

    async def resource_offers(self, driver: SchedulerDriver, offers: list[dict[str, Any]]) -> None:
        await self.run(self.machine.offers, offers)

    async def status_update(self, driver: SchedulerDriver, status: dict[str, Any]) -> None:
        await self.run(self.machine.status, status)
        self.tick_soon()

    def tick_soon(self) -> None:
        """One tick shortly after a burst of updates, rather than one per update (a tick walks
        every instance of the apps in deployments)."""
        if self._soon is None and not self.runner.stopped:
            self._soon = asyncio.get_running_loop().call_later(SOON_SECONDS, self._tick_now)

    def _tick_now(self) -> None:
        self._soon = None
        self.runner.in_background(self._tick(full=False))

    async def _tick(self, *, full: bool) -> None:
        await self.run(self.machine.tick, full=full)
        if not self.runner.stopped:
            self.prober.sync(self.machine.readiness_probes())

    async def _readiness_answer(self, probe: Probe, answer: Answer) -> bool:
        await self.run(self.machine.readiness_answer, probe, answer)
        instance = self.machine.instances.get(probe.task_id)
        ready = instance is not None and instance.ready is True
        if ready:
            self.tick_soon()
        return ready

    async def error(self, driver: SchedulerDriver, message: str) -> None:
        log.error("services: the master says: %s", message)


def new_uuid() -> str:
    return uuid.uuid4().hex
