"""The processes a test or benchmark started: finding them by a marker in their command line, and
stopping them, each in its own session (process group): SIGCONT (a stopped one cannot handle
SIGTERM), SIGTERM, ten seconds in all, then SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable

import psutil


def processes_with(marker: str) -> list[int]:
    """The pids of every process whose command line contains ``marker`` (a task's ``sleep 40.123``
    tells a test's own processes from anything else running on the host)."""
    return [p.pid for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]


def stop_processes(procs: Iterable[subprocess.Popen[bytes]], grace: float = 10.0) -> None:
    """Stop every process (and its group) that still runs; wait for each, ``grace`` s in all."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + grace
    for proc in running:
        try:
            proc.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
