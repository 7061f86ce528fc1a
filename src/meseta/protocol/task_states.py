"""The one vocabulary of task states (``mesos.v1.TaskState``) every part of Meseta speaks.

    STAGING -> STARTING -> RUNNING -> KILLING -> terminal
                              |
                              +--(agent lost)--> UNREACHABLE --(agent back)--> as reported
                                                     |        --(agent gone)--> GONE_BY_OPERATOR
    terminal (Mesos ``protobuf::isTerminalState``): FINISHED FAILED KILLED ERROR LOST DROPPED GONE
                                                    GONE_BY_OPERATOR
    neither: UNREACHABLE (may come back) and UNKNOWN (a reconciliation answer, never stored)

``TaskState`` is a ``StrEnum``: members equal their names, so records keep plain strings and a
typed decoder (msgspec) refuses anything that is not one of these names.
"""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    TASK_STAGING = "TASK_STAGING"
    TASK_STARTING = "TASK_STARTING"
    TASK_RUNNING = "TASK_RUNNING"
    TASK_KILLING = "TASK_KILLING"
    TASK_FINISHED = "TASK_FINISHED"
    TASK_FAILED = "TASK_FAILED"
    TASK_KILLED = "TASK_KILLED"
    TASK_ERROR = "TASK_ERROR"
    TASK_LOST = "TASK_LOST"
    TASK_DROPPED = "TASK_DROPPED"
    TASK_UNREACHABLE = "TASK_UNREACHABLE"
    TASK_GONE = "TASK_GONE"
    TASK_GONE_BY_OPERATOR = "TASK_GONE_BY_OPERATOR"
    TASK_UNKNOWN = "TASK_UNKNOWN"


ALL_STATES: tuple[str, ...] = tuple(TaskState)  # declaration order (metrics list them so)
TERMINAL: frozenset[str] = frozenset({
    TaskState.TASK_FINISHED, TaskState.TASK_FAILED, TaskState.TASK_KILLED, TaskState.TASK_ERROR,
    TaskState.TASK_LOST, TaskState.TASK_DROPPED, TaskState.TASK_GONE, TaskState.TASK_GONE_BY_OPERATOR,
})
