"""What the job tracker asks its shell to do, and what a finished job reports (pure data)."""

from __future__ import annotations

from dataclasses import dataclass

from meseta.examples.mapreduce.splits import Split


@dataclass(frozen=True, slots=True)
class OfferView:
    """The part of an offer the tracker decides on."""

    offer_id: str
    agent_id: str
    agent_url: str  # http://host:port of the agent (its /files and /state)
    cpus: float
    mem: float


@dataclass(frozen=True, slots=True)
class OutputPlace:
    """Where one map's partitions lie: a sandbox directory on an agent (read through its
    /files/download), or a shared directory (``agent_url`` None)."""

    agent_id: str | None
    agent_url: str | None
    directory: str


@dataclass(frozen=True, slots=True)
class TaskPlan:
    """One attempt to launch: a map of ``split`` or a reduce of partition ``index`` over ``inputs``."""

    attempt_id: str
    kind: str  # "map" | "reduce"
    index: int
    speculative: bool
    split: Split | None = None
    map_output: str | None = None  # where a map writes (relative: in its sandbox)
    inputs: tuple[OutputPlace, ...] = ()


@dataclass(frozen=True, slots=True)
class LaunchTasks:
    offer_id: str
    agent_id: str
    tasks: tuple[TaskPlan, ...]


@dataclass(frozen=True, slots=True)
class Decline:
    offer_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KillTask:
    attempt_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class LocateOutput:
    """Find the sandbox of a finished map attempt (the agent's /state); answer with
    ``JobTracker.handle_located``."""

    attempt_id: str
    agent_id: str
    agent_url: str


@dataclass(frozen=True, slots=True)
class CheckOutputs:
    """A reducer could not fetch a map output: ask each agent holding outputs whether it is
    still there; answer with ``JobTracker.handle_agent_lost`` for those that are not."""

    places: tuple[OutputPlace, ...]


@dataclass(frozen=True, slots=True)
class CommitOutput:
    """Move a finished reduce attempt's file into the output directory; answer with
    ``JobTracker.handle_committed``."""

    attempt_id: str
    partition: int


@dataclass(frozen=True, slots=True)
class JobReport:
    maps: int
    reducers: int
    attempts: int  # every task launched, speculative copies included
    speculative: int  # speculative copies launched
    speculative_won: int  # ... that finished first
    failed: int  # attempts that failed (and were retried, or failed the job)
    lost: int  # attempts lost with their agent (or dropped, killed by others)
    maps_rerun: int  # finished maps run again because their output was lost with its agent
    seconds: float


@dataclass(frozen=True, slots=True)
class JobFinished:
    report: JobReport


@dataclass(frozen=True, slots=True)
class JobFailed:
    reason: str
    report: JobReport
    attempt_id: str | None = None  # the attempt whose failure ended the job, when one did ...
    agent_url: str | None = None  # ... and its agent, where its sandbox's stderr tells why


Effect = LaunchTasks | Decline | KillTask | LocateOutput | CheckOutputs | CommitOutput | JobFinished | JobFailed
