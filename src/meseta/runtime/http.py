"""HTTP plumbing shared by the master's and the agent's APIs (Mesos' rules, spec section 0)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

# Request bodies above this are refused with 413: no scheduler call is legitimately this big.
MAX_BODY_BYTES = 16 * 1024 * 1024


_encode = msgspec.json.Encoder().encode


class FastJSONResponse(JSONResponse):
    """A JSONResponse encoded by msgspec (several times faster than ``json.dumps`` on the
    multi-megabyte listings of large clusters); the same compact UTF-8 JSON."""

    def render(self, content: Any) -> bytes:
        return _encode(content)


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        return PlainTextResponse(self.message, status_code=self.status)


def check_json_request(request: Request) -> None:
    """Method, Content-Type and Accept as Mesos checks them (POST, application/json)."""
    if request.method != "POST":
        raise HttpError(405, f"Expecting 'POST', received '{request.method}'")
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise HttpError(400, "Expecting 'Content-Type' to be present")
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json":
        raise HttpError(415, f"Expecting 'Content-Type' of application/json, got '{content_type}'")


def check_accepts_json(request: Request) -> None:
    accept = request.headers.get("accept")
    if not accept:
        return
    media = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if media & {"application/json", "*/*", "application/*"}:
        return
    raise HttpError(406, f"Expecting 'Accept' to allow application/json, got '{accept}'")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"Request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def accepted() -> Response:
    return Response(status_code=202)


class RecordStream:
    """A streamed 200 response from an async iterator of records (an ``EventStream.body()``),
    in plain asyncio: one task pumps records, one watches for the client going away; whichever
    ends first cancels the other, which runs the body's clean-up (its ``finally``) at once.
    Starlette's StreamingResponse does the same through anyio task groups at ~3x the cost per
    stream, which shows when thousands of agents re-register after a failover. When ``cut`` is
    set (``EventStream.cut``: the consumer fell too far behind) the response is abandoned
    unfinished, even mid-write, and the connection aborted: what the server still buffers for
    that consumer is dropped, not flushed to a reader that may never read."""

    def __init__(self, body: AsyncIterator[bytes], headers: dict[str, str] | None = None,
                 media_type: str = "application/json", cut: asyncio.Event | None = None) -> None:
        self.body = body
        self.cut = cut
        self.headers = [(b"content-type", media_type.encode()),
                        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items())]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        pump = asyncio.ensure_future(self._pump(send))
        gone = asyncio.ensure_future(_disconnected(receive))
        waits: list[asyncio.Future[Any]] = [pump, gone]
        if self.cut is not None:
            waits.append(asyncio.ensure_future(self.cut.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if self.cut is not None and self.cut.is_set():
                _abort(scope)
        finally:
            for task in waits[1:]:
                task.cancel()
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await pump
            closing = getattr(self.body, "aclose", None)
            if closing is not None:  # the body's clean-up (its finally) now, not when collected
                with contextlib.suppress(RuntimeError):
                    await closing()

    async def _pump(self, send: Any) -> None:
        async for record in self.body:
            await send({"type": "http.response.body", "body": record, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


TRANSPORT = "meseta.transport"  # the scope key KeepTransport fills


class KeepTransport:
    """ASGI middleware, outermost (right under uvicorn): the connection's transport goes into the
    scope, so that a stream to a consumer that stopped reading can be aborted (``RecordStream``).
    uvicorn's ``send`` is a method of its request cycle, which holds the transport; anything else
    passes through unchanged."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            scope[TRANSPORT] = transport
        await self.app(scope, receive, send)


def _abort(scope: dict[str, Any]) -> None:
    """Drop the connection now with a reset, and what the server and the kernel still buffer for
    it. Without a transport the response just ends unfinished (the server closes the connection
    once it has written what it buffers, which a reader that never reads never lets it do)."""
    transport: Any = scope.get(TRANSPORT)
    abort = getattr(transport, "abort", None)
    if not callable(abort):
        return
    sock = transport.get_extra_info("socket") if hasattr(transport, "get_extra_info") else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    abort()


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
