"""What a restarted agent does with each checkpointed run (pure: saved runs in, decisions out).

The actor reads the checkpoint (``meseta.agent.checkpoint.load_runs``) and looks at each wrapper
(``meseta.agent.recovery``); this module decides; the machine rebuilds what is kept::

    framework without checkpoint, unknown kind, or --recover cleanup
        -> Discard: the wrappers still running are killed and the run forgotten (the master
           already reported those tasks lost when the agent went away)
    otherwise Rebuild, and for each task, after replaying its update stream:
        terminal, or a custom executor's             settled (a custom executor's tasks live and
                                                     end with it)
        its wrapper ENDED (exit.status written)      adopted: reported at once, as it ended
        its wrapper still RUNNING                    adopted: reported when it ends
        GONE (neither)                               TASK_FAILED, REASON_EXECUTOR_TERMINATED
    a custom executor still RUNNING (or ENDED) is adopted and must subscribe again within
    --executor-reregistration-timeout; one GONE takes its unfinished tasks with it
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from meseta.agent.runs import KINDS
from meseta.protocol.task_states import TERMINAL


class Wrapper(StrEnum):
    """What became of a status wrapper (``meseta.agent.containerizer.launcher.wrap_with_status``)."""

    ENDED = "ENDED"  # it wrote exit.status
    RUNNING = "RUNNING"  # the same process still runs
    GONE = "GONE"  # neither: killed with its status unwritten, or never started
    UNKNOWN = "UNKNOWN"  # not looked at yet


@dataclass(frozen=True)
class SavedTask:
    info: dict[str, Any]
    directory: Path
    pid: int | None
    records: list[dict[str, Any]]  # {"update": ...} and {"ack": uuid}, in order
    wrapper: Wrapper = Wrapper.UNKNOWN

    @property
    def task_id(self) -> str:
        return str(self.info["task_id"]["value"])

    def replayed_state(self) -> str | None:
        states = [r["update"]["status"]["state"] for r in self.records if "update" in r]
        return states[-1] if states else None


@dataclass(frozen=True)
class SavedRun:
    framework_info: dict[str, Any]
    info: dict[str, Any]  # kind, executor_info, container_id, sandbox, resources
    directory: Path
    tasks: list[SavedTask]
    pid: int | None  # a custom executor's wrapper
    wrapper: Wrapper = Wrapper.UNKNOWN

    @property
    def kind(self) -> str:
        return str(self.info.get("kind"))


@dataclass(frozen=True)
class Discard:
    """Kill the process groups of these wrappers and forget the run."""

    run: SavedRun
    live_wrappers: tuple[int, ...]


class Fate(StrEnum):
    SETTLED = "SETTLED"
    ADOPT = "ADOPT"
    GONE = "GONE"


@dataclass(frozen=True)
class Rebuild:
    run: SavedRun
    task_fates: tuple[Fate, ...]  # one per run.tasks, in order
    executor_fate: Fate  # SETTLED for the built-in executors


def plan_recovery(runs: list[SavedRun], mode: str) -> list[Discard | Rebuild]:
    """``mode`` is --recover: ``reconnect`` finds the tasks again, ``cleanup`` kills what is left."""
    return [_plan_run(run, mode) for run in runs]


def _plan_run(run: SavedRun, mode: str) -> Discard | Rebuild:
    if run.kind not in KINDS or not run.framework_info.get("checkpoint") or mode == "cleanup":
        wrappers = [(t.pid, t.wrapper) for t in run.tasks] + [(run.pid, run.wrapper)]
        return Discard(run, tuple(pid for pid, seen in wrappers if pid is not None and seen == Wrapper.RUNNING))
    custom = run.kind == "CUSTOM"
    fates = tuple(_task_fate(task, custom) for task in run.tasks)
    executor_fate = Fate.SETTLED if not custom else Fate.GONE if run.wrapper == Wrapper.GONE else Fate.ADOPT
    return Rebuild(run, fates, executor_fate)


def _task_fate(task: SavedTask, custom: bool) -> Fate:
    if custom or task.replayed_state() in TERMINAL:
        return Fate.SETTLED
    return Fate.GONE if task.wrapper == Wrapper.GONE else Fate.ADOPT
