"""Agent recovery, the I/O half: read the checkpoint, look at each status wrapper, kill leftovers.

    load_runs (``meseta.agent.checkpoint``) --> each wrapper RUNNING | ENDED | GONE (/proc, exit.status)
        --> plan_recovery (pure, ``meseta.agent.recovery_plan``)
        --> Discard: SIGKILL to the wrappers' process groups, checkpoint forgotten (here)
        --> Rebuild: the machine takes the run back (``AgentMachine.handle_recovered``)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
from pathlib import Path

from meseta.agent import checkpoint
from meseta.agent.containerizer.launcher import is_task_wrapper, read_exit_status
from meseta.agent.recovery_plan import Discard, Rebuild, SavedRun, Wrapper, plan_recovery


async def plan(work_dir: Path, agent_id: str, mode: str) -> list[Discard | Rebuild]:
    runs = await asyncio.to_thread(_observed_runs, work_dir, agent_id)
    return plan_recovery(runs, mode)


async def discard(plans: list[Discard | Rebuild]) -> None:
    """Kill the process groups of the discarded runs' wrappers that still run, and forget them."""
    for item in plans:
        if isinstance(item, Discard):
            for pid in item.live_wrappers:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            await asyncio.to_thread(checkpoint.forget_run, item.run.directory)


def _observed_runs(work_dir: Path, agent_id: str) -> list[SavedRun]:
    runs = []
    for run in checkpoint.load_runs(work_dir, agent_id):
        tasks = [dataclasses.replace(t, wrapper=_wrapper(t.pid, t.directory)) for t in run.tasks]
        runs.append(dataclasses.replace(run, tasks=tasks, wrapper=_wrapper(run.pid, run.directory)))
    return runs


def _wrapper(pid: int | None, directory: Path) -> Wrapper:
    """A wrapper is still running (the same one: pids get reused), or it recorded how it ended."""
    status_file = directory / "exit.status"
    if pid is not None and is_task_wrapper(pid, status_file):
        return Wrapper.RUNNING
    return Wrapper.ENDED if read_exit_status(status_file) is not None else Wrapper.GONE
