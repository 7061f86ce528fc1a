"""dns_throughput (D2): DNS queries/s that `meseta dns` serves with 10,000 task records.

The server is the real one (meseta.discovery.dns.server on uvloop, in its own process), its book
filled from a SUBSCRIBED state of APPS apps x INSTANCES running tasks on AGENTS agents (the same
pure code the operator event stream feeds). The load generator (this process) keeps WINDOW UDP
queries outstanding on 127.0.0.1 for SECONDS seconds, cycling through A queries of app names
(INSTANCES addresses each), SRV queries (INSTANCES answers + additionals, truncated to 512 bytes)
and missing names (NXDOMAIN + SOA); it reports answers/s and per-query latency.

    python benchmarks/dns_throughput.py [--apps 1000] [--instances 10] [--agents 100]
        [--seconds 5] [--window 64] [--no-cache] [--changes 0]

With the answer cache (the default) a repeated query is answered from its encoded bytes until
a record change that touches its name (or, for answers carrying the SOA serial, any change);
--no-cache measures the answerer itself (parse, decide, encode); --changes N flips the health of N
random tasks per second in the server while it answers (each flip changes that task's records).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

from dnslib import DNSRecord

from meseta.runtime.serve import free_port


def synthetic_state(apps: int, instances: int, agents: int) -> dict[str, Any]:
    framework_id = "bench-0000"
    agent_list = [{"agent_info": {"id": {"value": f"bench-S{i}"}, "hostname": "h", "port": 5051},
                   "pid": f"slave(1)@10.{i // 250}.{i % 250}.1:5051"} for i in range(agents)]
    tasks = []
    for app in range(apps):
        for instance in range(instances):
            task_id = f"app{app}.{instance}"
            tasks.append({
                "task_id": {"value": task_id}, "name": f"app{app}", "framework_id": {"value": framework_id},
                "agent_id": {"value": f"bench-S{(app * instances + instance) % agents}"}, "state": "TASK_RUNNING",
                "resources": [{"name": "ports", "type": "RANGES",
                               "ranges": {"range": [{"begin": 31000 + instance, "end": 31000 + instance}]}}],
                "statuses": [{"task_id": {"value": task_id}, "state": "TASK_RUNNING", "timestamp": 1.0}],
            })
    frameworks = [{"framework_info": {"id": {"value": framework_id}, "name": "marathon", "hostname": "10.9.9.9"}}]
    return {"get_tasks": {"tasks": tasks}, "get_frameworks": {"frameworks": frameworks},
            "get_agents": {"agents": agent_list}, "get_executors": {"executors": []}}


async def churn(book: Any, apps: int, instances: int, per_second: float) -> None:
    """Health flips of random tasks, as TASK_UPDATED events: each unpublishes or republishes one task."""
    import random

    rng, healthy = random.Random(7), True
    while True:
        await asyncio.sleep(1 / per_second)
        task_id = f"app{rng.randrange(apps)}.{rng.randrange(instances)}"
        healthy = not healthy
        book.apply({"type": "TASK_UPDATED", "task_updated": {"state": "TASK_RUNNING", "status": {
            "task_id": {"value": task_id}, "state": "TASK_RUNNING", "timestamp": 2.0, "healthy": healthy}}})


async def serve(port: int, apps: int, instances: int, agents: int, cache: bool, changes: float) -> None:
    from meseta.discovery.dns import wire
    from meseta.discovery.dns.book import RecordBook
    from meseta.discovery.dns.options import DnsOptions
    from meseta.discovery.dns.server import Answerer, start

    options = DnsOptions(masters=("127.0.0.1:5050",), port=port, ttl=5)
    book = RecordBook(options.book_config())
    started = time.perf_counter()
    book.replace(*wire.parse_state(synthetic_state(apps, instances, agents)))
    print(f"server: {len(book.tasks)} tasks, {len(book.records)} record sets built in "
          f"{time.perf_counter() - started:.2f} s", flush=True)
    answerer = Answerer(book, options.answer_config(), (), 1.0, **({} if cache else {"cache_entries": 0}))
    await start(answerer, "127.0.0.1", port)
    flipping = asyncio.ensure_future(churn(book, apps, instances, changes)) if changes else None
    print("ready", flush=True)
    await asyncio.Event().wait()
    assert flipping is None or not flipping.done()


class Load(asyncio.DatagramProtocol):
    def __init__(self, queries: list[bytes], window: int, seconds: float) -> None:
        self.queries, self.window, self.deadline = queries, window, time.perf_counter() + seconds
        self.sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self.next_id, self.index = 0, 0
        self.transport: asyncio.DatagramTransport | None = None
        self.done = asyncio.get_running_loop().create_future()
        self.rcodes: dict[int, int] = {}
        self.truncated = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        for _ in range(self.window):
            self.send()

    def send(self) -> None:
        if time.perf_counter() >= self.deadline:
            if not self.sent and not self.done.done():
                self.done.set_result(None)
            return
        self.next_id = (self.next_id + 1) % 65536
        query = self.queries[self.index % len(self.queries)]
        self.index += 1
        self.sent[self.next_id] = time.perf_counter()
        assert self.transport is not None
        self.transport.sendto(self.next_id.to_bytes(2, "big") + query[2:])

    def datagram_received(self, data: bytes, addr: Any) -> None:
        sent = self.sent.pop(int.from_bytes(data[:2], "big"), None)
        if sent is not None:
            self.latencies.append(time.perf_counter() - sent)
            rcode = data[3] & 0x0F
            self.rcodes[rcode] = self.rcodes.get(rcode, 0) + 1
            self.truncated += (data[2] >> 1) & 1
        self.send()


async def load(port: int, apps: int, seconds: float, window: int, label: str = "D2") -> None:
    names = []
    for app in range(0, apps, max(1, apps // 200)):
        names.append((f"app{app}.marathon.meseta.", "A"))
        names.append((f"_app{app}._tcp.marathon.meseta.", "SRV"))
        names.append((f"missing{app}.marathon.meseta.", "A"))
    queries = [bytes(DNSRecord.question(name, qtype).pack()) for name, qtype in names]
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(lambda: Load(queries, window, seconds),
                                                              remote_addr=("127.0.0.1", port))
    started = time.perf_counter()
    try:
        await asyncio.wait_for(protocol.done, seconds + 5)
    except TimeoutError:
        pass
    elapsed = time.perf_counter() - started
    transport.close()
    answered = len(protocol.latencies)
    lat = sorted(protocol.latencies)
    print(f"{label}: {answered} answers in {elapsed:.2f} s = {answered / elapsed:,.0f} queries/s "
          f"(window {window}, lost {len(protocol.sent)})")
    print(f"    latency p50 {statistics.median(lat) * 1e3:.2f} ms, p99 {lat[int(len(lat) * 0.99)] * 1e3:.2f} ms; "
          f"rcodes {protocol.rcodes} (0 NOERROR, 3 NXDOMAIN), TC set on {protocol.truncated}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--no-cache", action="store_true", help="answer every query afresh (no answer cache)")
    parser.add_argument("--changes", type=float, default=0.0, help="task health flips per second while measuring")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        import uvloop

        uvloop.run(serve(args.serve, args.apps, args.instances, args.agents, not args.no_cache, args.changes))
        return
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}; {args.apps} apps x {args.instances} = "
          f"{args.apps * args.instances} task records")
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--apps", str(args.apps),
                               "--instances", str(args.instances), "--agents", str(args.agents)]
                              + (["--no-cache"] if args.no_cache else []) + ["--changes", str(args.changes)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        for line in server.stdout:
            print(line.rstrip())
            if line.strip() == "ready":
                break
        if not args.no_cache:  # fill the cache: every query, every rotation (10 variants each)
            asyncio.run(load(port, args.apps, args.seconds, args.window, "warm-up (not the figure)"))
        asyncio.run(load(port, args.apps, args.seconds, args.window))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
