"""The master's soft state and the effects its handlers emit.

Records are plain mutable dataclasses owned by :class:`meseta.master.machine.MasterMachine`;
nothing outside the machine mutates them. Effects are frozen data the actor executes.

Task lifecycle as the master sees it::

    ACCEPT/LAUNCH -> STAGING --(agent updates)--> STARTING -> RUNNING -> terminal
        terminal update seen:          resources go back to the allocator
        terminal update acknowledged:  task moves to the framework's completed_tasks
        agent unreachable:             partition-aware: TASK_UNREACHABLE, kept in unreachable_tasks
                                       (back in tasks if the agent re-registers with it); others:
                                       TASK_LOST, completed
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from meseta.core.resources import EMPTY, Resources

MAX_COMPLETED_FRAMEWORKS = 50  # --max_completed_frameworks
MAX_COMPLETED_TASKS_PER_FRAMEWORK = 1000  # --max_completed_tasks_per_framework
MAX_UNREACHABLE_TASKS_PER_FRAMEWORK = 1000  # --max_unreachable_tasks_per_framework: the oldest are dropped
HEARTBEAT_INTERVAL_SECONDS = 15.0  # DEFAULT_HEARTBEAT_INTERVAL, fixed in Mesos


@dataclass(slots=True)
class Task:
    info: dict[str, Any]
    framework_id: str
    agent_id: str
    executor_id: str  # "" for command tasks
    role: str
    resources: Resources
    state: str = "TASK_STAGING"
    status_update_state: str | None = None
    status_update_uuid: str | None = None
    statuses: list[dict[str, Any]] = field(default_factory=list)
    latest_status: dict[str, Any] | None = None
    released: bool = False
    unreachable_time: float | None = None  # when its agent was marked unreachable

    @property
    def task_id(self) -> str:
        return str(self.info["task_id"]["value"])


@dataclass(slots=True)
class ExecutorRecord:
    info: dict[str, Any]
    resources: Resources
    role: str


@dataclass(slots=True)
class Framework:
    id: str
    info: dict[str, Any]
    roles: tuple[str, ...]
    capabilities: frozenset[str]
    registered_time: float
    stream_id: str | None = None
    connected: bool = False
    active: bool = False
    recovered: bool = False
    reregistered_time: float | None = None
    unregistered_time: float | None = None
    tasks: dict[str, Task] = field(default_factory=dict)
    completed_tasks: deque[Task] = field(default_factory=lambda: deque(maxlen=MAX_COMPLETED_TASKS_PER_FRAMEWORK))
    unreachable_tasks: dict[str, Task] = field(default_factory=dict)  # partition-aware only, oldest first
    offers: set[str] = field(default_factory=set)
    executors: dict[str, dict[str, ExecutorRecord]] = field(default_factory=dict)  # agent -> executor id

    @property
    def partition_aware(self) -> bool:
        return "PARTITION_AWARE" in self.capabilities

    @property
    def checkpoint(self) -> bool:
        return bool(self.info.get("checkpoint", False))


@dataclass(slots=True)
class Agent:
    id: str
    info: dict[str, Any]
    total: Resources
    registered_time: float
    version: str
    capabilities: tuple[str, ...] = ()
    reregistered_time: float | None = None
    connected: bool = True
    active: bool = True
    stream_id: str | None = None
    offers: set[str] = field(default_factory=set)
    task_keys: set[tuple[str, str]] = field(default_factory=set)  # (framework_id, task_id)
    missed_pings: int = 0
    pong_seen: bool = True
    pending_kills: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # resent on re-registration
    deactivated: bool = False  # DEACTIVATE_AGENT or DRAIN_AGENT: no offers
    drain_info: dict[str, Any] | None = None  # {"state": DRAINING|DRAINED, "config": DrainConfig}
    lost_frameworks: set[str] = field(default_factory=set)  # shut down there when the agent comes back

    @property
    def hostname(self) -> str:
        return str(self.info.get("hostname", ""))

    @property
    def port(self) -> int:
        return int(self.info.get("port", 5051))

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.hostname}:{self.port}"


@dataclass(slots=True)
class Offer:
    id: str
    framework_id: str
    agent_id: str
    role: str
    resources: Resources = EMPTY


# --------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True)
class ToFramework:
    framework_id: str
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CloseFrameworkStream:
    framework_id: str
    stream_id: str


@dataclass(frozen=True, slots=True)
class ToAgent:
    agent_id: str
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CloseAgentStream:
    agent_id: str
    stream_id: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    key: tuple[str, ...]
    at: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    key: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AdmitAgent:
    """Registry operation: the agent is admitted (survives master restarts)."""

    agent_id: str
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RemoveAgent:
    """Registry operation: the agent is gone from the cluster."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class MarkAgentUnreachable:
    """Registry operation: the agent stopped answering (pings or re-registration); it may come
    back, and is then admitted again with ``AdmitAgent``."""

    agent_id: str
    time: float


@dataclass(frozen=True, slots=True)
class MarkAgentGone:
    """Registry operation: the operator says the agent is gone for good (``MARK_AGENT_GONE``)."""

    agent_id: str
    time: float


@dataclass(frozen=True, slots=True)
class SaveSetting:
    """Registry operation: an operator setting (``weights``, ``quota``, ``maintenance``) as JSON."""

    name: str
    value: Any


RegistryOperation = AdmitAgent | RemoveAgent | MarkAgentUnreachable | MarkAgentGone | SaveSetting


@dataclass(frozen=True, slots=True)
class Persist:
    operation: RegistryOperation


@dataclass(frozen=True, slots=True)
class Abort:
    """The master must stop leading at once (the actor exits the process), e.g. when more
    recovered agents than ``recovery_agent_removal_limit`` allows failed to re-register."""

    message: str


Effect = (
    ToFramework | CloseFrameworkStream | ToAgent | CloseAgentStream | StartTimer | CancelTimer | Persist | Abort
)


class SubscribeRefused(Exception):
    """SUBSCRIBE was refused: answer 200, one ERROR event, then close (Mesos semantics)."""


class CallRejected(Exception):
    """A scheduler call is invalid for the current state; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
