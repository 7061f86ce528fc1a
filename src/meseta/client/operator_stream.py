"""A reader of the master's operator event stream (``SUBSCRIBE`` on ``/api/v1``, spec 3.3).

    async for event in operator_events("127.0.0.1:5050"):
        ...   # {"type": "SUBSCRIBED", "subscribed": {"get_state": {...}, ...}}, then HEARTBEAT,
              # TASK_ADDED, TASK_UPDATED, AGENT_ADDED, AGENT_REMOVED, FRAMEWORK_ADDED/UPDATED/REMOVED

One subscription, to ``HOST:PORT`` (a 307 from a master that does not lead is followed, up to
``max_redirects``) or to the master leading in ``zk://host:port,.../path`` (read once, when
subscribing: when another master leads, the old one's stream ends);
the iterator ends by raising :class:`OperatorStreamClosed` when the master ends the stream (it
cut us off as too slow, or stopped), when no record came for ``missed_heartbeats`` heartbeat
intervals, or when the subscription is refused (the status and the master's message are in the
error). Subscribing again is the caller's choice: the new SUBSCRIBED carries the whole state.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from meseta.protocol.recordio import RecordIODecoder, RecordIOError
from meseta.runtime.leader import Detector, locate_masters
from meseta.runtime.zk import is_zk_url

MISSED_HEARTBEATS = 3
FIRST_HEARTBEAT_WAIT = 15.0  # seconds allowed before SUBSCRIBED says what the interval is
MAX_REDIRECTS = 5
LEADER_WAIT = 30.0  # seconds to wait for ZooKeeper to name a leading master


class OperatorStreamClosed(Exception):
    """The subscription ended or was refused; ``status`` is the HTTP status of a refusal."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


async def _base(master: str) -> str:
    if not is_zk_url(master):
        return master.rstrip("/") if master.startswith(("http://", "https://")) else f"http://{master}"
    masters = await locate_masters(master)
    try:
        return f"http://{await asyncio.wait_for(masters.wait_leader(), LEADER_WAIT)}"
    except TimeoutError:
        raise OperatorStreamClosed(f"no master leads in {master} after {LEADER_WAIT:g} s") from None
    finally:
        if isinstance(masters, Detector):
            await asyncio.to_thread(_close, masters)


def _close(detector: Detector) -> None:
    detector.client.stop()
    detector.client.close()


async def operator_events(master: str, *, client: httpx.AsyncClient | None = None,
                          missed_heartbeats: int = MISSED_HEARTBEATS,
                          max_redirects: int = MAX_REDIRECTS) -> AsyncIterator[dict[str, Any]]:
    """The events of one operator subscription to ``master`` (``HOST:PORT``, ``http://HOST:PORT`` or
    ``zk://host:port,.../path``)."""
    base = await _base(master)
    owned = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
    headers = {"Content-Type": "application/json", "Accept": "application/recordio",
               "Message-Accept": "application/json"}
    try:
        for _ in range(max_redirects + 1):
            async with http.stream("POST", base + "/api/v1", json={"type": "SUBSCRIBE"},
                                   headers=headers) as response:
                if response.status_code in (301, 302, 303, 307, 308):
                    location = response.headers.get("location", "")
                    netloc = urlsplit(location).netloc
                    if not netloc:
                        raise OperatorStreamClosed(f"{base} redirected to {location!r}, which names no master",
                                                   response.status_code)
                    base = f"http://{netloc}"
                    continue
                if response.status_code != 200:
                    text = (await response.aread()).decode(errors="replace").strip()
                    raise OperatorStreamClosed(f"SUBSCRIBE to {base} answered {response.status_code}: {text}",
                                               response.status_code)
                async for event in _read(response, base, missed_heartbeats):
                    yield event
            return  # pragma: no cover (_read always raises at the end)
        raise OperatorStreamClosed(f"more than {max_redirects} redirects, the last to {base}")
    finally:
        if owned:
            await http.aclose()


async def _read(response: httpx.Response, base: str, missed: int) -> AsyncIterator[dict[str, Any]]:
    decoder = RecordIODecoder()
    chunks = response.aiter_raw()
    wait = FIRST_HEARTBEAT_WAIT * missed
    while True:
        try:
            chunk = await asyncio.wait_for(anext(chunks), wait)
        except StopAsyncIteration:
            raise OperatorStreamClosed(f"the master at {base} ended the operator event stream") from None
        except TimeoutError:
            raise OperatorStreamClosed(f"nothing from {base} for {wait:g} s ({missed} heartbeats)") from None
        except httpx.HTTPError as exc:
            raise OperatorStreamClosed(f"the operator event stream from {base} broke: {exc}") from None
        try:
            records = decoder.feed(chunk)
        except RecordIOError as exc:
            raise OperatorStreamClosed(f"{base} sent a malformed record: {exc}") from None
        for record in records:
            try:
                event = json.loads(record)
            except ValueError as exc:
                raise OperatorStreamClosed(f"{base} sent a record that is not JSON: {exc}") from None
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise OperatorStreamClosed(f"{base} sent a record that is not an event: {record[:200]!r}")
            if event["type"] == "SUBSCRIBED":
                interval = event.get("subscribed", {}).get("heartbeat_interval_seconds")
                if isinstance(interval, int | float) and interval > 0:
                    wait = float(interval) * missed
            yield event
