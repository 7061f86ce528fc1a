"""Outbound RecordIO event streams (scheduler, executor, agent and operator connections).

An :class:`EventStream` is a bounded queue of framed records drained by one HTTP response::

    producer (handler) --send()--> queue --body()--> chunked HTTP response
                       --close()-> the response ends after what is queued
                       (queue full) cut off: what is queued is dropped, ``cut`` set, the end now

A consumer that stops reading until ``max_queued`` records (or ``max_queued_bytes``) wait is cut
off (an overload signal,
never a silent block): ``runtime.http.RecordStream`` watches ``cut`` and abandons the response
even while a write to that consumer is stuck. When idle for ``heartbeat_interval`` the body
emits a HEARTBEAT record. Records queued together leave in one chunk (a burst costs one write
per consumer, not one per record).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from meseta.protocol.recordio import encode_event

MAX_QUEUED_RECORDS = 100_000
MAX_BATCH = 256  # records queued together are written as one chunk, up to this many


def _idle(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class EventStream:
    def __init__(
        self,
        stream_id: str,
        heartbeat_interval: float | None = None,
        heartbeat_event: dict[str, Any] | None = None,
        on_closed: Callable[[EventStream], None] | None = None,
        max_queued: int = MAX_QUEUED_RECORDS,
        max_queued_bytes: int | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.owner: str | None = None  # the framework, agent or executor this stream serves
        self.closed = False  # nothing more is queued; the body ends once the queue is empty
        self.cut = asyncio.Event()  # set when the consumer fell max_queued records behind
        self._records: deque[bytes] = deque()
        self._max_queued = max_queued
        self._max_bytes = max_queued_bytes
        self._bytes = 0  # queued, counted only with max_queued_bytes
        self._waiter: asyncio.Future[bool] | None = None  # the body, waiting: True for a record, False idle
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat = encode_event(heartbeat_event or {"type": "HEARTBEAT"})
        self._on_closed = on_closed

    def send(self, event: dict[str, Any]) -> None:
        self.send_record(encode_event(event))

    def send_record(self, record: bytes) -> None:
        if self.closed:
            return
        if len(self._records) >= self._max_queued:
            self.cut_off()
            return
        if self._max_bytes is not None:
            self._bytes += len(record)
            if self._bytes > self._max_bytes:
                self.cut_off()
                return
        self._records.append(record)
        self._wake()

    def close(self) -> None:
        """No more records: the response ends after what is queued."""
        self.closed = True
        self._wake()

    def cut_off(self) -> None:
        """End the stream now: what is queued is dropped (it may never be read) and ``cut`` set."""
        self.closed = True
        self._records.clear()
        self._bytes = 0
        self.cut.set()
        self._wake()

    @property
    def queued(self) -> int:
        return len(self._records)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def body(self) -> AsyncIterator[bytes]:
        """The response body. Reports the end (client gone or closed) through ``on_closed``."""
        records = self._records
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not records:
                    if self.closed:
                        return
                    self._waiter = waiter = loop.create_future()
                    idle = (loop.call_later(self._heartbeat_interval, _idle, waiter)  # cheaper than asyncio.timeout
                            if self._heartbeat_interval is not None else None)
                    try:
                        woken = await waiter
                    finally:
                        self._waiter = None
                        if idle is not None:
                            idle.cancel()
                    if not woken:
                        yield self._heartbeat
                    continue
                if len(records) == 1:
                    chunk = records.popleft()
                else:
                    chunk = b"".join([records.popleft() for _ in range(min(len(records), MAX_BATCH))])
                if self._max_bytes is not None:
                    self._bytes -= len(chunk)
                yield chunk
        finally:
            self.closed = True
            if self._on_closed is not None:
                self._on_closed(self)
