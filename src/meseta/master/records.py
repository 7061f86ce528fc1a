"""The master's soft-state records: frameworks, agents, tasks, executors, offers.

Records are plain mutable dataclasses; only the books (``meseta.master.books``) create, file and
remove them, and their state fields move only through the books' methods.

Framework lifecycle (``FrameworkState``)::

    SUBSCRIBE -> ACTIVE --stream breaks--> DISCONNECTED --failover_timeout--> COMPLETED
                   ^                            |
                   +---- SUBSCRIBE with id -----+                 TEARDOWN -> COMPLETED
    (after a master failover, agents report frameworks first: RECOVERED --SUBSCRIBE--> ACTIVE)

Agent modes (``AgentMode``, registered agents; ``active`` also needs the connection)::

    ACTIVE --DEACTIVATE_AGENT--> DEACTIVATED --REACTIVATE_AGENT--> ACTIVE
       +-----DRAIN_AGENT-------> DRAINING --nothing left running--> DRAINED --REACTIVATE_AGENT--> ACTIVE
    offers come only from agents that are connected and ACTIVE (Mesos: Slave::active)

Task lifecycle as the master sees it::

    ACCEPT/LAUNCH -> STAGING --(agent updates)--> STARTING -> RUNNING -> terminal
        terminal update seen:          resources go back to the allocator (``released``)
        terminal update acknowledged:  the task moves to the framework's completed tasks
        agent unreachable:             partition-aware: TASK_UNREACHABLE, kept as an unreachable task
                                       (back if the agent re-registers with it); others: TASK_LOST
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from meseta.core.resources import EMPTY, Resources

MAX_COMPLETED_FRAMEWORKS = 50  # --max_completed_frameworks
MAX_COMPLETED_TASKS_PER_FRAMEWORK = 1000  # --max_completed_tasks_per_framework
MAX_UNREACHABLE_TASKS_PER_FRAMEWORK = 1000  # --max_unreachable_tasks_per_framework: the oldest are dropped
HEARTBEAT_INTERVAL_SECONDS = 15.0  # DEFAULT_HEARTBEAT_INTERVAL, fixed in Mesos


class FrameworkState(Enum):
    RECOVERED = "recovered"  # reported by agents after a failover, not subscribed to this master yet
    ACTIVE = "active"  # subscribed, its event stream open: it gets offers
    DISCONNECTED = "disconnected"  # its stream broke; kept for failover_timeout, no offers
    COMPLETED = "completed"  # torn down, or not back within failover_timeout: never again


class AgentMode(Enum):
    ACTIVE = "active"
    DEACTIVATED = "deactivated"  # DEACTIVATE_AGENT: no offers, tasks keep running
    DRAINING = "draining"  # DRAIN_AGENT: no offers, the agent kills its tasks
    DRAINED = "drained"  # draining, and nothing runs there any more


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
    released: bool = False  # its resources went back to the allocator
    unreachable_time: float | None = None  # when its agent was marked unreachable

    @property
    def task_id(self) -> str:
        return str(self.info["task_id"]["value"])

    @property
    def key(self) -> tuple[str, str]:
        return self.framework_id, self.task_id


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
    state: FrameworkState = FrameworkState.ACTIVE
    failover_timeout: float = 0.0  # seconds a DISCONNECTED framework is kept
    stream_id: str | None = None
    reregistered_time: float | None = None
    unregistered_time: float | None = None
    tasks: dict[str, Task] = field(default_factory=dict)
    completed_tasks: deque[Task] = field(default_factory=lambda: deque(maxlen=MAX_COMPLETED_TASKS_PER_FRAMEWORK))
    unreachable_tasks: dict[str, Task] = field(default_factory=dict)  # partition-aware only, oldest first
    executors: dict[str, dict[str, ExecutorRecord]] = field(default_factory=dict)  # agent -> executor id

    @property
    def connected(self) -> bool:
        return self.state is FrameworkState.ACTIVE

    @property
    def active(self) -> bool:
        return self.state is FrameworkState.ACTIVE

    @property
    def recovered(self) -> bool:
        return self.state is FrameworkState.RECOVERED

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
    mode: AgentMode = AgentMode.ACTIVE
    stream_id: str | None = None
    missed_pings: int = 0
    pong_seen: bool = True
    pending_kills: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # resent on re-registration
    drain_config: dict[str, Any] | None = None  # DRAIN_AGENT's DrainConfig, while DRAINING or DRAINED
    lost_frameworks: set[str] = field(default_factory=set)  # shut down there when the agent comes back

    @property
    def active(self) -> bool:
        """Offered, and counted active in every view: connected and not deactivated or draining."""
        return self.connected and self.mode is AgentMode.ACTIVE

    @property
    def deactivated(self) -> bool:
        return self.mode is not AgentMode.ACTIVE

    @property
    def drain_info(self) -> dict[str, Any] | None:
        """DrainInfo as the operator API shows it, while the agent drains."""
        if self.mode not in (AgentMode.DRAINING, AgentMode.DRAINED):
            return None
        return {"state": self.mode.name, "config": self.drain_config or {}}

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


@dataclass(slots=True)
class InverseOffer:
    id: str
    framework_id: str
    agent_id: str
