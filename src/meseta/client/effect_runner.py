"""Carrying out a framework machine's effects (framework.effects) in order, on one loop.

    Store      written (in a thread) before anything after it; sync=False ones are group-committed
               by a flush a moment later, before the next synchronous write; a write the store
               fences (another leader claimed it) stops the runner: on_fenced(reason)
    Launch, Decline, Kill   sent in the background (one offer or one task each, independent), with
               two orderings kept: a Kill waits for the Launch of its task, and Revive and Suppress
               wait for the Declines before them (a DECLINE for 120 s overtaking the REVIVE after
               it would leave the framework without offers)
    Revive, Suppress, Reconcile   awaited in order
    Emit       handed to ``on_emit``

Calls made while the driver is not subscribed are dropped (offers come again; a machine repeats
what it still wants on its next tick; reconciliation runs on every subscription).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from meseta.client.scheduler import CallError, NotConnected, SchedulerDriver
from meseta.framework.effects import (
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
from meseta.runtime.fencing import Fenced

log = logging.getLogger(__name__)


class ChangeWriter(Protocol):
    def write(self, changes: Iterable[Change]) -> None: ...


class EffectRunner:
    def __init__(self, store: ChangeWriter, name: str, on_emit: Callable[[dict[str, Any]], None]) -> None:
        self.store = store
        self.name = name  # in log lines
        self.on_emit = on_emit
        self.driver: SchedulerDriver | None = None
        self.stopped = False  # once set (deposed, or stopping), no effect is carried out any more
        self.on_fenced: Callable[[str], None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self._launching: dict[str, asyncio.Task[Any]] = {}  # task id -> its Launch call in flight
        self._declining: set[asyncio.Task[Any]] = set()
        self._unsynced: list[Change] = []  # Store(sync=False) changes not written yet, in order
        self._writing = asyncio.Lock()  # one store write at a time, in order
        self._flush: asyncio.Task[None] | None = None

    async def execute(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if self.stopped:
                return
            if isinstance(effect, Store):
                if not effect.sync:
                    self._write_soon(effect.changes)
                    continue
                try:
                    await self.write(effect.changes)
                except Fenced as exc:
                    self._fenced(exc)
                    return
            elif isinstance(effect, Emit):
                self.on_emit(effect.event)
            elif isinstance(effect, Launch):
                task = self.in_background(self._call(effect))
                ids = [t["task_id"]["value"] for t in effect.tasks]
                self._launching.update(dict.fromkeys(ids, task))
                task.add_done_callback(functools.partial(self._launched, ids))
            elif isinstance(effect, Decline):
                task = self.in_background(self._call(effect))
                self._declining.add(task)
                task.add_done_callback(self._declining.discard)
            elif isinstance(effect, Kill):
                self.in_background(self._kill(effect, self._launching.get(effect.task_id)))
            else:
                if self._declining and isinstance(effect, (Revive, Suppress)):
                    await asyncio.wait(set(self._declining))
                await self._call(effect)

    async def close(self) -> None:
        """Stop carrying out effects; write what waits unwritten (unless fenced); let calls on
        their way finish."""
        self.stopped = True
        with contextlib.suppress(Fenced, Exception):
            await self.write(())
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=2.0)

    # ------------------------------------------------------------ the store: written in order
    async def write(self, changes: tuple[Change, ...]) -> None:
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
            return  # close() writes what is left (unless fenced)
        try:
            await self.write(())
        except Fenced as exc:
            self._fenced(exc)
        except Exception:
            log.exception("%s: store write failed; retrying in a second", self.name)
            await asyncio.sleep(1.0)
            self._write_soon(())

    def _fenced(self, exc: Fenced) -> None:
        self.stopped = True
        if self.on_fenced is not None:
            self.on_fenced(str(exc))

    # ------------------------------------------------------------ calls to the master
    def in_background(self, call: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
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
            log.error("%s: background work failed", self.name, exc_info=task.exception())

    async def _kill(self, kill: Kill, launch: asyncio.Task[Any] | None) -> None:
        if launch is not None:  # a KILL overtaking its task's ACCEPT would find nothing to kill
            await asyncio.wait({launch})
        await self._call(kill)

    async def _call(self, effect: Effect) -> None:
        if self.stopped:
            return
        driver = self.driver
        if driver is None or not driver.connected:
            log.debug("%s: not subscribed, %s dropped", self.name, type(effect).__name__)
            return
        try:
            if isinstance(effect, Launch):
                log.info("%s: launching %s", self.name, ", ".join(t["task_id"]["value"] for t in effect.tasks))
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
            log.info("%s: %s not sent: %s", self.name, type(effect).__name__, exc)
        except Exception as exc:  # httpx errors: the master is away; the next tick repeats
            log.info("%s: %s failed: %r", self.name, type(effect).__name__, exc)
