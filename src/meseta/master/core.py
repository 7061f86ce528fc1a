"""The narrow seam every master helper depends on, instead of the whole machine.

Helpers (frameworks, offers, launch, tasks, agents, admission, eviction, partitions, maintenance,
reservations, settings) take the ``Books`` and a ``MasterCore``: the identity, the configuration,
the allocator, metrics and problems, id minting and the one way to ask for an allocation run.
``Core`` is the implementation the machine builds; nothing else implements it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from meseta.alloc.allocator import Allocator
from meseta.master.effects import Effect, StartTimer

ALLOCATE_NOW = ("allocate",)  # an allocation soon after something changed (coalesced), of what changed
ALLOCATE_BATCH = ("allocate-batch",)  # and one every allocation_interval, as Mesos batches them
ID_LETTERS = {"agent": "S", "offer": "O", "inverse": "IO"}  # frameworks are numbered without one
MAX_PROBLEMS = 100  # recent dropped operations kept for operators


@dataclass(frozen=True, slots=True)
class MasterConfig:
    allocation_interval: float = 1.0
    agent_ping_timeout: float = 15.0
    max_agent_ping_timeouts: int = 5
    offer_timeout: float | None = None
    agent_reregister_timeout: float = 600.0
    recovery_agent_removal_limit: float = 1.0  # fraction of recovered agents that may be marked unreachable
    agent_removal_rate_limit: tuple[int, float] | None = None  # (count, seconds)

    def __post_init__(self) -> None:
        if not 0.0 <= self.recovery_agent_removal_limit <= 1.0:
            raise ValueError("recovery_agent_removal_limit must be a fraction in [0, 1], "
                             f"got {self.recovery_agent_removal_limit}")
        limit = self.agent_removal_rate_limit
        if limit is not None and (limit[0] < 1 or limit[1] <= 0):
            raise ValueError(f"agent_removal_rate_limit needs a positive count and duration, got {limit}")


class MasterCore(Protocol):
    master_id: str
    master_info: dict[str, Any]
    config: MasterConfig
    allocator: Allocator

    def count(self, name: str) -> None: ...
    def log_problem(self, message: str) -> None: ...
    def next_id(self, kind: str) -> str: ...
    def request_allocation(self, effects: list[Effect], now: float, agent_id: str | None = None) -> None: ...
    def allocation_candidates(self) -> set[str] | None: ...
    def allocation_ran(self) -> None: ...


class Core:
    """Identity, configuration, allocator, counters and the allocation schedule."""

    def __init__(self, master_info: dict[str, Any], config: MasterConfig, allocator: Allocator) -> None:
        self.master_info = master_info
        self.master_id: str = master_info["id"]
        self.config = config
        self.allocator = allocator
        self.metrics: dict[str, int] = {}
        self.problems: deque[str] = deque(maxlen=MAX_PROBLEMS)
        self._counters: dict[str, int] = {}
        self._allocation_pending = False
        self._batching = False
        self._candidates: set[str] | None = set()  # agents the pending run must look at; None: all

    def count(self, name: str) -> None:
        self.metrics[name] = self.metrics.get(name, 0) + 1

    def log_problem(self, message: str) -> None:
        self.problems.append(message)

    def next_id(self, kind: str) -> str:
        """A fresh id: frameworks ``<master>-0000``, agents ``<master>-S0``, offers ``<master>-O0``,
        inverse offers ``<master>-IO0``."""
        number = self._counters.get(kind, 0)
        self._counters[kind] = number + 1
        if kind == "framework":
            return f"{self.master_id}-{number:04d}"
        return f"{self.master_id}-{ID_LETTERS[kind]}{number}"

    def request_allocation(self, effects: list[Effect], now: float, agent_id: str | None = None) -> None:
        """An allocation run soon (one for every request until it runs), of ``agent_id`` alone when
        only that agent's free resources changed (a task ended, an offer came back), of every agent
        otherwise (a framework came or revived, an agent was added, settings changed)::

            request(A), request(B) --> pending run of {A, B} --> request() --> pending run of all
            every allocation_interval: a run of all (filters expire, nothing is left behind)
        """
        if agent_id is None:
            self._candidates = None
        elif self._candidates is not None:
            self._candidates.add(agent_id)
        if not self._allocation_pending:
            self._allocation_pending = True
            effects.append(StartTimer(ALLOCATE_NOW, now))
        if not self._batching:  # from the first change on, allocate every interval (expired filters)
            self._batching = True
            effects.append(StartTimer(ALLOCATE_BATCH, now + self.config.allocation_interval))

    def allocation_candidates(self) -> set[str] | None:
        """The agents the pending run is for (None: all of them)."""
        return self._candidates

    def allocation_ran(self) -> None:
        self._allocation_pending = False
        self._candidates = set()
        self.count("allocator_runs")

    def reset_schedule(self) -> None:
        """Nothing is scheduled yet (at start-up, after settings were applied from the registry)."""
        self._allocation_pending = self._batching = False
        self._candidates = set()
