"""The master's asyncio shell around :class:`MasterMachine`.

Each entry point calls one machine handler synchronously (so it is atomic on the event loop)
and executes the effects it returns: records onto framework and agent streams, timers on the
loop, registry writes in a worker thread whose completion comes back as ``handle_persisted``;
then the operator events of what the handler changed, each encoded once for every subscriber.

Operator subscribers (``SUBSCRIBE`` on /api/v1, spec 3.3)::

    open_operator_stream -> SUBSCRIBED {get_state}, HEARTBEAT, then every event; HEARTBEAT when idle 15 s
      more than max_operator_subscribers open -> the oldest is cut off
      OPERATOR_QUEUE_RECORDS unread records  -> cut off (its queue dropped: a slow reader never
      or OPERATOR_QUEUE_BYTES unread bytes      holds the master's memory or slows it)

Error contract::

    CallRejected / SubscribeRefused   the handler refused before changing anything: passed on to
                                      the endpoint, which answers with its status
    any other exception               a bug that may have left a change half-made: the master is
                                      deposed at once (it stops acting and exits; a stand-by
                                      takes over) rather than running on; the caller gets Deposed
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from meseta.master import views
from meseta.master.effects import (
    Abort,
    CancelTimer,
    CloseAgentStream,
    CloseFrameworkStream,
    Effect,
    OperatorEvent,
    Persist,
    SaveSetting,
    StartTimer,
    ToAgent,
    ToFramework,
)
from meseta.master.machine import MasterMachine
from meseta.master.operator_views import get_state
from meseta.master.records import HEARTBEAT_INTERVAL_SECONDS
from meseta.master.registry.storage import Fenced, Storage
from meseta.master.validation.errors import CallRejected, SubscribeRefused
from meseta.protocol.recordio import encode_event
from meseta.runtime.streams import EventStream

log = logging.getLogger(__name__)

MAX_OPERATOR_SUBSCRIBERS = 1000  # --max_operator_event_stream_subscribers
OPERATOR_QUEUE_RECORDS = 10_000  # unread events before a subscriber is cut off
OPERATOR_QUEUE_BYTES = 16 * 1024 * 1024  # or unread bytes (records are shared: at most this in all)


class Deposed(Exception):
    """The master stopped acting (a bug, or another master leads): answer 503, nothing more."""


class Clock(Protocol):
    def time(self) -> float: ...


class WallClock:
    def time(self) -> float:
        return time.time()


class MasterActor:
    def __init__(self, machine: MasterMachine, storage: Storage, clock: Clock | None = None,
                 on_deposed: Callable[[str], None] | None = None,
                 max_operator_subscribers: int = MAX_OPERATOR_SUBSCRIBERS) -> None:
        self.machine = machine
        self.deposed = False  # once set, no effect is executed any more
        self.on_deposed = on_deposed
        self.storage = storage
        self.clock = clock or WallClock()
        self.framework_streams: dict[str, EventStream] = {}
        self.agent_streams: dict[str, EventStream] = {}
        self.operator_streams: OrderedDict[str, EventStream] = OrderedDict()  # oldest first
        self.max_operator_subscribers = max_operator_subscribers
        self._timers: dict[tuple[str, ...], asyncio.TimerHandle] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._settings_lock = asyncio.Lock()
        self.start_time = self.clock.time()

    def now(self) -> float:
        return self.clock.time()

    def metrics(self) -> dict[str, float]:
        """/metrics/snapshot and GET_METRICS: the machine's, and the shell's own."""
        out = views.metrics_json(self.machine, self.now() - self.start_time)
        out["master/operator_event_stream_subscribers"] = len(self.operator_streams)
        return out

    # ------------------------------------------------------------- entry points
    def run(self, handler: Callable[..., Any], *args: Any, attach: Callable[[Any], None] | None = None) -> Any:
        """Call ``handler(*args, now)`` and execute the effects it returns (a handler returning
        ``(value, effects)`` gives ``value`` back, to ``attach`` first: a new stream is attached
        before the effects that write on it). See the error contract above."""
        if self.deposed:
            raise Deposed("this master no longer acts")
        try:
            now = self.now()
            result = handler(*args, now)
            value, effects = result if isinstance(result, tuple) else (None, result)
            if attach is not None:
                attach(value)
            self.execute(effects)
            self.execute(self.machine.take_operator_events(now))
        except (CallRejected, SubscribeRefused):
            raise
        except Exception as exc:
            log.critical("master state may be half-changed by %s: %r", getattr(handler, "__name__", handler), exc,
                         exc_info=True)
            self.depose(f"unexpected {type(exc).__name__} in {getattr(handler, '__name__', handler)}")
            raise Deposed(str(exc)) from None
        return value

    async def change_setting(self, call: Any) -> None:
        """Operator settings: validate against the current state, write the registry, then apply;
        one at a time, so each change is prepared against the last one applied."""
        async with self._settings_lock:
            operation: SaveSetting = self.machine.prepare_setting(call)
            try:
                await asyncio.to_thread(self.storage.apply, operation)
            except Fenced as exc:
                self.depose(f"registry write fenced: {exc}")
                raise Deposed(str(exc)) from None
            self.run(self.machine.handle_persisted, operation)

    def depose(self, reason: str) -> None:
        """Another master leads (or may): stop acting now and tell the owner, once."""
        if self.deposed:
            return
        self.deposed = True
        log.critical("master deposed: %s", reason)
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self.on_deposed is not None:
            self.on_deposed(reason)

    def open_framework_stream(self, heartbeat: float) -> EventStream:
        return self._open(self.framework_streams, self.machine.handle_framework_disconnected, heartbeat)

    def open_agent_stream(self) -> EventStream:
        return self._open(self.agent_streams, self.machine.handle_agent_disconnected, None)

    def open_operator_stream(self) -> EventStream:
        """A new operator subscriber: SUBSCRIBED with the whole state and a HEARTBEAT are queued
        first, then it gets every event (the oldest subscriber is cut off beyond the limit)."""
        if self.deposed:
            raise Deposed("this master no longer acts")
        subscribed = encode_event({"type": "SUBSCRIBED", "subscribed": {
            "get_state": get_state(self.machine), "heartbeat_interval_seconds": HEARTBEAT_INTERVAL_SECONDS}})
        stream = EventStream(str(uuid.uuid4()), HEARTBEAT_INTERVAL_SECONDS, on_closed=self._operator_closed,
                             max_queued=OPERATOR_QUEUE_RECORDS,
                             max_queued_bytes=OPERATOR_QUEUE_BYTES + len(subscribed))  # the state, however big
        stream.send_record(subscribed)
        stream.send({"type": "HEARTBEAT"})
        self.operator_streams[stream.stream_id] = stream
        while len(self.operator_streams) > self.max_operator_subscribers:
            _, oldest = self.operator_streams.popitem(last=False)
            log.warning("operator subscriber %s cut off: more than %d subscribers", oldest.stream_id,
                        self.max_operator_subscribers)
            oldest.cut_off()
        self.machine.watch_operator_events(True)
        return stream

    def _operator_closed(self, stream: EventStream) -> None:
        if self.operator_streams.get(stream.stream_id) is stream:
            del self.operator_streams[stream.stream_id]
        if not self.operator_streams:
            self.machine.watch_operator_events(False)

    def _publish(self, event: dict[str, Any]) -> None:
        record = encode_event(event)  # once, whatever the number of subscribers
        for stream in list(self.operator_streams.values()):
            stream.send_record(record)
            if stream.cut.is_set():
                log.warning("operator subscriber %s cut off: too many events unread", stream.stream_id)
                self._operator_closed(stream)

    def attach_framework_stream(self, framework_id: str, stream: EventStream) -> None:
        self.framework_streams[framework_id] = stream
        stream.owner = framework_id

    def attach_agent_stream(self, agent_id: str, stream: EventStream) -> None:
        self.agent_streams[agent_id] = stream
        stream.owner = agent_id

    def _open(self, streams: dict[str, EventStream], on_disconnect: Callable[..., list[Effect]],
              heartbeat: float | None) -> EventStream:
        """A stream whose end (client gone or closed by us) is reported to the machine once attached."""

        def closed(stream: EventStream) -> None:
            if stream.owner is None:
                return  # refused before it was attached to a framework or agent
            if streams.get(stream.owner) is stream:
                del streams[stream.owner]
            with contextlib.suppress(Deposed):
                self.run(on_disconnect, stream.owner, stream.stream_id)

        return EventStream(str(uuid.uuid4()), heartbeat, on_closed=closed)

    # ------------------------------------------------------------- effects
    def execute(self, effects: list[Effect]) -> None:
        if self.deposed:
            return
        for effect in effects:
            if isinstance(effect, ToFramework):
                stream = self.framework_streams.get(effect.framework_id)
                if stream is not None:
                    stream.send(effect.event)
            elif isinstance(effect, ToAgent):
                agent_stream = self.agent_streams.get(effect.agent_id)
                if agent_stream is not None:
                    agent_stream.send(effect.message)
            elif isinstance(effect, CloseFrameworkStream):
                self._close_stream(self.framework_streams, effect.framework_id, effect.stream_id)
            elif isinstance(effect, CloseAgentStream):
                self._close_stream(self.agent_streams, effect.agent_id, effect.stream_id)
            elif isinstance(effect, StartTimer):
                self._start_timer(effect.key, effect.at)
            elif isinstance(effect, CancelTimer):
                handle = self._timers.pop(effect.key, None)
                if handle is not None:
                    handle.cancel()
            elif isinstance(effect, OperatorEvent):
                self._publish(effect.event)
            elif isinstance(effect, Persist):
                self._spawn(self._persist(effect))
            elif isinstance(effect, Abort):
                self.depose(effect.message)
                return

    def _close_stream(self, streams: dict[str, EventStream], owner: str, stream_id: str) -> None:
        stream = streams.get(owner)
        if stream is not None and stream.stream_id == stream_id:
            del streams[owner]
            stream.close()

    def _start_timer(self, key: tuple[str, ...], at: float) -> None:
        previous = self._timers.pop(key, None)
        if previous is not None:
            previous.cancel()
        delay = max(0.0, at - self.now())
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: tuple[str, ...]) -> None:
        self._timers.pop(key, None)
        with contextlib.suppress(Deposed):  # (already reported, and the master stops)
            self.run(self.machine.handle_timer, key)

    async def _persist(self, effect: Persist) -> None:
        try:
            await asyncio.to_thread(self.storage.apply, effect.operation)
        except Fenced as exc:
            self.depose(f"registry write fenced: {exc}")
            return
        except Exception as exc:  # the write did not happen: nothing changes (it is asked again later)
            log.error("registry write %s failed: %r", effect.operation, exc)
            return
        with contextlib.suppress(Deposed):
            self.run(self.machine.handle_persisted, effect.operation)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stop(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for stream in [*self.framework_streams.values(), *self.agent_streams.values(),
                       *self.operator_streams.values()]:
            stream.close()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
