"""RecordIO framing of the Mesos v1 streaming APIs.

A stream is a sequence of records, back to back, with nothing in between::

    <decimal byte length>\\n<exactly that many bytes of JSON>
    <decimal byte length>\\n<...>

The length counts encoded bytes, never characters, and is never zero. HTTP chunk boundaries
are irrelevant: :class:`RecordIODecoder` accepts arbitrary slices of the byte stream.
"""

from __future__ import annotations

from typing import Any

import msgspec

# A record larger than this is a protocol error, not a big event: 64 MiB covers any state dump.
MAX_RECORD_BYTES = 64 * 1024 * 1024

_json_encoder = msgspec.json.Encoder()


class RecordIOError(ValueError):
    """The byte stream is not valid RecordIO."""


def encode_record(payload: bytes) -> bytes:
    """Frame one already-serialized record."""
    return b"%d\n%s" % (len(payload), payload)


def encode_event(event: Any) -> bytes:
    """Serialize ``event`` as JSON and frame it as one record."""
    return encode_record(_json_encoder.encode(event))


class RecordIODecoder:
    """Incremental decoder: feed bytes, get back the complete records they finish."""

    __slots__ = ("_buffer", "_expected")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._expected: int | None = None

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer.extend(data)
        records: list[bytes] = []
        while True:
            if self._expected is None:
                newline = self._buffer.find(b"\n")
                if newline < 0:
                    if len(self._buffer) > 20:
                        raise RecordIOError("record length header is longer than 20 bytes")
                    return records
                header = bytes(self._buffer[:newline])
                if not header.isdigit():
                    raise RecordIOError(f"record length {header[:20]!r} is not a decimal number")
                length = int(header)
                if length == 0 or length > MAX_RECORD_BYTES:
                    raise RecordIOError(f"record length {length} is out of range")
                del self._buffer[: newline + 1]
                self._expected = length
            if len(self._buffer) < self._expected:
                return records
            records.append(bytes(self._buffer[: self._expected]))
            del self._buffer[: self._expected]
            self._expected = None

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)
