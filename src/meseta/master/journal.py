"""What changed in the master, noted for the operator event stream (spec 3.3).

The books note every change an operator subscriber hears about, in the order they make them,
but only while someone watches (no subscriber: no note, no cost)::

    books --note--> Journal.notes --machine.take_operator_events()--> OperatorEvent effects
                    (kind, record, snapshot)  rendered as v1 JSON (master.operator_views)

    TASK_ADDED         a task filed (launched, or adopted from a re-registering agent)
    TASK_UPDATED       a status update applied, or a state the master decided (lost, killed...)
    AGENT_ADDED        an agent new to the registered agents (admitted, or back after a
                       failover or from unreachable); AGENT_REMOVED: out of them
    FRAMEWORK_ADDED    a framework filed (subscribed, or recovered from an agent's report)
    FRAMEWORK_UPDATED  re-subscribed, updated, disconnected; FRAMEWORK_REMOVED: completed

A note keeps what may change before it is rendered (a task's state and how many statuses it
had; a status update's state); agents and frameworks are rendered as they are at the end of
the handler that changed them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Note:
    kind: str  # the event type: TASK_ADDED, TASK_UPDATED, AGENT_ADDED, ...
    subject: Any  # Task, Agent or Framework record; the agent id for AGENT_REMOVED
    state: str = ""  # TASK_ADDED / TASK_UPDATED: the task's state then
    status: dict[str, Any] | None = None  # TASK_UPDATED: the status applied
    statuses: int = 0  # TASK_ADDED: how many statuses the task had then
    why: tuple[str, str] = ("", "")  # TASK_UPDATED the master decided: (reason, message)


@dataclass(slots=True)
class Journal:
    watched: bool = False  # set by the shell while at least one operator subscriber is open
    notes: list[Note] = field(default_factory=list)

    def note(self, kind: str, subject: Any, state: str = "", status: dict[str, Any] | None = None,
             statuses: int = 0, why: tuple[str, str] = ("", "")) -> None:
        if self.watched:
            self.notes.append(Note(kind, subject, state, status, statuses, why))

    def take(self) -> list[Note]:
        notes, self.notes = self.notes, []
        return notes
