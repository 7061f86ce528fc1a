"""Following the leading master through ZooKeeper: a detector for everyone, a contender for masters.

    Detector(client, path)    ChildrenWatch on <path>; on each change reads the lowest
                              json.info_ child (protocol.master_znodes) and publishes its
                              MasterInfo, or None when there is no leader
    Contender(client, path)   creates its EPHEMERAL|SEQUENTIAL json.info_ znode; it leads
                              while that znode is the lowest (``detector.leader_child``)

Changes arrive on kazoo's threads and are re-posted onto the loop (runtime.zk.on_loop);
``wait_change`` lets a task sleep until the leader differs from the one it knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from meseta.protocol.master_znodes import (
    CONTENDER_LABEL,
    encode_master_info,
    leader_child,
    master_address,
    parse_master_info,
)
from meseta.runtime.zk import is_zk_url, make_client, on_loop, parse_zk_url, start_client

log = logging.getLogger(__name__)
T = TypeVar("T")


class Detector:
    def __init__(self, client: KazooClient, path: str) -> None:
        self.client, self.path = client, path
        self.leader: dict[str, Any] | None = None
        self.leader_child: str | None = None
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[str | None, dict[str, Any] | None], None]] = []

    def start(self) -> None:
        """Begin watching (call on the loop, with the client started and the path existing)."""
        post = on_loop(asyncio.get_running_loop(), self._publish)

        def children_changed(children: list[str]) -> None:
            child = leader_child(children)
            info = None
            if child is not None:
                try:
                    data, _ = self.client.get(f"{self.path}/{child}")
                    info = parse_master_info(child, data)
                except NoNodeError:
                    return  # it vanished meanwhile; the next children event says who leads
            post(child, info)

        self.client.ChildrenWatch(self.path, children_changed)

    def read_leader(self) -> tuple[str | None, dict[str, Any] | None]:
        """Who leads right now, read from ZooKeeper (blocking): the watch's view can lag."""
        for _ in range(3):
            child = leader_child(self.client.get_children(self.path))
            if child is None:
                return None, None
            try:
                data, _ = self.client.get(f"{self.path}/{child}")
            except NoNodeError:
                continue  # it went away between the two reads
            return child, parse_master_info(child, data)
        return None, None

    def on_change(self, listener: Callable[[str | None, dict[str, Any] | None], None]) -> None:
        self._listeners.append(listener)

    def _publish(self, child: str | None, info: dict[str, Any] | None) -> None:
        if child == self.leader_child and info == self.leader:
            return
        log.info("leading master: %s", master_address(info) if info else "none")
        self.leader_child, self.leader = child, info
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in self._listeners:
            listener(child, info)

    def address(self) -> str | None:
        return master_address(self.leader) if self.leader else None

    async def wait_change(self, known: str | None) -> str | None:
        """Return the leader's address once it is not ``known``."""
        while self.address() == known:
            await self._changed.wait()
        return self.address()

    async def wait_leader(self) -> str:
        while (address := self.address()) is None:
            await self._changed.wait()
        return address


class Contender:
    def __init__(self, client: KazooClient, path: str, master_info: dict[str, Any]) -> None:
        self.client, self.path, self.master_info = client, path, master_info
        self.child: str | None = None

    def join(self) -> str:
        """Create our znode (blocking; call in a thread); returns its name."""
        created = self.client.create(f"{self.path}/{CONTENDER_LABEL}", encode_master_info(self.master_info),
                                     ephemeral=True, sequence=True, makepath=True)
        self.child = created.rsplit("/", 1)[1]
        return self.child


class FixedMaster:
    """The ``--master HOST:PORT`` case: one address that never changes."""

    def __init__(self, address: str) -> None:
        self._address = address

    def address(self) -> str | None:
        return self._address

    async def wait_leader(self) -> str:
        return self._address

    async def wait_change(self, known: str | None) -> str | None:
        if known != self._address:
            return self._address
        await asyncio.Event().wait()  # never changes
        return self._address


MasterLocator = Detector | FixedMaster


async def locate_masters(master: str, session_timeout: float = 10.0) -> MasterLocator:
    """``HOST:PORT`` or ``zk://.../path``; the detector is started and watching when returned."""
    if not is_zk_url(master):
        return FixedMaster(master.removeprefix("http://"))
    url = parse_zk_url(master)
    client = make_client(url, session_timeout)
    await start_client(client)
    detector = Detector(client, url.path)
    await asyncio.to_thread(client.ensure_path, url.path)
    detector.start()
    return detector


async def while_leading(masters: MasterLocator, address: str, work: Coroutine[Any, Any, T]) -> tuple[bool, T | None]:
    """Run ``work`` until it ends -> (True, result), or until the leader is no longer ``address``
    -> (False, None), ``work`` cancelled. Exceptions of ``work`` propagate."""
    job = asyncio.ensure_future(work)
    changed = asyncio.ensure_future(masters.wait_change(address))
    try:
        await asyncio.wait([job, changed], return_when=asyncio.FIRST_COMPLETED)
    finally:
        switched = changed.done() and not job.done()
        changed.cancel()
        job.cancel()
    if switched:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await job
        return False, None
    return True, await job
