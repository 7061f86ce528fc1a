"""Several instances of a built-in framework (``meseta services|jobs --zk zk://.../path``): one
leads, the others proxy its API.

    <path>/leader/json.info_<seq>   contenders (runtime.leadership); the lowest leads
    <path>/state/...                the leader's store (runtime.kv_store, fenced by its epoch)

    start -> contending: API calls are proxied to the leader (event streams: 307 to it), /ping answered
      | elected
      v
    leading: claim the store, build the framework on it (it restores its state, subscribes with the
             stored framework id: the master keeps its tasks for failover_timeout, reconciles, resumes)
      | session lost / another leads / a store write fenced
      v
    exit(1): stop acting at once; a supervisor restarts us as a contender
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import httpx
from starlette.requests import Request

from meseta.protocol.master_znodes import master_address
from meseta.runtime.http import HttpError, read_body
from meseta.runtime.kv_store import ZooKeeperKvStore
from meseta.runtime.leadership import Leadership
from meseta.runtime.serve import abort_process, server
from meseta.runtime.zk import make_client, parse_zk_url, start_client

log = logging.getLogger(__name__)
HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


class Fenceable(Protocol):
    """What carries out a framework's effects (client.effect_runner): stopped at once when its
    store is fenced (it calls on_fenced) or its leader deposed (we set stopped)."""

    stopped: bool
    on_fenced: Callable[[str], None] | None


class LeadingFramework(Protocol):
    """What an elected instance built."""

    @property
    def runner(self) -> Fenceable: ...
    async def start(self) -> None: ...


class FrameworkGate:
    """The API of an instance: its own once leading, the leader's (proxied) before."""

    def __init__(self, leadership: Leadership, redirected: Iterable[str] = ()) -> None:
        self.leadership = leadership
        self.redirected = frozenset(redirected)  # paths answered 307 to the leader (streams)
        self.app: Any = None
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(30.0))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.app is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        if path == "/ping":
            await _respond(send, 200, b"pong", [(b"content-type", b"text/plain")])
            return
        ours, leader = await self.leadership.lookup()
        if ours or leader is None:
            await _respond(send, 503, b'{"message": "Could not determine the current leader"}',
                           [(b"content-type", b"application/json")])
            return
        target = f"http://{master_address(leader)}{path}"
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            target += f"?{query}"
        if path in self.redirected:  # an event stream is redirected, not proxied (as Marathon does)
            await _respond(send, 307, b"", [(b"location", target.encode("latin-1"))])
            return
        await self._proxy(scope, receive, send, target)

    async def _proxy(self, scope: dict[str, Any], receive: Any, send: Any, target: str) -> None:
        try:  # bounded like the leader's own API (shell/rest_edge): never buffered whole
            body = await read_body(Request(scope, receive))
        except HttpError as exc:
            await _respond(send, exc.status, json.dumps({"message": exc.message}).encode(),
                           [(b"content-type", b"application/json")])
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])
                   if k.decode("latin-1").lower() not in HOP_HEADERS]
        try:
            answer = await self._client.request(scope["method"], target, headers=headers, content=body)
        except httpx.HTTPError as exc:
            await _respond(send, 503, f'{{"message": "leader unreachable: {exc!r}"}}'.encode(),
                           [(b"content-type", b"application/json")])
            return
        out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()
               if k.lower() not in HOP_HEADERS and k.lower() != "content-encoding"]
        await _respond(send, answer.status_code, answer.content, out)


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


Build = Callable[[ZooKeeperKvStore], Awaitable[tuple[LeadingFramework, Any]]]


class HaFramework:
    """One contender: serves the gate at once, builds the framework (``build``, given the claimed
    store) when elected, and exits the process when it loses the lead."""

    def __init__(self, name: str, zk: str, ip: str, port: int, kinds: Iterable[str], build: Build, *,
                 session_timeout: float = 10.0, redirected: Iterable[str] = ()) -> None:
        self.name, self.ip, self.port = name, ip, port
        self.kinds = tuple(kinds)
        self.build = build
        self.url = parse_zk_url(zk)
        self.id = str(uuid.uuid4())
        self.info: dict[str, Any] = {"id": self.id, "hostname": ip, "port": port,
                                     "address": {"hostname": ip, "ip": ip, "port": port}}
        self.client = make_client(self.url, session_timeout)
        self.leadership = Leadership(self.client, self.url.child("leader"), self.info, session_timeout, self._lost)
        self.gate = FrameworkGate(self.leadership, redirected)
        self.actor: LeadingFramework | None = None

    async def serve(self) -> None:
        await start_client(self.client)
        serving = asyncio.create_task(server(self.gate, self.ip, self.port).serve())
        await self.leadership.join()
        await asyncio.wait([serving, asyncio.create_task(self.leadership.elected.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if self.leadership.elected.is_set():
            store = ZooKeeperKvStore(self.client, self.url.child("state"), self.kinds)
            await asyncio.to_thread(store.claim, self.id)
            self.actor, app = await self.build(store)
            self.actor.runner.on_fenced = self._lost
            await self.actor.start()
            self.gate.app = app
            log.info("%s %s leads", self.name, self.id)
        await serving

    def _lost(self, reason: str) -> None:
        if self.actor is not None:
            self.actor.runner.stopped = True  # act no more, at once
        abort_process(f"{self.name} leadership lost: {reason}", self.name)
