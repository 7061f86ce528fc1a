"""The HTTP front of a master under ZooKeeper: the full app once leading, redirects before.

    standing by   /version, /health: answered here; /metrics/snapshot: master/elected 0;
                  /redirect: 307 to //leader; anything else: 307 to //leader<path>?<query>,
                  or 503 "No leader elected" when there is none (spec 1.2, 3.5). The leader
                  is read from ZooKeeper afresh for each redirect: a client sent to a leader
                  that just died would wait for a change that never comes (pymesos does)
    recovering    503 "Master has not finished recovery" (spec 4.4)
    leading       every request goes to the master's app
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from meseta.protocol.common import version_json
from meseta.protocol.master_znodes import master_address

Scope = dict[str, Any]


class LeaderGate:
    def __init__(self, lookup: Callable[[], Awaitable[tuple[bool, dict[str, Any] | None]]]) -> None:
        self.app: Any = None  # the master's ASGI app, once leading
        self.lookup = lookup  # -> (is it us, the leader's MasterInfo or None), read afresh
        self.recovering = False

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self.app is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        local = path.removeprefix("/master")
        if local == "/version":
            await _respond(send, 200, json.dumps(version_json()).encode(), "application/json")
        elif local == "/health":
            await _respond(send, 200, b"")
        elif local == "/metrics/snapshot":
            body = {"master/elected": 0, "master/recovering": int(self.recovering)}
            await _respond(send, 200, json.dumps(body).encode(), "application/json")
        elif self.recovering:
            await _respond(send, 503, b"Master has not finished recovery")
        else:
            await self._redirect(scope, send, path, local)

    async def _redirect(self, scope: Scope, send: Any, path: str, local: str) -> None:
        try:
            ours, leader = await self.lookup()
        except Exception:  # ZooKeeper unreachable: we cannot say who leads
            ours, leader = False, None
        if ours:
            await _respond(send, 503, b"Master has not finished recovery")
        elif leader is None:
            await _respond(send, 503, b"No leader elected")
        else:
            target = f"//{master_address(leader)}"
            if local != "/redirect":
                query = scope.get("query_string", b"").decode("latin-1")
                target += path + (f"?{query}" if query else "")
            await _respond(send, 307, b"", headers=[(b"location", target.encode("latin-1"))])


async def _respond(send: Any, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
    head = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
            *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
