"""The master's operator event stream: events fanned out to many subscribers, and what it costs.

A `meseta master` process on loopback and one v1 framework; the framework sends UPDATE_FRAMEWORK
calls (each makes one FRAMEWORK_UPDATED event) while 0, 1 and then N operator subscribers
(``meseta.client.operator_stream``, in this process) read every event. For each round: calls/s,
events delivered/s (calls x subscribers), the master's CPU per call (psutil, user+system), and the
extra master CPU per delivered event against the round without subscribers.

    python benchmarks/operator_stream.py [--subscribers 100] [--calls 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from meseta.client.operator_stream import operator_events
from meseta.runtime.serve import free_port
from meseta.testing.clusters import start_daemon
from meseta.testing.processes import stop_processes

CONCURRENCY = 8
INFO = {"user": "u", "name": "bench", "labels": {"labels": [{"key": "k", "value": "v" * 100}]}}


async def subscriber(master: str, want: int, ready: asyncio.Event, done: list[float]) -> None:
    got = 0
    async for event in operator_events(master):
        if event["type"] == "HEARTBEAT":
            ready.set()
        elif event["type"] == "FRAMEWORK_UPDATED":
            got += 1
            if got == want:
                done.append(time.perf_counter())
                return


async def one_round(master: str, http: httpx.AsyncClient, call: dict[str, Any], headers: dict[str, str],
                    proc: psutil.Process, subscribers: int, calls: int) -> dict[str, float]:
    readies = [asyncio.Event() for _ in range(subscribers)]
    done: list[float] = []
    readers = [asyncio.create_task(subscriber(master, calls, r, done)) for r in readies]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    cpu0, start = sum(proc.cpu_times()[:2]), time.perf_counter()

    async def post(n: int) -> None:
        for _ in range(n):
            response = await http.post("/api/v1/scheduler", json=call, headers=headers)
            assert response.status_code == 200, response.text

    await asyncio.gather(*(post(calls // CONCURRENCY) for _ in range(CONCURRENCY)))
    sent = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*readers), 300)
    end = max(done) if done else sent
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    total = calls // CONCURRENCY * CONCURRENCY
    return {"subscribers": subscribers, "calls_per_s": total / (sent - start), "seconds": end - start,
            "events_per_s": total * subscribers / (end - start), "cpu_ms_per_call": cpu * 1000 / total,
            "cpu": cpu, "events": total * subscribers}


async def main(subscribers: int, calls: int) -> None:
    port = free_port()
    master = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_daemon(["master", "--port", str(port), "--work-dir", str(Path(tmp) / "master")],
                            Path(tmp) / "master.log")
        try:
            async with httpx.AsyncClient(base_url=f"http://{master}", timeout=httpx.Timeout(30, read=None)) as http:
                for _ in range(100):
                    try:
                        if (await http.get("/health")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.1)
                subscribe = {"type": "SUBSCRIBE", "subscribe": {"framework_info": INFO}}
                async with http.stream("POST", "/api/v1/scheduler", json=subscribe,
                                       headers={"Accept": "application/json"}) as stream:
                    chunks = stream.aiter_raw()
                    first = await anext(chunks)
                    framework_id = first.split(b'"framework_id":{"value":"', 1)[1].split(b'"', 1)[0].decode()
                    drain = asyncio.create_task(_drain(chunks))
                    call = {"type": "UPDATE_FRAMEWORK", "framework_id": {"value": framework_id},
                            "update_framework": {"framework_info": {**INFO, "id": {"value": framework_id}}}}
                    headers = {"Mesos-Stream-Id": stream.headers["mesos-stream-id"]}
                    master_proc = psutil.Process(proc.pid)
                    rows = [await one_round(master, http, call, headers, master_proc, n, calls)
                            for n in (0, 1, subscribers)]
                    drain.cancel()
        finally:
            stop_processes([proc])
    print(f"operator_stream: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
          f"{psutil.cpu_count()} CPUs, {calls} UPDATE_FRAMEWORK calls per round ({CONCURRENCY} at a time)")
    base = rows[0]["cpu_ms_per_call"]
    for row in rows:
        per_event = (row["cpu_ms_per_call"] - base) * 1000 / row["subscribers"] if row["subscribers"] else 0.0
        print(f"  {row['subscribers']:>4} subscribers: {row['calls_per_s']:7.0f} calls/s, "
              f"{row['events_per_s']:8.0f} events delivered/s, master CPU {row['cpu_ms_per_call']:.3f} ms/call, "
              f"+{per_event:.1f} us of master CPU per delivered event over no subscriber")


async def _drain(chunks: Any) -> None:
    async for _ in chunks:
        pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    asyncio.run(main(args.subscribers, args.calls))
