"""``meseta lb`` in tests and benchmarks: the LB as a real process, and a bounded loopback load generator.

    with lb_process(base, services_url, mode="runtime") as lb:     # meseta lb + its HAProxy, both stopped after
        with Load(f"http://127.0.0.1:{port}/", rate=150) as load:  # GETs at a fixed rate, from threads
            ...                                                    # upgrade, scale down, scale up
        assert load.failed == 0, load.failures[:5]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from meseta.runtime.serve import free_port
from meseta.testing.clusters import start_daemon
from meseta.testing.processes import processes_with, stop_processes
from meseta.testing.waiting import wait_until

MAX_RATE, MAX_SECONDS = 500, 120  # loopback only, bounded in count and time


@dataclass
class LbProcess:
    api: str
    stats_port: int
    http_port: int
    work_dir: Path

    def status(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.api}/v1/status", timeout=5).json())

    def servers(self, name: str) -> list[dict[str, Any]]:
        return next((list(s["servers"]) for s in self.status()["services"] if s["name"] == name), [])


@contextmanager
def lb_process(base: Path, services_url: str, *, mode: str = "runtime", group: str = "external",
               port_range: str = "10000-20000", extra: tuple[str, ...] = ()) -> Iterator[LbProcess]:
    """``meseta lb`` against ``services_url``; on exit the LB and every HAProxy of its work dir are gone."""
    work = base / "lb"
    work.mkdir(parents=True, exist_ok=True)
    api, stats, http = free_port(), free_port(), free_port()
    proc = start_daemon(["lb", "--marathon", services_url, "--group", group, "--work-dir", str(work),
                         "--stats-port", str(stats), "--http-port", str(http), "--api-port", str(api),
                         "--mode", mode, "--lb-port-range", port_range, *extra], base / "lb.log")
    lb = LbProcess(f"http://127.0.0.1:{api}", stats, http, work)
    try:
        wait_until(lambda: _answers(lb) and lb.status()["syncs"] > 0, 30, "meseta lb to sync")
        yield lb
    finally:
        stop_processes([proc])
        leftovers = processes_with(str(work / "haproxy.cfg"))
        stop_leftovers(leftovers)
        assert not leftovers, f"HAProxy processes outlived meseta lb: {leftovers}"


def stop_leftovers(pids: list[int]) -> None:
    import os
    import signal
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _answers(lb: LbProcess) -> bool:
    try:
        return httpx.get(f"{lb.api}/ping", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Load:
    """GETs ``url`` at ``rate`` per second from ``threads`` threads until stopped (at most MAX_SECONDS)."""

    url: str
    rate: float = 100.0
    threads: int = 4
    headers: dict[str, str] = field(default_factory=dict)
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    bodies: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.rate <= MAX_RATE:
            raise ValueError(f"rate {self.rate} is outside 0..{MAX_RATE}")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]

    @property
    def failed(self) -> int:
        return len(self.failures)

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(15)

    def _run(self, index: int) -> None:
        interval = self.threads / self.rate
        next_at = time.monotonic() + index * interval / self.threads
        with httpx.Client(timeout=10, headers=self.headers) as client:
            while not self._stop.is_set() and time.monotonic() - self.started < MAX_SECONDS:
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_at += interval
                try:
                    response = client.get(self.url)
                    ok, what = response.status_code == 200, f"HTTP {response.status_code} {response.text[:60]!r}"
                    body = response.text.strip()[:40]
                except httpx.HTTPError as error:
                    ok, what, body = False, f"{type(error).__name__}: {error}", ""
                with self._lock:
                    self.sent += 1
                    if ok:
                        self.bodies[body] = self.bodies.get(body, 0) + 1
                    else:
                        self.failures.append(f"{time.monotonic() - self.started:.2f}s (at {time.time():.3f}) {what}")
