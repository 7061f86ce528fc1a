"""One run of a job: an attempt at one due time, from the queue to its end.

    QUEUED --offer fits--> LAUNCHING (stored before the ACCEPT) --TASK_STARTING/RUNNING--> RUNNING
       |                       |                                           |
       +--kill----------------->+-- any terminal update ------------------>+--> ended: the job's
                                                                              counters and history

Task ids are Chronos's ``ct:<due ms>:<attempt>:<job name>:<arguments>`` (arguments joined by
spaces, characters an id may not hold replaced by '_', cut to an id's length), so a run's task id
is the same whoever leads: a new leader that finds a run LAUNCHING reconciles it rather than
starting it again.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from meseta.protocol.ids import MAX_ID_LENGTH


class RunState(StrEnum):
    QUEUED = "QUEUED"
    LAUNCHING = "LAUNCHING"
    RUNNING = "RUNNING"


class Cause(StrEnum):
    SCHEDULE = "schedule"  # a due time of the job's schedule
    MANUAL = "manual"  # PUT .../job/<name>
    DEPENDENCY = "dependency"  # every parent succeeded
    RETRY = "retry"  # the attempt before failed


_NOT_IN_ID = re.compile(r"[\x00-\x1f\x7f/\\]")


def task_id(job: str, due: float, attempt: int, arguments: tuple[str, ...]) -> str:
    text = f"ct:{round(due * 1000)}:{attempt}:{job}:{' '.join(arguments)}"
    return _NOT_IN_ID.sub("_", text)[:MAX_ID_LENGTH]


@dataclass(slots=True)
class Run:
    task_id: str
    job: str
    due: float  # the due time (scheduled), or when it was asked for
    attempt: int  # 0, then 1.. for retries
    cause: Cause
    queued_at: float
    arguments: tuple[str, ...] = ()
    state: RunState = RunState.QUEUED
    agent_id: str = ""
    launched_at: float | None = None
    started_at: float | None = None
    kill_asked: bool = False  # a user asked to kill it: its end is not retried
    timed_out: bool = False  # killed for running past maxCompletionTime: a failure (retried)

    @property
    def active(self) -> bool:
        return self.state is not RunState.QUEUED

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["cause"], out["state"], out["arguments"] = self.cause.value, self.state.value, list(self.arguments)
        return out

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Run:
        return cls(task_id=str(value["task_id"]), job=str(value["job"]), due=float(value["due"]),
                   attempt=int(value["attempt"]), cause=Cause(value["cause"]), queued_at=float(value["queued_at"]),
                   arguments=tuple(str(a) for a in value.get("arguments") or ()),
                   state=RunState(value["state"]), agent_id=str(value.get("agent_id") or ""),
                   launched_at=value.get("launched_at"), started_at=value.get("started_at"),
                   kill_asked=bool(value.get("kill_asked")), timed_out=bool(value.get("timed_out")))
