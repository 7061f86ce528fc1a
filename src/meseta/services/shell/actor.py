"""The services scheduler's asyncio shell: a Mesos framework (``meseta.client``) around the
pure :class:`~meseta.services.machine.ServicesMachine`.

    driver callbacks (subscribed, offers, updates)  --+
    HTTP API calls (services.http)                    +--> one lock: machine handler, then its
    a tick every second                             --+    effects in order: each Store written
                                                           before what follows it is done
Launch, Decline and Kill calls go out without holding the lock (the next batch of offers is
handled while the master answers the last ACCEPT), with two orderings kept: a Kill waits for the
Launch of its task, and Revive and Suppress wait for the Declines before them (a DECLINE for
120 s overtaking the REVIVE after it would leave the framework without offers); Revive,
Suppress and Reconcile are awaited in order.

Driver calls made while the scheduler is not subscribed are dropped (offers come again, kills
are repeated by the machine's next tick, reconciliation runs on every subscription).

Connection to the master (``connection()``: what /ping, /v2/info?embed=connection and /metrics say)::

    not subscribed yet --SUBSCRIBED--> connected --stream broken / master down / callback raised-->
    disconnected (warning logged, reason kept) --backoff, SUBSCRIBE with the framework id--> connected
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from meseta.client.scheduler import CallError, NotConnected, Scheduler, SchedulerDriver
from meseta.runtime.fencing import Fenced
from meseta.runtime.kv_store import KvStore
from meseta.services import codec
from meseta.services.deploy.readiness import Answer, Probe
from meseta.services.effects import (
    KINDS,
    Change,
    Decline,
    Effect,
    Emit,
    Kill,
    Launch,
    Reconcile,
    Revive,
    Store,
    Suppress,
)
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
        self._ticker: asyncio.Task[None] | None = None
        self.stopped = False  # once set (deposed, or stopping), no effect is executed any more
        self.on_fenced: Callable[[str], None] | None = None
        self._soon: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self._launching: dict[str, asyncio.Task[Any]] = {}  # task id -> its Launch call in flight
        self._declining: set[asyncio.Task[Any]] = set()
        self._unsynced: list[Change] = []  # Store(sync=False) changes not written yet, in order
        self._writing = asyncio.Lock()  # one store write at a time, in order
        self._flush: asyncio.Task[None] | None = None
        self.prober = ReadinessProber(self._readiness_answer)
        self.disconnections = 0  # subscriptions lost since the start
        self.disconnected_at: float | None = None  # the last loss (None: never subscribed yet)

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        stored = {kind: self._repaired(kind, await asyncio.to_thread(self.store.load, kind)) for kind in KINDS}
        self.machine.restore(stored, self.clock())
        info = framework_info(self.name, self.role, self.machine.framework_id, self.hostname)
        self.driver = SchedulerDriver(self, info, self.master)
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
        self.stopped = True
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        with contextlib.suppress(Fenced, Exception):  # what status updates left unwritten (not if fenced)
            await self._write(())
        await self.prober.close()
        if self._pending:  # calls already on their way may finish
            await asyncio.wait(set(self._pending), timeout=2.0)
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
        """In order. A Store is written before anything after it happens; Launch, Decline and
        Kill (one offer or one task each, independent) are sent in the background."""
        for effect in effects:
            if self.stopped:
                return
            if isinstance(effect, Store):
                if not effect.sync:
                    self._write_soon(effect.changes)
                    continue
                try:
                    await self._write(effect.changes)
                except Fenced as exc:
                    self._fenced(exc)
                    return
            elif isinstance(effect, Emit):
                self.bus.publish(effect.event)
            elif isinstance(effect, Launch):
                task = self._in_background(self._call(effect))
                ids = [t["task_id"]["value"] for t in effect.tasks]
                self._launching.update(dict.fromkeys(ids, task))
                task.add_done_callback(functools.partial(self._launched, ids))
            elif isinstance(effect, Decline):
                task = self._in_background(self._call(effect))
                self._declining.add(task)
                task.add_done_callback(self._declining.discard)
            elif isinstance(effect, Kill):
                self._in_background(self._kill(effect, self._launching.get(effect.task_id)))
            else:
                if self._declining and isinstance(effect, (Revive, Suppress)):
                    await asyncio.wait(set(self._declining))
                await self._call(effect)

    # ------------------------------------------------------------ the store: written in order
    async def _write(self, changes: tuple[Change, ...]) -> None:
        """Write what waits unwritten, then ``changes`` (one call, one transaction for SQLite)."""
        async with self._writing:
            batch, self._unsynced = [*self._unsynced, *changes], []
            if batch:
                try:
                    await asyncio.to_thread(self.store.write, batch)
                except Exception:
                    self._unsynced[:0] = batch[:len(batch) - len(changes)]  # the others' turn comes again
                    raise

    def _write_soon(self, changes: tuple[Change, ...]) -> None:
        """Group commit: changes that need not be durable before what follows are written by one
        flush, with every other such change that arrives while the last write runs."""
        self._unsynced.extend(changes)
        if self._flush is None and not self.stopped:
            self._flush = asyncio.get_running_loop().create_task(self._flush_unsynced())

    async def _flush_unsynced(self) -> None:
        self._flush = None  # what arrives from now on is taken by this write or the next flush
        if self.stopped:
            return  # stop() writes what is left (unless fenced)
        try:
            await self._write(())
        except Fenced as exc:
            self._fenced(exc)
        except Exception:
            log.exception("services: store write failed; retrying in a second")
            await asyncio.sleep(1.0)
            self._write_soon(())

    def _fenced(self, exc: Fenced) -> None:
        self.stopped = True
        if self.on_fenced is not None:
            self.on_fenced(str(exc))

    def _in_background(self, call: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(call)
        self._pending.add(task)
        task.add_done_callback(self._ended)
        return task

    def _launched(self, task_ids: list[str], _task: asyncio.Task[Any]) -> None:
        for task_id in task_ids:
            self._launching.pop(task_id, None)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("services: background work failed", exc_info=task.exception())

    async def _kill(self, kill: Kill, launch: asyncio.Task[Any] | None) -> None:
        if launch is not None:  # a KILL overtaking its task's ACCEPT would find nothing to kill
            await asyncio.wait({launch})
        await self._call(kill)

    async def _call(self, effect: Effect) -> None:
        if self.stopped:
            return
        driver = self.driver
        if driver is None or not driver.connected:
            log.debug("services: not subscribed, %s dropped", type(effect).__name__)
            return
        try:
            if isinstance(effect, Launch):
                log.info("services: launching %s", ", ".join(t["task_id"]["value"] for t in effect.tasks))
                await driver.launch([effect.offer_id], list(effect.tasks), {"refuse_seconds": effect.refuse_seconds})
            elif isinstance(effect, Decline):
                await driver.decline(list(effect.offer_ids), {"refuse_seconds": effect.refuse_seconds})
            elif isinstance(effect, Kill):
                policy = {"grace_period": {"nanoseconds": int(effect.grace_seconds * 1e9)}} \
                    if effect.grace_seconds else None
                await driver.kill(effect.task_id, effect.agent_id or None, policy)
            elif isinstance(effect, Reconcile):
                await driver.reconcile([{"task_id": {"value": t}, "agent_id": {"value": a}} for t, a in effect.tasks])
            elif isinstance(effect, Revive):
                await driver.revive()
            elif isinstance(effect, Suppress):
                await driver.suppress()
        except (CallError, NotConnected, OSError) as exc:
            log.info("services: %s not sent: %s", type(effect).__name__, exc)
        except Exception as exc:  # httpx errors: the master is away; the next tick repeats
            log.info("services: %s failed: %r", type(effect).__name__, exc)

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
        if self._soon is None and not self.stopped:
            self._soon = asyncio.get_running_loop().call_later(SOON_SECONDS, self._tick_now)

    def _tick_now(self) -> None:
        self._soon = None
        self._in_background(self._tick(full=False))

    async def _tick(self, *, full: bool) -> None:
        await self.run(self.machine.tick, full=full)
        if not self.stopped:
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
