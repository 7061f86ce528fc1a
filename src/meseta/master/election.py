"""A master under ZooKeeper (``--zk``): stand by, lead, and stop at once when unsure of leading.

    start -> contending: our json.info_ znode exists; HTTP 307s to the leader (http.gate)
      | our znode is the lowest
      v
    recovering: claim the registry's epoch (fencing every later write), load it; HTTP 503
      |
      v
    leading: the full master; agents and frameworks find it through the same znodes
      | ZooKeeper session lost, or suspended for half the session timeout,
      | or a registry write fenced (another master claimed), or another znode leads
      v
    exit(1): a supervisor starts us again, as a contender (Mesos aborts the same way)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooState

from meseta.daemons import MasterOptions, abort_process, build_master, master_info, server
from meseta.master.http.gate import LeaderGate
from meseta.master.registry.zk_storage import ZooKeeperStorage
from meseta.protocol.master_znodes import REGISTRY_CHILD
from meseta.runtime.leader import Contender, Detector
from meseta.runtime.zk import make_client, on_loop, parse_zk_url, start_client

log = logging.getLogger(__name__)


class HaMaster:
    def __init__(self, options: MasterOptions, on_exit: Callable[[str], None] = abort_process) -> None:
        assert options.zk is not None
        self.options = options
        self.url = parse_zk_url(options.zk)
        self.info = master_info(options.ip, options.port, options.hostname)
        self.gate = LeaderGate(self._lookup_leader)
        self.on_exit = on_exit
        self.client = make_client(self.url, options.zk_session_timeout)
        self.contender = Contender(self.client, self.url.path, self.info)
        self.detector = Detector(self.client, self.url.path)
        self.actor: Any = None
        self._elected = asyncio.Event()
        self._suspended: asyncio.TimerHandle | None = None

    async def serve(self) -> None:
        await start_client(self.client)
        self.client.add_listener(on_loop(asyncio.get_running_loop(), self._session_changed))
        srv = server(self.gate, self.options.ip, self.options.port)
        serving = asyncio.create_task(srv.serve())
        self.detector.on_change(self._leader_changed)
        await asyncio.to_thread(self.client.ensure_path, self.url.path)
        self.detector.start()
        await asyncio.to_thread(self.contender.join)
        log.info("master %s contending as %s", self.info["id"], self.contender.child)
        self._leader_changed(self.detector.leader_child, self.detector.leader)
        await asyncio.wait([serving, asyncio.create_task(self._elected.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if self._elected.is_set():
            await self._lead()
        await serving

    async def _lead(self) -> None:
        self.gate.recovering = True
        storage = ZooKeeperStorage(self.client, self.url.child(REGISTRY_CHILD))
        await asyncio.to_thread(storage.claim, self.info["id"])
        self.actor, app = await asyncio.to_thread(build_master, self.options, storage, self.info, self._deposed)
        self.gate.app, self.gate.recovering = app, False
        self.actor.run(self.actor.machine.handle_start)
        log.info("master %s leads", self.info["id"])

    async def _lookup_leader(self) -> tuple[bool, dict[str, Any] | None]:
        child, info = await asyncio.to_thread(self.detector.read_leader)
        return child is not None and child == self.contender.child, info

    def _leader_changed(self, child: str | None, info: dict[str, Any] | None) -> None:
        if self.contender.child is None:
            return
        if child == self.contender.child:
            self._elected.set()
        elif self._elected.is_set():
            self._deposed(f"another master leads ({child})")

    def _session_changed(self, state: str) -> None:
        if state == KazooState.LOST:
            self._deposed("ZooKeeper session expired")
        elif state == KazooState.SUSPENDED:
            if self._suspended is None:
                delay = self.options.zk_session_timeout / 2
                self._suspended = asyncio.get_running_loop().call_later(
                    delay, self._deposed, f"ZooKeeper unreachable for {delay:.1f} s")
        elif self._suspended is not None:
            self._suspended.cancel()
            self._suspended = None

    def _deposed(self, reason: str) -> None:
        if self.actor is not None:
            self.actor.deposed = True  # no effect runs after this
        self.on_exit(reason)
