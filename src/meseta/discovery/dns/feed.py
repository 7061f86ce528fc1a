"""The feed: the leading master's operator event stream (mesos-api 3.3) into the record book.

    locate leader --GET_MASTER--> MasterInfo -> book.set_masters (leader.D., masterN.D.)
         |                                  --SUBSCRIBE--> SUBSCRIBED -> fresh book, adopt (ready)
         |                                                 event...   -> book.apply
         +<-- stream ends / breaks / leader changes: stale = True, retry with backoff --+

``--master h1:p1,h2:p2``: each is asked in turn; a standby's 307 is followed to the leader.
``--master zk://.../path``: the ZooKeeper detector names the leader; a change cuts the stream;
every contender's znode (read at each subscription) gives ``masterN.D.`` in sequence order.
While disconnected the last records stay served and ``status.stale`` is set (/metrics/snapshot).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from kazoo.exceptions import KazooException, NoNodeError

from meseta.client.operator_stream import OperatorStreamClosed, operator_events
from meseta.discovery.dns import wire
from meseta.discovery.dns.book import RecordBook
from meseta.discovery.dns.options import DnsOptions
from meseta.protocol.master_znodes import master_address, parse_master_info, sequence_of
from meseta.runtime.leader import Detector, MasterLocator, locate_masters, while_leading

log = logging.getLogger(__name__)
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 2.0  # seconds: retry fast (a failover is short), never hammer
CONNECT_TIMEOUT = 2.0
SUBSCRIBE_CHUNK = 250  # tasks built between two yields to the servers (~25 ms of work)


class FeedBroken(Exception):
    """The master could not be reached, or its stream broke."""


@dataclass
class FeedStatus:
    connected: bool = False
    stale: bool = True
    ready: bool = False
    leader: str = ""
    subscriptions: int = 0
    events: int = 0
    event_errors: int = 0
    last_change: float = 0.0  # wall time of the last record change (for D1 measurements)


def contenders(detector: Detector) -> list[tuple[str, int]]:
    """Every contending master's (ip, port), leader first (lowest sequence); blocking (kazoo)."""
    ranked = sorted((seq, child) for child in detector.client.get_children(detector.path)
                    if (seq := sequence_of(child)) is not None)
    out = []
    for _, child in ranked:
        try:
            data, _ = detector.client.get(f"{detector.path}/{child}")
        except NoNodeError:
            continue  # it left meanwhile
        info = parse_master_info(child, data)
        address = info["address"] if info else {}
        ip = wire.ip_literal(address.get("ip")) or wire.ip_literal(address.get("hostname"))
        if ip and isinstance(address.get("port"), int):
            out.append((ip, address["port"]))
    return out


def _master_call(kind: str) -> bytes:
    return json.dumps({"type": kind}).encode()


class Feed:
    def __init__(self, options: DnsOptions, book: RecordBook) -> None:
        self.options, self.book = options, book
        self.status = FeedStatus()
        self.ready = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(CONNECT_TIMEOUT, read=None), trust_env=False)
        self._contenders: list[tuple[str, int]] = []  # with zk://: every master's address, by znode sequence

    async def close(self) -> None:
        await self._client.aclose()

    async def run(self) -> None:
        locator = await locate_masters(self.options.zk) if self.options.zk else None
        backoff = BACKOFF_FIRST
        while True:
            subscriptions = self.status.subscriptions
            try:
                await self._follow_once(locator)
            except (FeedBroken, OperatorStreamClosed, httpx.HTTPError, OSError, ValueError) as exc:
                log.warning("operator event stream: %s; retrying in %.2fs", exc, backoff)
            self.status.connected, self.status.stale = False, True
            if self.status.subscriptions != subscriptions:
                backoff = BACKOFF_FIRST  # it was subscribed: a new break starts the backoff again
            leader_changed = await self._pause(locator, backoff)
            backoff = BACKOFF_FIRST if leader_changed else min(backoff * 2, BACKOFF_MAX)

    async def _pause(self, locator: MasterLocator | None, seconds: float) -> bool:
        """Wait ``seconds``, or less when ZooKeeper names another leader meanwhile (-> True)."""
        if not isinstance(locator, Detector):
            await asyncio.sleep(seconds)
            return False
        try:
            await asyncio.wait_for(locator.wait_change(locator.address()), seconds)
        except TimeoutError:
            return False
        return True

    async def _follow_once(self, locator: MasterLocator | None) -> None:
        if locator is None:
            address, info = await self._static_leader()
            await self._subscribe(address, info)
            return
        address = await locator.wait_leader()
        known = locator.leader if isinstance(locator, Detector) else None
        info = known if known is not None else await self._master_info(address)
        if isinstance(locator, Detector):
            try:
                self._contenders = await asyncio.to_thread(contenders, locator)
            except KazooException as exc:  # keep the last list: masterN.D. are a convenience, the leader is known
                log.warning("could not read the contenders in ZooKeeper: %r", exc)
        await while_leading(locator, address, self._subscribe(address, info))

    async def _static_leader(self) -> tuple[str, dict[str, Any]]:
        errors = []
        for address in self.options.masters:
            try:
                info = await self._master_info(address)
            except (FeedBroken, httpx.HTTPError, OSError) as exc:
                errors.append(f"{address}: {exc}")
                continue
            return master_address(info), info
        raise FeedBroken("no master answered GET_MASTER (" + "; ".join(errors) + ")")

    async def _master_info(self, address: str) -> dict[str, Any]:
        response = await self._client.post(f"http://{address}/api/v1", content=_master_call("GET_MASTER"),
                                           headers={"Content-Type": "application/json"}, follow_redirects=True)
        if response.status_code != 200:
            raise FeedBroken(f"GET_MASTER at {address}: HTTP {response.status_code}")
        body = response.json()
        info = (body.get("get_master") or {}).get("master_info") if isinstance(body, dict) else None
        if not isinstance(info, dict) or not isinstance(info.get("address"), dict):
            raise FeedBroken(f"GET_MASTER at {address}: no master_info.address")
        return info

    def _set_leader(self, info: dict[str, Any]) -> None:
        address = info["address"]
        ip = wire.ip_literal(address.get("ip")) or wire.ip_literal(address.get("hostname"))
        port = address.get("port")
        leader = (ip, int(port)) if ip and isinstance(port, int) else None
        self.status.leader = f"{ip}:{port}" if leader else ""
        if self.book.set_masters(leader, self.options.master_addresses() or self._contenders):
            self.status.last_change = time.time()

    async def _subscribe(self, address: str, info: dict[str, Any]) -> None:
        async for event in operator_events(address, client=self._client):
            await self._handle(event, info)

    async def _build(self, get_state: Any) -> None:
        """The whole state into a fresh book, yielding to the servers every SUBSCRIBE_CHUNK tasks (the
        old records keep answering meanwhile), then swapped in. A broken stream or a leader change
        while building drops the fresh book."""
        frameworks, agents, tasks = wire.state_lists(get_state)
        fresh = self.book.fresh()
        for framework in frameworks:
            fresh.put_framework(wire.parse_framework(framework))
        for agent in agents:
            fresh.put_agent(wire.parse_agent(agent))
        for index, task in enumerate(tasks, 1):
            fresh.put_task(wire.parse_task(task))
            if index % SUBSCRIBE_CHUNK == 0:
                await asyncio.sleep(0)
        self.book.adopt(fresh)

    async def _handle(self, event: dict[str, Any], info: dict[str, Any]) -> None:
        status = self.status
        status.events += 1
        if event.get("type") == "SUBSCRIBED":
            subscribed = event.get("subscribed")
            await self._build(subscribed.get("get_state") if isinstance(subscribed, dict) else None)
            self._set_leader(info)
            status.connected, status.stale, status.ready = True, False, True
            status.subscriptions += 1
            status.last_change = time.time()
            self.ready.set()
            return
        try:
            if self.book.apply(event):
                status.last_change = time.time()
        except wire.WireError as exc:
            status.event_errors += 1
            log.warning("operator event %s skipped: %s", event.get("type"), exc)
