"""Agent recovery: after a restart (even a ``kill -9``), find the tasks again from the checkpoint.

For each run under meta/slaves/<agent>/frameworks/*/executors/*/runs/* (``meseta.agent.paths``)::

    framework without checkpoint, or --recover cleanup
        -> its processes are killed and the run forgotten (Mesos does not recover them; the
           master already reported those tasks lost when the agent went away)
    a custom executor still running is adopted and must subscribe again within
        --executor-reregistration-timeout (its tasks are what it says they are), else it is killed
    otherwise the run is rebuilt with its ids, sandbox and cgroups, and for each task:
        its status updates are replayed: the unacknowledged ones go out after re-registering
        exit.status written        the task ended while the agent was down: reported now
        its wrapper still running  adopted (pidfd, it is not our child), reported when it ends
        neither                    TASK_FAILED, REASON_EXECUTOR_TERMINATED
    a run whose tasks have all ended and been acknowledged is forgotten

The agent then re-registers with the same id, reporting the recovered tasks; nothing is
launched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from meseta.agent import checkpoint
from meseta.agent.containerizer.launcher import AdoptedProcess, is_task_wrapper, read_exit_status
from meseta.agent.executors import (
    CommandExecutor,
    CustomExecutor,
    DefaultExecutor,
    ExecutorRun,
    TaskRecord,
    command_env,
)
from meseta.core.resources import parse_json
from meseta.protocol.task_states import TERMINAL

if TYPE_CHECKING:
    from meseta.agent.actor import Agent

log = logging.getLogger(__name__)
KINDS: dict[str, type[ExecutorRun]] = {"COMMAND": CommandExecutor, "DEFAULT": DefaultExecutor,
                                       "CUSTOM": CustomExecutor}


async def recover(agent: Agent) -> None:
    if agent.agent_id is None:
        return
    for saved in await asyncio.to_thread(checkpoint.load_runs, agent.work_dir, agent.agent_id):
        cls = KINDS.get(str(saved.info.get("kind")))
        if cls is None or not saved.framework_info.get("checkpoint") or agent.recover_mode == "cleanup":
            _kill_leftovers(saved)
            await asyncio.to_thread(checkpoint.forget_run, saved.directory)
            continue
        _rebuild(agent, cls, saved)


def _rebuild(agent: Agent, cls: type[ExecutorRun], saved: checkpoint.RecoveredRun) -> None:
    framework_id = saved.framework_info["id"]["value"]
    run = agent._new_run(cls, saved.framework_info, saved.info["executor_info"],
                         parse_json(saved.info.get("resources") or []), container_id=saved.info["container_id"])
    run.meta_dir = saved.directory
    now = time.monotonic()
    for task in saved.tasks:
        record = TaskRecord(task.info)
        run.tasks[record.task_id] = record
        for entry in task.records:  # the update streams as they were: unacknowledged ones pending
            if "update" in entry:
                agent.updates.add(framework_id, entry["update"], now)
                record.state = entry["update"]["status"]["state"]
            elif "ack" in entry:
                agent.updates.acknowledge(framework_id, record.task_id, entry["ack"], now)
        if record.state in TERMINAL or isinstance(run, CustomExecutor):
            continue  # a custom executor's tasks live and end with the executor
        status_file = task.directory / "exit.status"
        if not _ended_or_running(task.pid, status_file):
            run.update(record, "TASK_FAILED", "The task's process was gone when the agent recovered",
                       "REASON_EXECUTOR_TERMINATED", source="SOURCE_AGENT")
            continue
        record.process = AdoptedProcess(task.pid or 0, status_file)  # ended already: resolves at once
        run.spawn(run.finish_task(record))
        if record.info.get("health_check") and record.state == "TASK_RUNNING":
            env = command_env(record.info.get("command") or {}, {**run.base_env, "MESOS_TASK_ID": record.task_id})
            run.spawn(run.watch_health(record, env))  # probing resumes where it was
    if isinstance(run, CustomExecutor):
        _recover_executor(agent, run, saved)
    log.info("agent %s: recovered %s with %d task(s)", agent.port, run.executor_id, len(run.tasks))
    if not isinstance(run, CustomExecutor) and all(t.state in TERMINAL for t in run.tasks.values()):
        run.finish_if_idle()


def _recover_executor(agent: Agent, run: CustomExecutor, saved: checkpoint.RecoveredRun) -> None:
    """A custom executor still running is adopted and given --executor-reregistration-timeout
    to subscribe again; one that is gone takes its unfinished tasks with it."""
    status_file = saved.directory / "exit.status"
    if not _ended_or_running(saved.pid, status_file):
        for record in run.tasks.values():
            run.update(record, "TASK_FAILED", "The executor was gone when the agent recovered",
                       "REASON_EXECUTOR_TERMINATED", source="SOURCE_AGENT")
        run._terminated()
        return
    run.adopt(AdoptedProcess(saved.pid or 0, status_file), agent.executor_reregistration_timeout)


def _ended_or_running(pid: int | None, status_file: Path) -> bool:
    """A wrapper either recorded how its process ended, or is still running (the same one)."""
    return read_exit_status(status_file) is not None or (pid is not None and is_task_wrapper(pid, status_file))


def _kill_leftovers(saved: checkpoint.RecoveredRun) -> None:
    """Kill the process groups of the run's wrappers that still run: its tasks' and its executor's."""
    wrappers = [(t.pid, t.directory) for t in saved.tasks] + [(saved.pid, saved.directory)]
    for pid, directory in wrappers:
        if pid is not None and is_task_wrapper(pid, directory / "exit.status"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
