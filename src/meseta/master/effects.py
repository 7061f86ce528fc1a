"""What the master's handlers return: effects for the actor to execute, in order.

    ToFramework / CloseFrameworkStream      an event on a framework's stream; end the stream
    ToAgent / CloseAgentStream              a message on an agent's stream; end the stream
    StartTimer / CancelTimer                timers by key (the actor fires handle_timer(key))
    Persist(operation)                      a registry write; its completion comes back as
                                            handle_persisted(operation)
    Abort(message)                          stop leading at once (the process exits)
    OperatorEvent(event)                    an event for every operator subscriber (SUBSCRIBE on
                                            /api/v1), encoded once, sent to each
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


@dataclass(frozen=True, slots=True)
class OperatorEvent:
    """An operator stream event (spec 3.3): TASK_ADDED, TASK_UPDATED, AGENT_ADDED, ..."""

    event: dict[str, Any]


Effect = (
    ToFramework | CloseFrameworkStream | ToAgent | CloseAgentStream | StartTimer | CancelTimer | Persist | Abort
    | OperatorEvent
)
