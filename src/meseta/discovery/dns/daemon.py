"""``meseta dns``: the feed, the book, the DNS servers and the HTTP API on one loop.

    start -> feed.run (background) -> first SUBSCRIBED (ready) -> bind UDP+TCP DNS, HTTP API
          -> serve until cancelled; the feed keeps reconnecting underneath

Nothing answers before the first full state (an empty book would answer NXDOMAIN for names
that exist: Mesos-DNS issue 490). Several instances are independent (stateless): run more for HA.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn

from meseta.discovery.dns.book import RecordBook
from meseta.discovery.dns.feed import Feed
from meseta.discovery.dns.http import build_app
from meseta.discovery.dns.options import DnsOptions
from meseta.discovery.dns.server import Answerer, start
from meseta.runtime.serve import server

log = logging.getLogger(__name__)


@dataclass
class DnsDaemon:
    options: DnsOptions
    book: RecordBook
    feed: Feed
    answerer: Answerer
    feeding: asyncio.Future[None]  # runs for ever; ends only by a bug, which then stops the daemon


@contextlib.asynccontextmanager
async def running(options: DnsOptions) -> AsyncIterator[DnsDaemon]:
    """The daemon, serving once the first state arrived; everything stops on exit."""
    book = RecordBook(options.book_config(), serial=int(time.time()) % 2**32 or 1)
    feed = Feed(options, book)
    answerer = Answerer(book, options.answer_config(), options.resolvers, options.timeout)
    feeding = asyncio.ensure_future(feed.run())
    transport, tcp = None, None
    http: uvicorn.Server | None = None
    serving: asyncio.Future[None] | None = None
    try:
        waiting = asyncio.ensure_future(feed.ready.wait())
        await asyncio.wait([feeding, waiting], return_when=asyncio.FIRST_COMPLETED)
        if feeding.done():
            waiting.cancel()
            feeding.result()  # raises what stopped it
        transport, tcp = await start(answerer, options.listen, options.port)
        http = server(build_app(options, book, feed.status, answerer.counters), options.listen, options.http_port)
        serving = asyncio.ensure_future(http.serve())
        while not http.started and not serving.done():
            await asyncio.sleep(0.01)
        if serving.done():
            with contextlib.suppress(SystemExit, Exception):  # uvicorn logs a bind error and exits
                serving.result()
            raise OSError(f"the HTTP API could not bind {options.listen}:{options.http_port}")
        log.info("DNS on %s:%d (udp, tcp), HTTP API on %s:%d", options.listen, options.port, options.listen,
                 options.http_port)
        yield DnsDaemon(options, book, feed, answerer, feeding)
    finally:
        if http is not None and serving is not None:
            http.should_exit = True
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await serving
        if transport is not None:
            transport.close()
        if tcp is not None:
            tcp.close()
        feeding.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await feeding
        await feed.close()


async def serve(options: DnsOptions) -> None:
    async with running(options) as daemon:
        await daemon.feeding  # raises what broke it: the process exits rather than serve a frozen book
