"""A lean keep-alive HTTP/1.1 POST client for hot call paths (httpx costs ~1 ms of CPU per call).

The agent's calls to the master (status updates, pongs) and the load generators of simulations
use it. A fixed pool of persistent connections; a request waits for a free one (no pool
timeout: the wait is the back-pressure), sends, and reads one Content-Length response. A request
on a reused connection that the server has closed is retried once on a fresh connection.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class FastHttpError(RuntimeError):
    pass


class FastPoster:
    def __init__(self, host: str, port: int, connections: int = 8, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = asyncio.Queue()
        for _ in range(connections):
            self._free.put_nowait(None)

    async def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n{extra}\r\n").encode()
        conn = await self._free.get()
        for attempt in (1, 2):
            reused = conn is not None
            try:
                if conn is None:
                    conn = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
                conn[1].write(head + payload)
                status, data = await asyncio.wait_for(_read_response(conn[0]), self.timeout)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                if conn is not None:
                    conn[1].close()
                conn = None
                if reused and attempt == 1:
                    continue  # the server closed an idle keep-alive connection: retry once
                self._free.put_nowait(None)
                raise FastHttpError(f"POST {path}: {exc!r}") from None
            except BaseException:
                if conn is not None:
                    conn[1].close()
                self._free.put_nowait(None)
                raise
            self._free.put_nowait(conn)
            return status, data
        raise AssertionError("unreachable")

    async def close(self) -> None:
        while not self._free.empty():
            conn = self._free.get_nowait()
            if conn is not None:
                conn[1].close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
        elif name.lower() == "transfer-encoding":
            raise FastHttpError("chunked responses are not supported by FastPoster")
    data = await reader.readexactly(length) if length else b""
    return status, data
