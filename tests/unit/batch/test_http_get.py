"""The lean GET client against a real asyncio server on loopback: Content-Length and chunked
bodies, keep-alive reuse, a connection the server closed, and a body over the bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from meseta.batch.http_get import GetError, Getter

ANSWERS = {
    b"/plain": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=1\r\ndefg\r\n0\r\n\r\n",
    b"/missing": b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
    b"/big": b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n",
}


@asynccontextmanager
async def server(close_after: int | None = None) -> AsyncIterator[tuple[int, list[int]]]:
    """A server answering ANSWERS; ``close_after`` requests on a connection, it closes it."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ")[1].split(b"?")[0]
                writer.write(ANSWERS[path])
                await writer.drain()
                served += 1
                if close_after is not None and served >= close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    listening = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield listening.sockets[0].getsockname()[1], connections
    finally:
        listening.close()
        await listening.wait_closed()


async def test_bodies_by_length_and_by_chunks_over_one_kept_connection() -> None:
    async with server() as (port, connections):
        getter = Getter("127.0.0.1", port, connections=1)
        assert await getter.get("/plain", {"path": "/a b"}) == (200, b"hello")
        assert await getter.get("/chunked", {}) == (200, b"abcdefg")
        assert await getter.get("/missing", {}) == (404, b"not found")
        assert len(connections) == 1
        await getter.close()


async def test_a_connection_the_server_closed_is_retried_once_on_a_new_one() -> None:
    async with server(close_after=1) as (port, connections):
        getter = Getter("127.0.0.1", port, connections=1)
        assert await getter.get("/plain", {}) == (200, b"hello")
        await asyncio.sleep(0.05)  # the server has closed it meanwhile
        assert await getter.get("/plain", {}) == (200, b"hello")
        assert len(connections) == 2
        await getter.close()


async def test_a_body_over_the_bound_is_refused() -> None:
    async with server() as (port, _):
        getter = Getter("127.0.0.1", port, connections=1, max_body=4)
        with pytest.raises(GetError, match="Content-Length"):
            await getter.get("/big", {})
        with pytest.raises(GetError, match="over 4 bytes"):
            await getter.get("/chunked", {})
        await getter.close()
