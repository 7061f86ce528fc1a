"""Serving daemons: uvicorn on one event loop, free loopback ports, collector tuning, and the one
way a daemon that may no longer act stops (exit at once, as Mesos aborts)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
from typing import Any

import uvicorn


def abort_process(reason: str, daemon: str = "master") -> None:
    """What a leader does when it may no longer lead: say why, and exit at once (as Mesos aborts)."""
    logging.getLogger(f"meseta.{daemon}").critical("%s stops: %s", daemon, reason)
    logging.shutdown()
    os._exit(1)


def tune_gc() -> None:
    """A daemon holds hundreds of thousands of long-lived records (tasks, resources); CPython's
    default collector thresholds (700, 10, 10) then re-scan them often. Larger ones cut the time a
    re-registration storm of 10,000 agents takes by ~40 % (benchmarks/failover_reregistration.py)."""
    gc.set_threshold(100_000, 50, 100)


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def server(app: Any, ip: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(app, host=ip, port=port, log_level="warning", lifespan="off",
                            timeout_keep_alive=120, access_log=False)
    return uvicorn.Server(config)


async def run_together(runs: list[asyncio.Task[Any]]) -> None:
    """Await every run; when one fails or the caller is cancelled, cancel the others and wait for them."""
    try:
        await asyncio.gather(*runs)
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
