"""A scheduler that speaks the v1 scheduler API by hand over httpx, to send what no library would
(malformed JSON, wrong types, foreign stream ids, calls out of order) and see every event it gets.

    raw = RawFramework(master, {"user": "", "name": "fuzz", "roles": ["*"]})   # SUBSCRIBED, or AssertionError
    offers = raw.next_event("OFFERS")["offers"]["offers"]
    raw.call("DECLINE", decline={"offer_ids": [offers[0]["id"]]})   # framework_id and Mesos-Stream-Id added
    raw.post(b"{not json")                                        # any bytes, with the stream id
    status = raw.update_for("t1")                                 # the next UPDATE about task t1
    raw.close()

Lifecycle::

    __init__: a reader thread POSTs SUBSCRIBE and keeps the RecordIO stream open --> SUBSCRIBED kept
              (framework_id, stream_id); a refusal (a status other than 200, or an ERROR event)
              raises AssertionError naming it
    events:   every event is appended to ``events`` as it arrives; ``next_event`` hands out each one
              once, in order, to the first wait that asks for its type (and matches ``where``)
    end:      the master closes the stream (TEARDOWN, removal) or ``close()`` does: ``ended`` is set,
              a wait for an event that has not come fails at once, and ``stream_error`` keeps
              whatever broke the stream other than ``close()``
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Collection
from types import TracebackType
from typing import Any

import httpx

from meseta.protocol.recordio import RecordIODecoder

JSON = {"Content-Type": "application/json"}
SUBSCRIBE_TIMEOUT = 10.0  # a master on a loaded CI machine answers a SUBSCRIBE well within this
EventFilter = Callable[[dict[str, Any]], bool]


class RawFramework:
    def __init__(self, master: str, framework_info: dict[str, Any] | None = None,
                 timeout: float = SUBSCRIBE_TIMEOUT) -> None:
        self.url = f"http://{master}/api/v1/scheduler"
        self.framework_info = framework_info if framework_info is not None else {"user": "", "name": "raw"}
        self.client = httpx.Client(timeout=10)  # the calls; the stream has its own connection
        self.events: list[dict[str, Any]] = []
        self.stream_id = ""
        self.framework_id = ""
        self.refusal = ""  # the status and body of a SUBSCRIBE answered other than 200
        self.stream_error: Exception | None = None
        self.ended = threading.Event()
        self._changed = threading.Condition()
        self._taken: set[int] = set()
        self._socket: socket.socket | None = None
        self._closing = False
        threading.Thread(target=self._read, name="raw-framework", daemon=True).start()
        try:
            first = self.next_event(("SUBSCRIBED", "ERROR"), timeout)
            assert first["type"] == "SUBSCRIBED", f"SUBSCRIBE refused: {first}"
        except BaseException:
            self.close()
            raise
        self.framework_id = first["subscribed"]["framework_id"]["value"]

    # ------------------------------------------------------------- calls
    def post(self, body: bytes | dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        """POST ``body`` (bytes as they are, a dict as JSON) with this stream's Mesos-Stream-Id;
        ``headers`` add to or replace the JSON content type and the stream id."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(self.url, content=content,
                                headers={**JSON, "Mesos-Stream-Id": self.stream_id, **(headers or {})})

    def call(self, kind: str, **payload: Any) -> httpx.Response:
        """A call of type ``kind`` from this framework: ``call("REVIVE")``, ``call("KILL", kill={...})``."""
        return self.post({"type": kind, "framework_id": {"value": self.framework_id}, **payload})

    # ------------------------------------------------------------- events
    def next_event(self, kind: str | Collection[str], timeout: float = 10.0,
                   where: EventFilter | None = None) -> dict[str, Any]:
        """The first event of type ``kind`` (or of any of several types) that matches ``where`` and
        was not handed out yet, once it comes; AssertionError after ``timeout`` or the stream's end."""
        kinds = {kind} if isinstance(kind, str) else set(kind)
        found: list[int] = []

        def first_untaken() -> bool:
            found[:] = [i for i, event in enumerate(self.events) if i not in self._taken and event["type"] in kinds
                        and (where is None or where(event))][:1]
            return bool(found) or self.ended.is_set()

        with self._changed:
            self._changed.wait_for(first_untaken, timeout)
            if not found:
                raise AssertionError(self._missing(kinds, timeout))
            self._taken.add(found[0])
            return self.events[found[0]]

    def events_now(self, kind: str | Collection[str]) -> list[dict[str, Any]]:
        """Every event of type ``kind`` that has come and was not handed out yet, handed out now,
        in order (no waiting)."""
        kinds = {kind} if isinstance(kind, str) else set(kind)
        with self._changed:
            found = [i for i, event in enumerate(self.events) if i not in self._taken and event["type"] in kinds]
            self._taken.update(found)
            return [self.events[i] for i in found]

    def update_for(self, task_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The status of the next UPDATE about ``task_id``."""
        event = self.next_event("UPDATE", timeout, lambda e: e["update"]["status"]["task_id"]["value"] == task_id)
        return dict(event["update"]["status"])

    def _missing(self, kinds: set[str], timeout: float) -> str:
        wanted, got = " or ".join(sorted(kinds)), [e["type"] for e in self.events]
        if not self.ended.is_set():
            return f"no {wanted} event in {timeout:g} s; got {got}"
        why = self.refusal or (repr(self.stream_error) if self.stream_error else "closed")
        return f"no {wanted} event: the stream ended ({why}); got {got}"

    # ------------------------------------------------------------- the stream
    def _read(self) -> None:
        body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": self.framework_info}}
        try:
            with httpx.Client(timeout=httpx.Timeout(10, read=None)) as client, \
                    client.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    self.refusal = f"{response.status_code} {response.read().decode(errors='replace')}"
                    return
                self.stream_id = response.headers["Mesos-Stream-Id"]
                stream = response.extensions.get("network_stream")
                self._socket = stream.get_extra_info("socket") if stream is not None else None
                decoder = RecordIODecoder()
                for chunk in response.iter_raw():
                    for record in decoder.feed(chunk):
                        with self._changed:
                            self.events.append(json.loads(record))
                            self._changed.notify_all()
        except Exception as exc:  # kept for the test to see: a reader thread must not die with a traceback
            if not self._closing:
                self.stream_error = exc
        finally:
            with self._changed:
                self.ended.set()
                self._changed.notify_all()

    def close(self) -> None:
        """End the event stream (the master sees the framework disconnect) and the calls' client."""
        self._closing = True
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv
        self.ended.wait(5)
        self.client.close()

    def __enter__(self) -> RawFramework:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
