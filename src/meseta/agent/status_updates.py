"""Reliable status updates: every update reaches the scheduler at least once, in order per task.

Pure bookkeeping; the agent actor does the sending. One stream per (framework, task), which
remembers where its task's records are checkpointed (``where``: opaque here, the run's key)::

    add(update) --> [u1 in flight] [u2 queued] [u3 queued]
                     | due() -> resend u1 at 10 s, 20 s, 40 s ... capped at 10 min
                     | acknowledge(uuid of u1) -> u2 goes in flight (sent at once)
    a duplicate (an update still pending, by its uuid) is not taken: the caller checkpoints only
    what is taken; a terminal update acknowledged ends the stream (it is forgotten, as in Mesos).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from meseta.protocol.task_states import TERMINAL

INITIAL_RETRY_SECONDS = 10.0
MAX_RETRY_SECONDS = 600.0


@dataclass(slots=True)
class _Stream:
    pending: deque[dict[str, Any]] = field(default_factory=deque)
    next_retry: float = 0.0
    backoff: float = INITIAL_RETRY_SECONDS
    latest_state: str | None = None
    where: Any = None  # where the task's update records go (its latest run)


class StatusUpdateManager:
    def __init__(self, initial_retry: float = INITIAL_RETRY_SECONDS, max_retry: float = MAX_RETRY_SECONDS) -> None:
        self.initial_retry = initial_retry
        self.max_retry = max_retry
        self._streams: dict[tuple[str, str], _Stream] = {}

    def add(self, framework_id: str, update: dict[str, Any], now: float,
            where: Any = None) -> tuple[bool, dict[str, Any] | None]:
        """Queue ``update`` (a ``{"framework_id", "status"}`` record) of the task checkpointed at
        ``where``: (it was taken, the update to send now if any)."""
        key = (framework_id, update["status"]["task_id"]["value"])
        stream = self._streams.setdefault(key, _Stream())
        if where is not None:  # (a report on a task the agent does not have leaves its records where they were)
            stream.where = where
        if any(p["status"].get("uuid") == update["status"].get("uuid") for p in stream.pending):
            return False, None  # a duplicate re-sent by an executor after it re-subscribed
        stream.latest_state = update["status"]["state"]
        stream.pending.append(update)
        if len(stream.pending) == 1:
            return True, self._send_head(stream, now)
        return True, None

    def acknowledge(self, framework_id: str, task_id: str, uuid: str, now: float) -> tuple[bool, dict[str, Any] | None]:
        """Apply an ACK: (it matched, the next update to send now if any)."""
        stream = self._streams.get((framework_id, task_id))
        if stream is None or not stream.pending or stream.pending[0]["status"].get("uuid") != uuid:
            return False, None
        acked = stream.pending.popleft()
        if acked["status"]["state"] in TERMINAL:
            del self._streams[(framework_id, task_id)]
            return True, None
        if stream.pending:
            return True, self._send_head(stream, now)
        return True, None

    def due(self, now: float) -> list[dict[str, Any]]:
        """Updates whose retry time has come (each rescheduled with doubled backoff)."""
        out = []
        for stream in self._streams.values():
            if stream.pending and stream.next_retry <= now:
                stream.backoff = min(stream.backoff * 2, self.max_retry)
                stream.next_retry = now + stream.backoff
                out.append(self._with_latest(stream))
        return out

    def in_flight(self) -> list[dict[str, Any]]:
        """Every stream's head, to resend after re-registering with a master."""
        return [self._with_latest(s) for s in self._streams.values() if s.pending]

    def drop_framework(self, framework_id: str) -> None:
        for key in [k for k in self._streams if k[0] == framework_id]:
            del self._streams[key]

    def where(self, framework_id: str, task_id: str) -> Any:
        """Where the task's records go, as its latest update said (None: no stream, or nowhere)."""
        stream = self._streams.get((framework_id, task_id))
        return stream.where if stream is not None else None

    def has_pending(self, framework_id: str, task_id: str) -> bool:
        stream = self._streams.get((framework_id, task_id))
        return bool(stream and stream.pending)

    def _send_head(self, stream: _Stream, now: float) -> dict[str, Any]:
        stream.backoff = self.initial_retry
        stream.next_retry = now + self.initial_retry
        return self._with_latest(stream)

    @staticmethod
    def _with_latest(stream: _Stream) -> dict[str, Any]:
        return {**stream.pending[0], "latest_state": stream.latest_state}
