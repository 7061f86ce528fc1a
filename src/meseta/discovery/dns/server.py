"""DNS over UDP and TCP on one asyncio loop: bytes in, the answerer's decision, bytes out.

    UDP datagram / TCP message (2-byte length prefix, several per connection)
      -> answer cache: the same query bytes (after the ID) since the last record change -> bytes
      -> DNSRecord.parse (unparseable: FORMERR when the 12-byte header is there, else dropped)
      -> answer.answer(query, book, config)
           response -> encode within the UDP/EDNS0 or TCP limit
           None     -> forward to each --resolver in turn over the client's transport
                       (none configured: REFUSED; none answers: SERVFAIL)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections import Counter
from typing import Any

from dnslib import QTYPE, RCODE, DNSError, DNSHeader, DNSRecord

from meseta.discovery.dns import answer
from meseta.discovery.dns.book import RecordBook

log = logging.getLogger(__name__)
HEADER_BYTES = 12
MAX_TCP_CLIENTS = 256  # connections beyond this are closed at once: a bound, not a queue
TCP_IDLE = 30.0  # seconds a TCP client may stay silent before it is closed (RFC 7766 suggests seconds)
CACHE_ENTRIES = 50_000  # encoded answers kept (all dropped when full)
CacheKey = tuple[bytes, bool]


class Answerer:
    """The shared half of both transports: decide, encode, forward."""

    def __init__(self, book: RecordBook, config: answer.AnswerConfig,
                 resolvers: tuple[tuple[str, int], ...], timeout: float, cache_entries: int = CACHE_ENTRIES) -> None:
        self.book, self.config, self.resolvers, self.timeout = book, config, resolvers, timeout
        self.counters: Counter[str] = Counter()
        self._rotation = 0
        # Encoded in-domain answers by (the query's bytes after its ID, transport), each with one variant
        # per rotation. A record change drops the answers that depend on a changed name (the name asked,
        # SRV targets in the additional section). An answer carrying the SOA (negative answers, SOA
        # queries) keeps the offset of its serial, which is written afresh on each hit.
        self._cache: dict[CacheKey, tuple[int, dict[int, tuple[bytes, int | None]]]] = {}
        self._by_name: dict[str, set[CacheKey]] = {}
        self._cache_serial = book.serial
        self._cache_entries = cache_entries
        self._inserted = 0

    def _sync_cache(self) -> None:
        if self._cache_serial == self.book.serial:
            return
        self._cache_serial = self.book.serial
        for name in self.book.take_changed():
            for key in self._by_name.pop(name, ()):
                self._cache.pop(key, None)

    def _cached(self, data: bytes, tcp: bool) -> bytes | None:
        self._sync_cache()
        entry = self._cache.get((bytes(data[2:]), tcp))
        if entry is None:
            return None
        count, variants = entry
        variant = variants.get(self._rotation % count)
        if variant is None:
            return None
        encoded, serial_at = variant
        if serial_at is not None:
            encoded = encoded[:serial_at] + struct.pack("!I", self.book.serial) + encoded[serial_at + 4:]
        return data[:2] + encoded

    def _serial_offset(self, reply: DNSRecord, response: bytes) -> int | None:
        """Where the SOA serial is in ``response`` (after the ID); None without SOA; -1: not found."""
        if not reply.auth and not any(rr.rtype == QTYPE.SOA for rr in reply.rr):
            return None
        config = self.config
        times = struct.pack("!IIIII", self.book.serial, config.refresh, config.retry, config.expire, config.ttl)
        at = response.find(times, HEADER_BYTES)
        return at - 2 if at >= 0 and response.find(times, at + 1) < 0 else -1

    def _remember(self, data: bytes, tcp: bool, reply: DNSRecord, response: bytes) -> None:
        self._sync_cache()
        serial_at = self._serial_offset(reply, response)
        if serial_at == -1:
            return  # the SOA was cut, or its bytes are not unique: not cached
        self._inserted += 1
        if len(self._cache) >= self._cache_entries or self._inserted > 4 * self._cache_entries:
            self._cache.clear()
            self._by_name.clear()
            self._inserted = 0
        key = (bytes(data[2:]), tcp)
        entry = self._cache.setdefault(key, (max(len(reply.rr), 1), {}))
        entry[1][self._rotation % entry[0]] = (response[2:], serial_at)
        for name in {answer.query_name(reply), *(str(rr.rname) for rr in reply.ar if rr.rtype != QTYPE.OPT)}:
            self._by_name.setdefault(name, set()).add(key)

    def _formerr(self, data: bytes) -> bytes | None:
        if len(data) < HEADER_BYTES:
            return None
        (query_id,) = struct.unpack("!H", data[:2])
        return bytes(DNSRecord(DNSHeader(id=query_id, qr=1, rcode=RCODE.FORMERR)).pack())

    def decide(self, data: bytes, tcp: bool) -> tuple[bytes | None, DNSRecord | None]:
        """(response, None), or (None, query) when the query is to be forwarded."""
        self.counters["tcp_queries" if tcp else "udp_queries"] += 1
        self._rotation += 1
        if self._cache_entries and len(data) > HEADER_BYTES:
            hit = self._cached(data, tcp)
            if hit is not None:
                self.counters["cache_hits"] += 1
                return hit, None
        try:
            query = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError, struct.error):
            self.counters["malformed"] += 1
            return self._formerr(data), None
        reply = answer.answer(query, self.book, self.config, self._rotation)
        if reply is not None:
            limit = answer.size_limit(query, tcp)
            response = answer.encode(answer.with_edns(query, reply), limit, self.config.set_truncate_bit)
            if self._cache_entries and reply.questions:
                self._remember(data, tcp, reply, response)
            return response, None
        if not self.resolvers:
            self.counters["refused"] += 1
            return answer.error(query, self.config, RCODE.REFUSED).pack(), None
        return None, query

    async def forward(self, query: DNSRecord, data: bytes, tcp: bool) -> bytes:
        self.counters["forwarded"] += 1
        for host, port in self.resolvers:
            with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
                return await asyncio.wait_for(_ask(host, port, data, tcp), self.timeout)
        self.counters["forward_failures"] += 1
        return bytes(answer.error(query, self.config, RCODE.SERVFAIL).pack())

    def safe_decide(self, data: bytes, tcp: bool) -> tuple[bytes | None, DNSRecord | None]:
        try:
            return self.decide(data, tcp)
        except Exception:  # one bad answer must not stop the server; logged, SERVFAIL
            log.exception("DNS query failed")
            self.counters["failures"] += 1
            if len(data) < HEADER_BYTES:
                return None, None
            (query_id,) = struct.unpack("!H", data[:2])
            return DNSRecord(DNSHeader(id=query_id, qr=1, rcode=RCODE.SERVFAIL)).pack(), None

    async def respond(self, data: bytes, tcp: bool) -> bytes | None:
        response, forward = self.safe_decide(data, tcp)
        if forward is not None:
            return await self.forward(forward, data, tcp)
        return response


async def _ask(host: str, port: int, data: bytes, tcp: bool) -> bytes:
    loop = asyncio.get_running_loop()
    if tcp:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(struct.pack("!H", len(data)) + data)
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(size)
        finally:
            writer.close()
    received: asyncio.Future[bytes] = loop.create_future()

    class Upstream(asyncio.DatagramProtocol):
        def datagram_received(self, reply: bytes, addr: Any) -> None:
            if reply[:2] == data[:2] and not received.done():
                received.set_result(reply)

        def error_received(self, exc: Exception) -> None:
            if not received.done():
                received.set_exception(exc)

    transport, _ = await loop.create_datagram_endpoint(Upstream, remote_addr=(host, port))
    try:
        transport.sendto(data)
        return await received
    finally:
        transport.close()


class UdpServer(asyncio.DatagramProtocol):
    def __init__(self, answerer: Answerer) -> None:
        self.answerer = answerer
        self.transport: asyncio.DatagramTransport | None = None
        self._forwarding: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        response, forward = self.answerer.safe_decide(data, tcp=False)
        if forward is not None:
            task = asyncio.ensure_future(self._forward(forward, data, addr))
            self._forwarding.add(task)
            task.add_done_callback(self._forwarding.discard)
        elif response is not None and self.transport is not None:
            self.transport.sendto(response, addr)

    async def _forward(self, query: DNSRecord, data: bytes, addr: Any) -> None:
        response = await self.answerer.forward(query, data, tcp=False)
        if self.transport is not None:
            self.transport.sendto(response, addr)


async def serve_tcp(answerer: Answerer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    answerer.counters["tcp_connections"] += 1
    try:
        if answerer.counters["tcp_connections"] - answerer.counters["tcp_closed"] > MAX_TCP_CLIENTS:
            return
        while True:
            (size,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), TCP_IDLE))
            response = await answerer.respond(await asyncio.wait_for(reader.readexactly(size), TCP_IDLE), tcp=True)
            if response is None:
                return
            writer.write(struct.pack("!H", len(response)) + response)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        pass
    finally:
        answerer.counters["tcp_closed"] += 1
        writer.close()


async def start(answerer: Answerer, host: str, port: int) -> tuple[asyncio.DatagramTransport, asyncio.Server]:
    """Bind UDP and TCP on ``host:port`` (the same port number for both)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: UdpServer(answerer), local_addr=(host, port))
    tcp = await asyncio.start_server(lambda r, w: serve_tcp(answerer, r, w), host, port)
    return transport, tcp
