"""Leadership among processes under one ZooKeeper path (masters, services schedulers).

    join()    watch the path (runtime.leader.Detector) and create our contender znode
    elected   set once our znode is the lowest; from then on, any of
                - the ZooKeeper session LOST,
                - SUSPENDED (disconnected) for a whole session timeout (by then the
                  ensemble has expired the session; a shorter wait would make every
                  process connected to a ZooKeeper node that dies give up at once),
                - another znode leading,
              calls ``on_lost(reason)`` once: the owner stops acting at once (and exits)
    lookup()  who leads right now, read from ZooKeeper (for redirects and proxies)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient, KazooState

from meseta.runtime.leader import Contender, Detector
from meseta.runtime.zk import on_loop


class Leadership:
    def __init__(self, client: KazooClient, path: str, info: dict[str, Any], session_timeout: float,
                 on_lost: Callable[[str], None]) -> None:
        self.client, self.path, self.session_timeout = client, path, session_timeout
        self.contender = Contender(client, path, info)
        self.detector = Detector(client, path)
        self.on_lost = on_lost
        self.elected = asyncio.Event()
        self._suspended: asyncio.TimerHandle | None = None
        self._lost = False

    async def join(self) -> None:
        self.client.add_listener(on_loop(asyncio.get_running_loop(), self._session_changed))
        self.detector.on_change(self._leader_changed)
        await asyncio.to_thread(self.client.ensure_path, self.path)
        self.detector.start()
        await asyncio.to_thread(self.contender.join)
        self._leader_changed(self.detector.leader_child, self.detector.leader)

    async def lookup(self) -> tuple[bool, dict[str, Any] | None]:
        child, info = await asyncio.to_thread(self.detector.read_leader)
        return child is not None and child == self.contender.child, info

    def _leader_changed(self, child: str | None, info: dict[str, Any] | None) -> None:
        if self.contender.child is None:
            return
        if child == self.contender.child:
            self.elected.set()
        elif self.elected.is_set():
            self._lose(f"another contender leads ({child})")

    def _session_changed(self, state: str) -> None:
        if state == KazooState.LOST:
            self._lose("ZooKeeper session expired")
        elif state == KazooState.SUSPENDED:
            if self._suspended is None:
                delay = self.session_timeout
                self._suspended = asyncio.get_running_loop().call_later(
                    delay, self._lose, f"ZooKeeper unreachable for {delay:.1f} s")
        elif self._suspended is not None:
            self._suspended.cancel()
            self._suspended = None

    def _lose(self, reason: str) -> None:
        if not self._lost:
            self._lost = True
            self.on_lost(reason)
