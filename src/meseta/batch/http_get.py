"""A lean keep-alive HTTP/1.1 GET client for reading sandboxes (httpx's pool costs about a
millisecond of CPU per request, which a thousand outputs feel; see ``runtime.fast_http``).

One ``Getter`` per agent: a fixed number of persistent connections; a request waits for a free
one (the wait is the back-pressure), sends, and reads one response framed by Content-Length or
chunked encoding. A request on a reused connection the server has closed is retried once on a
fresh one. Bodies are bounded (``max_body``, MAX_BODY_BYTES by default).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

MAX_BODY_BYTES = 256 * 1024 * 1024  # a larger stdout is not printed (the error says why)
MAX_HEAD_BYTES = 64 * 1024

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class GetError(RuntimeError):
    pass


class Getter:
    def __init__(self, host: str, port: int, connections: int = 4, timeout: float = 30.0,
                 max_body: int = MAX_BODY_BYTES) -> None:
        self.host, self.port, self.timeout, self.max_body = host, port, timeout, max_body
        self._free: asyncio.Queue[Connection | None] = asyncio.Queue()
        for _ in range(connections):
            self._free.put_nowait(None)

    async def get(self, path: str, params: dict[str, object]) -> tuple[int, bytes]:
        target = f"{path}?{urlencode(params)}" if params else path
        request = f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAccept: */*\r\n\r\n".encode()
        conn = await self._free.get()
        try:
            for attempt in (1, 2):
                reused = conn is not None
                try:
                    if conn is None:
                        conn = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
                    conn[1].write(request)
                    answer = await asyncio.wait_for(_read_response(conn[0], self.max_body), self.timeout)
                    return answer
                except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                        TimeoutError) as exc:
                    if conn is not None:
                        conn[1].close()
                    conn = None
                    if not (reused and attempt == 1 and not isinstance(exc, TimeoutError)):
                        raise GetError(f"GET {path}: {exc!r}") from None
            raise AssertionError("unreachable")
        except BaseException:
            if conn is not None:
                conn[1].close()
                conn = None
            raise
        finally:
            self._free.put_nowait(conn)

    async def close(self) -> None:
        while not self._free.empty():
            conn = self._free.get_nowait()
            if conn is not None:
                conn[1].close()


async def _read_response(reader: asyncio.StreamReader, max_body: int) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD_BYTES:
        raise ValueError("response head too large")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, chunked = None, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        return status, await _read_chunks(reader, max_body)
    if length is None or length > max_body:
        raise ValueError(f"response without a usable Content-Length ({length})")
    return status, await reader.readexactly(length) if length else b""


async def _read_chunks(reader: asyncio.StreamReader, max_body: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        total += size
        if total > max_body:
            raise ValueError(f"response body over {max_body} bytes")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
