"""The ZooKeeper adapter (kazoo): ``zk://`` URLs, clients, and kazoo's callbacks on the loop.

A URL names the ensemble and the chroot every Meseta component works under::

    zk://[user:pass@]host1:port1,host2:port2/meseta  ->  hosts "host1:port1,host2:port2", path "/meseta"

kazoo calls watches and listeners on its own threads; :func:`on_loop` re-posts them onto the
event loop with ``call_soon_threadsafe``, so actors only ever see them between two messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

DEFAULT_SESSION_TIMEOUT = 10.0  # --zk_session_timeout


@dataclass(frozen=True, slots=True)
class ZkUrl:
    hosts: str
    path: str
    auth: tuple[str, str] | None = None

    def child(self, name: str) -> str:
        return f"{self.path.rstrip('/')}/{name}"

    def __str__(self) -> str:
        return f"zk://{self.hosts}{self.path}"


def is_zk_url(text: str) -> bool:
    return text.startswith(("zk://", "zoo://"))


def parse_zk_url(text: str) -> ZkUrl:
    """``zk://[user:pass@]h1:p1,h2:p2/path``; raises ValueError saying what is wrong."""
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("zk", "zoo"):
        raise ValueError(f"'{text}' is not a zk:// URL")
    auth: tuple[str, str] | None = None
    if "@" in rest.split("/", 1)[0]:
        credentials, rest = rest.split("@", 1)
        user, colon, password = credentials.partition(":")
        if not user or not colon:
            raise ValueError(f"'{text}': credentials must be user:password")
        auth = (user, password)
    hosts, slash, path = rest.partition("/")
    if not hosts:
        raise ValueError(f"'{text}' names no ZooKeeper server")
    for host in hosts.split(","):
        name, colon, port = host.rpartition(":")
        if not colon or not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"'{text}': server '{host}' must be host:port")
    path = "/" + path.strip("/")
    if not slash or path == "/":
        raise ValueError(f"'{text}' needs a path, e.g. zk://{hosts}/meseta")
    return ZkUrl(hosts, path, auth)


def make_client(url: ZkUrl, session_timeout: float = DEFAULT_SESSION_TIMEOUT) -> KazooClient:
    """A client that keeps retrying the connection; it is not started."""
    auth = [("digest", f"{url.auth[0]}:{url.auth[1]}")] if url.auth else None
    return KazooClient(
        hosts=url.hosts,
        timeout=session_timeout,
        connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0),
        command_retry=KazooRetry(max_tries=3, delay=0.1, max_delay=1.0),
        auth_data=auth,
    )


async def start_client(client: KazooClient, timeout: float = 30.0) -> None:
    await asyncio.to_thread(client.start, timeout)


def on_loop(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any]) -> Callable[..., None]:
    """Wrap ``callback`` so that calling it from a kazoo thread runs it on ``loop``."""

    def post(*args: Any) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(callback, *args)

    return post
