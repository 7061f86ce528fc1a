"""Outbound RecordIO event streams (scheduler, executor and agent connections).

An :class:`EventStream` is a bounded queue of framed records drained by one HTTP response::

    producer (handler) --send()--> queue --body()--> chunked HTTP response
                       --close()-> sentinel: the response ends after what is queued

A consumer that stops reading until the queue is full is cut off (an overload signal, never a
silent block): what is queued is dropped at once and ``cut`` is set, so the response
(``runtime.http.RecordStream``) ends even while a write to that consumer is stuck. When idle
for ``heartbeat_interval`` the body emits a HEARTBEAT record.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from meseta.protocol.recordio import encode_event

MAX_QUEUED_RECORDS = 100_000
_CLOSE = b""


class EventStream:
    def __init__(
        self,
        stream_id: str,
        heartbeat_interval: float | None = None,
        heartbeat_event: dict[str, Any] | None = None,
        on_closed: Callable[[EventStream], None] | None = None,
        max_queued: int = MAX_QUEUED_RECORDS,
    ) -> None:
        self.stream_id = stream_id
        self.owner: str | None = None  # the framework, agent or executor this stream serves
        self.closed = False
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(max_queued)
        self.cut = asyncio.Event()  # set when the consumer fell max_queued records behind
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat = encode_event(heartbeat_event or {"type": "HEARTBEAT"})
        self._on_closed = on_closed

    def send(self, event: dict[str, Any]) -> None:
        self.send_record(encode_event(event))

    def send_record(self, record: bytes) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.cut_off()

    def cut_off(self) -> None:
        """End the stream now: what is queued is dropped (it may never be read) and ``cut`` set."""
        self.closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_CLOSE)
        self.cut.set()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._queue.put_nowait(_CLOSE)
        except asyncio.QueueFull:
            self._queue.get_nowait()
            self._queue.put_nowait(_CLOSE)

    async def body(self) -> AsyncIterator[bytes]:
        """The response body. Reports the end (client gone or closed) through ``on_closed``."""
        try:
            while True:
                try:
                    record = await asyncio.wait_for(self._queue.get(), self._heartbeat_interval)
                except TimeoutError:
                    yield self._heartbeat
                    continue
                if not record:  # the close sentinel; real records are never empty
                    return
                yield record
        finally:
            self.closed = True
            if self._on_closed is not None:
                self._on_closed(self)
