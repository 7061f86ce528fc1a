"""EventStream: bounded by records and bytes, cut off at once, batched writes, heartbeats."""

from __future__ import annotations

import asyncio

import pytest

from meseta.protocol.recordio import RecordIODecoder, encode_event
from meseta.runtime.streams import MAX_BATCH, EventStream


async def drain(stream: EventStream) -> list[bytes]:
    return [chunk async for chunk in stream.body()]


def records(chunks: list[bytes]) -> list[bytes]:
    decoder = RecordIODecoder()
    return [r for chunk in chunks for r in decoder.feed(chunk)]


def test_queued_records_leave_together_and_close_ends_after_them() -> None:
    async def run() -> list[bytes]:
        closed: list[EventStream] = []
        stream = EventStream("s", on_closed=closed.append)
        for n in range(MAX_BATCH + 3):
            stream.send({"type": "E", "n": n})
        stream.close()
        stream.send({"type": "LATE"})  # nothing after close
        chunks = await drain(stream)
        assert closed == [stream] and stream.queued == 0
        return chunks

    chunks = asyncio.run(run())
    assert len(chunks) == 2  # one write per batch, not one per record
    assert records(chunks) == records([encode_event({"type": "E", "n": n}) for n in range(MAX_BATCH + 3)])


def test_a_full_queue_cuts_the_stream_off_and_drops_what_waits() -> None:
    async def run() -> None:
        stream = EventStream("s", max_queued=3)
        for n in range(3):
            stream.send({"n": n})
        assert stream.queued == 3 and not stream.cut.is_set()
        stream.send({"n": 3})
        assert stream.cut.is_set() and stream.closed and stream.queued == 0
        stream.send({"n": 4})
        assert stream.queued == 0
        assert await drain(stream) == []

    asyncio.run(run())


@pytest.mark.parametrize("size", [100, 1000])
def test_unread_bytes_bound_the_stream(size: int) -> None:
    async def run() -> None:
        stream = EventStream("s", max_queued_bytes=5 * size)
        record = b"x" * size
        for _ in range(5):
            stream.send_record(record)
        assert not stream.cut.is_set()
        body = stream.body()
        assert await anext(body) == record * 5  # read: the room comes back
        for _ in range(5):
            stream.send_record(record)
        assert not stream.cut.is_set()
        stream.send_record(record)
        assert stream.cut.is_set() and stream.queued == 0
        with pytest.raises(StopAsyncIteration):
            await anext(body)

    asyncio.run(run())


def test_an_idle_stream_heartbeats_and_a_record_wakes_it() -> None:
    async def run() -> None:
        stream = EventStream("s", heartbeat_interval=0.05)
        body = stream.body()
        assert records([await anext(body)]) == records([encode_event({"type": "HEARTBEAT"})])
        waiting = asyncio.ensure_future(anext(body))
        await asyncio.sleep(0.01)
        stream.send({"type": "E"})
        assert records([await waiting]) == records([encode_event({"type": "E"})])
        stream.cut_off()
        with pytest.raises(StopAsyncIteration):
            await anext(body)

    asyncio.run(run())
