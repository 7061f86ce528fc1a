"""A master under ZooKeeper (``--zk``): stand by, lead, and stop at once when unsure of leading.

    start -> contending: our json.info_ znode exists; HTTP 307s to the leader (http.gate)
      | our znode is the lowest
      v
    recovering: claim the registry's epoch (fencing every later write), load it; HTTP 503
      |
      v
    leading: the full master; agents and frameworks find it through the same znodes
      | ZooKeeper session lost, or suspended for a whole session timeout,
      | or a registry write fenced (another master claimed), or another znode leads
      v
    exit(1): a supervisor starts us again, as a contender (Mesos aborts the same way)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from meseta.master.daemon import MasterOptions, build_master, master_info
from meseta.master.http.gate import LeaderGate
from meseta.master.registry.zk_storage import ZooKeeperStorage
from meseta.protocol.master_znodes import REGISTRY_CHILD
from meseta.runtime.leadership import Leadership
from meseta.runtime.serve import abort_process, server
from meseta.runtime.zk import make_client, parse_zk_url, start_client

log = logging.getLogger(__name__)


class HaMaster:
    def __init__(self, options: MasterOptions, on_exit: Callable[[str], None] = abort_process) -> None:
        assert options.zk is not None
        self.options = options
        self.url = parse_zk_url(options.zk)
        self.info = master_info(options.ip, options.port, options.hostname)
        self.on_exit = on_exit
        self.client = make_client(self.url, options.zk_session_timeout)
        self.leadership = Leadership(self.client, self.url.path, self.info, options.zk_session_timeout,
                                     self._deposed)
        self.gate = LeaderGate(self.leadership.lookup)
        self.actor: Any = None

    async def serve(self) -> None:
        await start_client(self.client)
        serving = asyncio.create_task(server(self.gate, self.options.ip, self.options.port).serve())
        await self.leadership.join()
        log.info("master %s contending as %s", self.info["id"], self.leadership.contender.child)
        await asyncio.wait([serving, asyncio.create_task(self.leadership.elected.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if self.leadership.elected.is_set():
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

    def _deposed(self, reason: str) -> None:
        if self.actor is not None:
            self.actor.deposed = True  # no effect runs after this
        self.on_exit(reason)
