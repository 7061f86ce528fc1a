"""dns_latency (D1): task event -> DNS answer, for `meseta dns` following a real master.

A `meseta master`, one `meseta agent`, `meseta services` and `meseta dns` run as processes on
127.0.0.1. This process subscribes to the master's operator event stream too: when it sees a
task's TASK_UPDATED to TASK_RUNNING (t0) it asks `meseta dns` for the task's own name
(T-H-S.marathon.meseta., A over UDP) every millisecond until it is answered (t1); on TASK_KILLED
until the name is NXDOMAIN. t1 - t0 is the figure: what the DNS server adds after the master
published the change (both hear it on the same stream, at about the same moment).

The app /web (sleep, cpus 0.01) is scaled 0 -> TASKS in STEPS steps, then back to 0.
Mesos-DNS's figure is its polling: a change shows after 0..refreshSeconds (default 60 s; the
docs suggest 30 s), i.e. 15-30 s on average, plus the time to fetch and rebuild the whole state.

    python benchmarks/dns_latency.py [--tasks 60] [--steps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import httpx

from meseta.client.operator_stream import operator_events
from meseta.discovery.dns.names import canonical_label
from meseta.runtime.serve import free_port
from meseta.testing.clusters import services_cluster, start_daemon
from meseta.testing.processes import stop_processes
from meseta.testing.waiting import wait_until

PROBE_EVERY = 0.001  # seconds between two queries for one name
PROBE_LIMIT = 30.0  # a name not answered by then is counted as lost


async def probe(port: int, name: str, present: bool, t0: float, out: list[float], lost: list[str]) -> None:
    query = dns.message.make_query(name, "A")
    while time.perf_counter() - t0 < PROBE_LIMIT:
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=1)
        if (bool(reply.answer) if present else reply.rcode() == dns.rcode.NXDOMAIN):
            out.append(time.perf_counter() - t0)
            return
        await asyncio.sleep(PROBE_EVERY)
    lost.append(name)


async def measure(master: str, services: str, port: int, tasks: int, steps: int) -> None:
    up: list[float] = []
    down: list[float] = []
    lost: list[str] = []
    probes: set[asyncio.Task[None]] = set()
    subscribed = asyncio.Event()

    async def watch() -> None:
        async for event in operator_events(master):
            if event["type"] == "SUBSCRIBED":
                subscribed.set()
            if event["type"] != "TASK_UPDATED":
                continue
            t0 = time.perf_counter()
            status, state = event["task_updated"]["status"], event["task_updated"]["state"]
            if state not in ("TASK_RUNNING", "TASK_KILLED") or status.get("healthy") is not None:
                continue
            name = f"{canonical_label('web', status['task_id']['value'], status['agent_id']['value'])}" \
                   ".marathon.meseta."
            running = state == "TASK_RUNNING"
            job = asyncio.ensure_future(probe(port, name, running, t0, up if running else down, lost))
            probes.add(job)
            job.add_done_callback(probes.discard)

    watcher = asyncio.ensure_future(watch())
    await subscribed.wait()
    async with httpx.AsyncClient(timeout=30) as client:
        app = {"id": "/web", "cmd": "sleep 3600", "cpus": 0.01, "mem": 4, "instances": 0}
        (await client.post(f"{services}/v2/apps", json=app)).raise_for_status()
        for step in range(1, steps + 1):
            count = tasks * step // steps
            (await client.put(f"{services}/v2/apps/web", params={"force": "true"},
                              json={"instances": count})).raise_for_status()
            while len(up) + len(lost) < count:
                await asyncio.sleep(0.05)
        scaled_down = await client.put(f"{services}/v2/apps/web", params={"force": "true"}, json={"instances": 0})
        scaled_down.raise_for_status()
        while len(up) + len(down) + len(lost) < 2 * tasks:
            await asyncio.sleep(0.05)
    watcher.cancel()
    for label, values in (("start (TASK_RUNNING -> A answered)", up), ("kill (TASK_KILLED -> NXDOMAIN)", down)):
        values.sort()
        if values:
            print(f"D1 {label}: n={len(values)} p50 {statistics.median(values) * 1e3:.1f} ms, "
                  f"p99 {values[min(len(values) - 1, int(len(values) * 0.99))] * 1e3:.1f} ms, "
                  f"max {values[-1] * 1e3:.1f} ms")
    print(f"lost (not answered within {PROBE_LIMIT:.0f} s): {len(lost)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}; {args.tasks} tasks in {args.steps} steps")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        with services_cluster(base, agents=1) as (master, services):
            port, http_port = free_port(), free_port()
            proc = start_daemon(["dns", "--master", master, "--port", str(port), "--http-port", str(http_port)],
                                base / "dns.log")
            try:
                wait_until(lambda: _answers(http_port), 30, "meseta dns to serve", interval=0.1)
                asyncio.run(measure(master, services, port, args.tasks, args.steps))
            finally:
                stop_processes([proc])


def _answers(http_port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{http_port}/v1/version", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
