"""What the agent machine asks its actor to do.

The machine (``meseta.agent.machine``) returns effects; the actor (``meseta.agent.actor``) executes
them in order and feeds the outcomes back as events::

    machine.handle_*(..., now) -> [ToMaster, StartTask, KillTask, CheckpointRecord, StartTimer, ...]
    actor: send / fork / signal / write / arm the timer -> machine.handle_task_launched(...), ...

A run is named by its ``RunKey``: the four ids that also name its sandbox and checkpoint on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from meseta.agent.health import HealthPolicy
from meseta.core.resources import Resources


class RunKey(NamedTuple):
    """One executor run (a container): where its sandbox and checkpoint live (``meseta.agent.paths``)."""

    agent_id: str
    framework_id: str
    executor_id: str
    container_id: str


# ------------------------------------------------------------------ to the master and executors
@dataclass(frozen=True, slots=True)
class ToMaster:
    """An agent call (STATUS_UPDATE, EXECUTOR_EXITED, EXECUTOR_MESSAGE); dropped while disconnected."""

    call: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToExecutor:
    """An event on a custom executor's subscription stream."""

    run: RunKey
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CloseExecutorStream:
    run: RunKey


@dataclass(frozen=True, slots=True)
class ExpectPings:
    """The master pings at least this often (seconds); re-register when it falls silent longer."""

    within: float


# ------------------------------------------------------------------ containers and processes
@dataclass(frozen=True, slots=True)
class CreateContainer:
    """A new run (``recovered``: found again after a restart, its sandbox exists): its sandbox,
    cgroups and image, made ready for the launches that follow."""

    run: RunKey
    kind: str
    framework_info: dict[str, Any]
    executor_info: dict[str, Any]
    resources: Resources
    container: dict[str, Any] | None  # ContainerInfo: the image of the run's root filesystem
    recovered: bool = False


@dataclass(frozen=True, slots=True)
class StartTask:
    """Make the sandbox and fetch the task's URIs; answered by ``handle_task_fetched``."""

    run: RunKey
    task_id: str
    command: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LaunchTask:
    """Fork the task's command in its container; answered by ``handle_task_launched`` (or
    ``handle_task_launch_failed``), then ``handle_task_exited``."""

    run: RunKey
    task_id: str
    info: dict[str, Any]
    command: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AdoptTask:
    """Recovery: watch a task wrapper an earlier agent started; answered by ``handle_task_exited``."""

    run: RunKey
    task_id: str
    pid: int
    status_file: Path


@dataclass(frozen=True, slots=True)
class KillTask:
    """SIGTERM the task's process group, SIGKILL after ``grace`` seconds."""

    run: RunKey
    task_id: str
    grace: float


@dataclass(frozen=True, slots=True)
class StartExecutor:
    """Sandbox, fetch and fork a custom executor; answered by ``handle_executor_launched`` (or
    ``handle_executor_launch_failed``), then ``handle_executor_exited``."""

    run: RunKey


@dataclass(frozen=True, slots=True)
class AdoptExecutor:
    run: RunKey
    pid: int
    status_file: Path


@dataclass(frozen=True, slots=True)
class StopExecutor:
    """Kill the executor's process group after ``after`` seconds unless it has exited by then."""

    run: RunKey
    after: float


@dataclass(frozen=True, slots=True)
class GrowContainer:
    """More tasks for a live executor: link their volumes, and the container's limits follow."""

    run: RunKey
    added: Resources
    allocated: Resources


@dataclass(frozen=True, slots=True)
class ProbeHealth:
    """Run one health probe of the task; answered by ``handle_health_probed``."""

    run: RunKey
    task_id: str
    policy: HealthPolicy
    command: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReleaseContainer:
    """The run has ended: its image overlay and cgroups go (with whatever is left in them)."""

    run: RunKey


# ------------------------------------------------------------------ files
@dataclass(frozen=True, slots=True)
class CheckpointTask:
    run: RunKey
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """Append an update or an acknowledgement to the task's ``task.updates``."""

    run: RunKey
    task_id: str
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ForgetRun:
    """Every update of the ended run is acknowledged: its checkpoint goes."""

    run: RunKey


@dataclass(frozen=True, slots=True)
class RemoveSandbox:
    run: RunKey


@dataclass(frozen=True, slots=True)
class SaveAgent:
    agent_id: str
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ForgetAgent:
    """The master no longer knows us: the next registration is a new agent."""


@dataclass(frozen=True, slots=True)
class SaveResources:
    checkpointed: Resources
    previous: Resources


# ------------------------------------------------------------------ time and logs
@dataclass(frozen=True, slots=True)
class StartTimer:
    """Call ``handle_timer(key, now)`` at ``at`` (wall-clock seconds)."""

    key: tuple[str, ...]
    at: float


@dataclass(frozen=True, slots=True)
class Log:
    level: int  # logging.INFO, WARNING, ERROR
    message: str


Effect = (ToMaster | ToExecutor | CloseExecutorStream | ExpectPings | CreateContainer | StartTask | LaunchTask
          | AdoptTask | KillTask | StartExecutor | AdoptExecutor | StopExecutor | GrowContainer | ProbeHealth
          | ReleaseContainer | CheckpointTask | CheckpointRecord | ForgetRun | RemoveSandbox | SaveAgent
          | ForgetAgent | SaveResources | StartTimer | Log)
