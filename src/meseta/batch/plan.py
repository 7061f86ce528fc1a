"""The batch's book and planner: which of the N tasks to launch on which offer; pure.

One task's lifecycle (``Slot.phase``)::

    PENDING --plan + launched()--> LAUNCHED --STAGING/STARTING/RUNNING--> RUNNING
       ^                              |                                     |
       |      ended badly, retries left (not TASK_ERROR): failed_on += agent|
       +------------------------------+-------------------------------------+
                                      |  TASK_FINISHED, or no retry left --> DONE (exit_code)

``plan(offers)`` walks the pending tasks in index order (retries merge in by index) and, for
each, the first offer it fits: cpus/mem/disk left in the offer (``offers.OfferSlice``), the job's
constraints against the running tasks and those placed earlier in this plan, ``--max-parallel``;
a retry takes an offer of an agent it has not failed on when one of these offers fits, else any.
Every task of a job needs the same, so once a task fits no offer, no later one does: the walk
stops there, and an offer that runs short of one resource is dropped from the walk. Offers left
without a task are ``unused`` (to decline) and say why (``reasons``: hostname -> the first
reason), for the report of tasks that cannot be placed.

Exit code: the code of the lowest index that ended badly for good; 0 when every task finished.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from meseta.batch.constraints import violation
from meseta.batch.job import Job
from meseta.batch.offers import OfferSlice, need_of
from meseta.batch.tasks import exit_code_of, index_attempt_of
from meseta.protocol.task_states import TERMINAL, TaskState

NOT_RETRIED = frozenset({TaskState.TASK_ERROR})  # the task itself is invalid: it would fail again
STARTED = frozenset({TaskState.TASK_STAGING, TaskState.TASK_STARTING, TaskState.TASK_RUNNING})


class Phase(StrEnum):
    PENDING = "pending"
    LAUNCHED = "launched"
    RUNNING = "running"
    DONE = "done"


@dataclass(slots=True)
class Slot:
    index: int
    phase: Phase = Phase.PENDING
    attempt: int = -1  # the attempt launched last (-1: never launched)
    agent_id: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # the constraint fields of its agent
    failed_on: set[str] = field(default_factory=set)
    exit_code: int | None = None
    message: str = ""  # the last final status's message, for the summary


@dataclass(frozen=True, slots=True)
class Launch:
    index: int
    attempt: int
    offer_id: str
    agent_id: str
    resources: list[dict[str, Any]]
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class OfferPlan:
    launches: dict[str, list[Launch]]  # offer id -> the tasks it takes (offers taking none are absent)
    unused: list[str]  # offer ids to decline
    reasons: dict[str, str]  # hostname -> why the next pending task did not fit there


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one status update meant: ``kind`` is stale, started, retry or done."""

    kind: str
    index: int = -1
    attempt: int = -1
    exit_code: int | None = None


class BatchBook:
    """The one owner of the batch's task slots."""

    def __init__(self, job: Job, run_id: str) -> None:
        self.job, self.run_id = job, run_id
        self.need = need_of(job.cpus, job.mem, job.disk)
        self.slots = [Slot(index) for index in range(job.count)]
        self.next_fresh = 0  # indices >= this were never launched
        self.returned: list[int] = []  # heap of indices pending again (retries)
        self.active: dict[int, dict[str, str]] = {}  # index -> fields, launched and not ended
        self.pinned: dict[str, str] = {}  # CLUSTER without value: field -> the first placement's value
        self.done = 0
        self.phases: Counter[str] = Counter({Phase.PENDING.value: job.count})  # tasks per phase

    # ------------------------------------------------------------- questions
    def pending(self) -> int:
        return self.job.count - self.next_fresh + len(self.returned)

    def capacity(self) -> int:
        """How many more may be launched now (pending, within --max-parallel)."""
        if self.job.max_parallel == 0:
            return self.pending()
        return max(0, min(self.pending(), self.job.max_parallel - len(self.active)))

    def finished(self) -> bool:
        return self.done == self.job.count

    def exit_code(self) -> int:
        for slot in self.slots:
            if slot.exit_code:
                return slot.exit_code
        return 0

    def _move(self, slot: Slot, phase: Phase) -> None:
        self.phases[slot.phase.value] -= 1
        self.phases[phase.value] += 1
        slot.phase = phase

    def pending_in_order(self) -> Iterator[int]:
        return heapq.merge(sorted(self.returned), range(self.next_fresh, self.job.count))

    # ------------------------------------------------------------- the planner (no change to the book)
    def plan(self, offers: Sequence[Mapping[str, Any]]) -> OfferPlan:
        names = {c.field for c in self.job.constraints}
        pools = [OfferSlice.of(offer, self.job.role, names) for offer in offers]
        open_pools = list(pools)
        launches: dict[str, list[Launch]] = {}
        reasons: dict[str, str] = {}
        capacity = self.capacity()
        placed = {c.field: Counter(f[c.field] for f in self.active.values() if c.field in f)
                  for c in self.job.constraints}
        pinned = dict(self.pinned)
        for index in self.pending_in_order():
            if capacity <= 0 or not open_pools:
                break
            slot = self.slots[index]
            pool = None
            if slot.failed_on:  # a retry: another agent of these offers if one fits, else any
                pool = self._fit(open_pools, slot.failed_on, placed, pinned, {})
            pool = pool or self._fit(open_pools, set(), placed, pinned, reasons)
            if pool is None:
                break
            launch = Launch(index, slot.attempt + 1, pool.offer_id, pool.agent_id, pool.take(self.need),
                            dict(pool.fields))
            launches.setdefault(pool.offer_id, []).append(launch)
            capacity -= 1
            self._note_placement(launch.fields, placed, pinned)
        if capacity <= 0 and self.job.max_parallel and sum(map(len, launches.values())) < self.pending():
            for pool in pools:
                reasons.setdefault(pool.hostname, f"--max-parallel {self.job.max_parallel} tasks already run")
        unused = [pool.offer_id for pool in pools if pool.offer_id not in launches]
        return OfferPlan(launches, unused, {host: why for host, why in reasons.items() if host})

    def _fit(self, pools: list[OfferSlice], avoid: set[str], placed: Mapping[str, Counter[str]],
             pinned: Mapping[str, str], reasons: dict[str, str]) -> OfferSlice | None:
        """The first pool the next task fits; pools short of a resource leave ``pools``."""
        for pool in list(pools):
            short = pool.shortfall(self.need)
            if short is not None:
                pools.remove(pool)
                reasons.setdefault(pool.hostname, short)
                continue
            if pool.agent_id in avoid:
                continue
            broken = next((why for c in self.job.constraints
                           if (why := violation(c, pool.fields, placed[c.field], pinned.get(c.field)))), None)
            if broken is not None:
                reasons.setdefault(pool.hostname, broken)
                continue
            return pool
        return None

    def _note_placement(self, fields: Mapping[str, str], placed: Mapping[str, Counter[str]],
                        pinned: dict[str, str]) -> None:
        for constraint in self.job.constraints:
            value = fields.get(constraint.field)
            if value is None:
                continue
            placed[constraint.field][value] += 1
            if constraint.operator == "CLUSTER" and constraint.value is None:
                pinned.setdefault(constraint.field, value)

    # ------------------------------------------------------------- changes
    def launched(self, launch: Launch) -> None:
        """One launch of a plan; a plan's launches are applied in index order (its walk's)."""
        slot = self.slots[launch.index]
        if launch.index == self.next_fresh:
            self.next_fresh += 1
        else:
            self.returned.remove(launch.index)
            heapq.heapify(self.returned)
        self._move(slot, Phase.LAUNCHED)
        slot.attempt, slot.agent_id = launch.attempt, launch.agent_id
        slot.fields = launch.fields
        self.active[launch.index] = launch.fields
        self._pin(launch.fields)

    def _pin(self, fields: Mapping[str, str]) -> None:
        for constraint in self.job.constraints:
            if constraint.operator == "CLUSTER" and constraint.value is None and constraint.field in fields:
                self.pinned.setdefault(constraint.field, fields[constraint.field])

    def handle_update(self, status: Mapping[str, Any]) -> Outcome:
        """Apply one status update of this run's tasks."""
        found = index_attempt_of(self.run_id, str((status.get("task_id") or {}).get("value", "")))
        state = status.get("state")
        if found is None or not 0 <= found[0] < self.job.count:
            return Outcome("stale")
        index, attempt = found
        slot = self.slots[index]
        if attempt != slot.attempt or slot.phase in (Phase.DONE, Phase.PENDING):
            return Outcome("stale", index, attempt)
        if state in STARTED:
            if slot.phase == Phase.RUNNING:
                return Outcome("stale", index, attempt)
            self._move(slot, Phase.RUNNING)
            return Outcome("started", index, attempt)
        if state not in TERMINAL:
            return Outcome("stale", index, attempt)
        del self.active[index]
        code = exit_code_of(status)
        slot.message = str(status.get("message") or state)
        if code != 0 and state not in NOT_RETRIED and attempt < self.job.retries:
            self._move(slot, Phase.PENDING)
            if slot.agent_id is not None:
                slot.failed_on.add(slot.agent_id)
            heapq.heappush(self.returned, index)
            return Outcome("retry", index, attempt, code)
        self._move(slot, Phase.DONE)
        slot.exit_code = code
        self.done += 1
        return Outcome("done", index, attempt, code)

    def launched_ids(self) -> list[tuple[str, str]]:
        """(task id, agent id) of every task launched and not ended (to kill them)."""
        return [(f"{self.run_id}.{i}.{self.slots[i].attempt}", self.slots[i].agent_id or "") for i in self.active]


def waiting_report(pending: int, seconds: float, reasons: Mapping[str, str], offers_seen: int) -> str:
    """The line that says why pending tasks do not start."""
    head = f"{pending} task(s) waiting {seconds:.0f}s for an offer they fit"
    if not offers_seen:
        return f"{head}: no offer came from the master (are agents registered, with resources for this role?)"
    shown = "; ".join(f"{host}: {why}" for host, why in sorted(reasons.items())[:5])
    more = f" (and {len(reasons) - 5} more agents)" if len(reasons) > 5 else ""
    return f"{head}: {shown}{more}"
