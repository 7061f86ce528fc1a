"""The job tracker: one MapReduce job's state machine (pure: state, input and ``now`` in,
effects out; no clock, no I/O).

A task (map i or reduce r) and its attempts::

    PENDING --offer with room--> RUNNING (attempt a1 on agent A)
      RUNNING --a1 FINISHED--> map: locate a1's sandbox --found--> DONE (other attempts killed)
                               reduce: commit a1's file --moved----> DONE (other attempts killed)
                               (not found / not moved: a1 lost / failed, as below)
      RUNNING --a1 FAILED/ERROR--> PENDING, avoiding A (max_attempts failures: the job fails)
      RUNNING --a1 LOST/GONE/UNREACHABLE/DROPPED, or A lost--> PENDING (not counted as a failure)
      RUNNING --runs > max(min_seconds, factor x median of the phase's done tasks)-->
              a speculative copy a2 on another agent; the first to finish wins
      DONE (map) --its agent lost while a reducer still needs its output--> PENDING (re-run);
              running reducers are killed and wait for it

The job::

    MAP --every map DONE--> REDUCE --every reducer DONE--> FINISHED
     ^                        |
     +---- a map output lost -+            any task failing max_attempts times --> FAILED

Offers: a task fits an offer while the offer has ``cpus`` and ``mem`` for it and its agent
runs fewer than ``tasks_per_agent`` of the job's attempts. Pending tasks go first (lowest index
first), then speculative copies (longest running first). An offer that gets nothing is declined.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from meseta.examples.mapreduce.effects import (
    CheckOutputs,
    CommitOutput,
    Decline,
    Effect,
    JobFailed,
    JobFinished,
    JobReport,
    KillTask,
    LaunchTasks,
    LocateOutput,
    OfferView,
    OutputPlace,
    TaskPlan,
)
from meseta.examples.mapreduce.job import JobSpec
from meseta.examples.mapreduce.splits import Split, compute_splits

MAX_LOSSES = 20  # attempts of one task lost with agents (not its fault) before the job gives up
FETCH_FAILED_EXIT = 75  # a reducer exits so when a map output cannot be fetched (EX_TEMPFAIL)
MAP_OUTPUT = "map-out"  # a map's partitions, in its sandbox, when there is no shuffle directory
FITS_EPSILON = 1e-9  # offered scalars are decimal fractions: 0.3 / 0.1 must give 3
COUNTED_FAILURES = frozenset({"TASK_FAILED", "TASK_ERROR"})
LIVE_STATES = frozenset({"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"})
AGENT_GONE_STATES = frozenset({"TASK_GONE", "TASK_UNREACHABLE", "TASK_GONE_BY_OPERATOR"})
AGENT_GONE_REASONS = frozenset({"REASON_AGENT_DISCONNECTED", "REASON_AGENT_REMOVED",
                                "REASON_AGENT_REMOVED_BY_OPERATOR"})


@dataclass(slots=True)
class Attempt:
    id: str
    kind: str
    index: int
    agent_id: str
    launched_at: float
    speculative: bool
    state: str = "running"  # running | locating | committing | finished | failed | lost | killed

    @property
    def live(self) -> bool:
        return self.state in ("running", "locating", "committing")


@dataclass(slots=True)
class WorkItem:
    kind: str  # "map" | "reduce"
    index: int
    state: str = "pending"  # pending | running | done
    attempts: list[str] = field(default_factory=list)
    failures: int = 0
    losses: int = 0
    failed_agents: set[str] = field(default_factory=set)
    output: OutputPlace | None = None
    duration: float | None = None


class JobTracker:
    """One job, from its splits to its committed output. ``job_id`` prefixes every task id."""

    def __init__(self, spec: JobSpec, job_id: str, now: float) -> None:
        self.spec = spec
        self.job_id = job_id
        self.started_at = now
        self.splits: tuple[Split, ...] = compute_splits(spec.inputs, spec.split_bytes)
        self.maps = [WorkItem("map", s.index) for s in self.splits]
        self.reduces = [WorkItem("reduce", r) for r in range(spec.reducers)]
        self.attempts: dict[str, Attempt] = {}
        self.agent_urls: dict[str, str] = {}
        self.lost_agents: set[str] = set()
        self.phase = "map" if self.maps else "reduce"
        self.failure: str | None = None
        self.counts = {"speculative": 0, "speculative_won": 0, "failed": 0, "lost": 0, "maps_rerun": 0}

    # ------------------------------------------------------------- views
    @property
    def finished(self) -> bool:
        return self.phase in ("done", "failed")

    def items(self, kind: str) -> list[WorkItem]:
        return self.maps if kind == "map" else self.reduces

    def live_attempts(self, item: WorkItem) -> list[Attempt]:
        return [a for a in (self.attempts[i] for i in item.attempts) if a.live]

    def running_on(self, agent_id: str) -> int:
        return sum(1 for a in self.attempts.values() if a.live and a.agent_id == agent_id)

    def report(self, now: float) -> JobReport:
        return JobReport(len(self.maps), len(self.reduces), len(self.attempts), self.counts["speculative"],
                         self.counts["speculative_won"], self.counts["failed"], self.counts["lost"],
                         self.counts["maps_rerun"], round(now - self.started_at, 3))

    # ------------------------------------------------------------- offers
    def handle_offers(self, offers: Iterable[OfferView], now: float) -> list[Effect]:
        effects: list[Effect] = []
        declined: list[str] = []
        for offer in offers:
            self.agent_urls[offer.agent_id] = offer.agent_url
            self.lost_agents.discard(offer.agent_id)
            plans = [] if self.finished else self.compute_placements(offer, now)
            if plans:
                effects.append(LaunchTasks(offer.offer_id, offer.agent_id, tuple(plans)))
            else:
                declined.append(offer.offer_id)
        if declined:
            effects.append(Decline(tuple(declined)))
        return effects

    def compute_placements(self, offer: OfferView, now: float) -> list[TaskPlan]:
        spec = self.spec
        room = min(int(offer.cpus / spec.cpus + FITS_EPSILON), int(offer.mem / spec.mem + FITS_EPSILON),
                   spec.tasks_per_agent - self.running_on(offer.agent_id))
        plans: list[TaskPlan] = []
        for item in self.pending_for(offer.agent_id):
            if len(plans) >= room:
                return plans
            plans.append(self.start_attempt(item, offer.agent_id, now, speculative=False))
        for item in self.stragglers(offer.agent_id, now):
            if len(plans) >= room:
                return plans
            plans.append(self.start_attempt(item, offer.agent_id, now, speculative=True))
        return plans

    def pending_for(self, agent_id: str) -> list[WorkItem]:
        """The phase's pending tasks that may run on ``agent_id``: not where they failed, unless
        they failed on every agent the job knows."""
        live_agents = set(self.agent_urls) - self.lost_agents
        return [item for item in self.items(self.phase) if item.state == "pending"
                and (agent_id not in item.failed_agents or live_agents <= item.failed_agents)]

    def stragglers(self, agent_id: str, now: float) -> list[WorkItem]:
        """Running tasks of the phase worth a speculative copy on ``agent_id``, longest first."""
        items = self.items(self.phase)
        durations = [i.duration for i in items if i.duration is not None]
        if not self.spec.speculation or not durations:
            return []
        threshold = max(self.spec.speculative_min_seconds, self.spec.speculative_factor * statistics.median(durations))
        slow: list[tuple[float, WorkItem]] = []
        for item in items:
            live = self.live_attempts(item)
            if item.state != "running" or len(live) != 1 or live[0].agent_id == agent_id:
                continue
            elapsed = now - live[0].launched_at
            if elapsed > threshold and live[0].state == "running":
                slow.append((elapsed, item))
        return [item for _, item in sorted(slow, key=lambda pair: (-pair[0], pair[1].index))]

    def start_attempt(self, item: WorkItem, agent_id: str, now: float, speculative: bool) -> TaskPlan:
        number = len(item.attempts) + 1
        letter = "m" if item.kind == "map" else "r"
        attempt = Attempt(f"{self.job_id}-{letter}{item.index:05d}-a{number}", item.kind, item.index, agent_id,
                          now, speculative)
        self.attempts[attempt.id] = attempt
        item.attempts.append(attempt.id)
        item.state = "running"
        if speculative:
            self.counts["speculative"] += 1
        if item.kind == "map":
            return TaskPlan(attempt.id, "map", item.index, speculative, split=self.splits[item.index],
                            map_output=self.map_output_dir(attempt.id))
        inputs = tuple(m.output for m in self.maps if m.output is not None)
        return TaskPlan(attempt.id, "reduce", item.index, speculative, inputs=inputs)

    def map_output_dir(self, attempt_id: str) -> str:
        """Where a map attempt writes: its sandbox's MAP_OUTPUT, or its own shared directory."""
        if self.spec.shuffle_dir is None:
            return MAP_OUTPUT
        return f"{self.spec.shuffle_dir.rstrip('/')}/{self.job_id}/{attempt_id}"

    # ------------------------------------------------------------- status updates
    def handle_update(self, attempt_id: str, state: str, reason: str | None, exit_code: int | None,
                      message: str, now: float) -> list[Effect]:
        attempt = self.attempts.get(attempt_id)
        if attempt is None or attempt.state != "running" or state in LIVE_STATES:
            return []  # not ours, already decided, or still going
        if state == "TASK_FINISHED":
            return self.on_attempt_finished(attempt, now)
        if state in COUNTED_FAILURES and not (attempt.kind == "reduce" and exit_code == FETCH_FAILED_EXIT):
            return self.on_attempt_ended(attempt, "failed", f"{attempt_id} {state}: {message}", now)
        effects = self.on_attempt_ended(attempt, "lost", f"{attempt_id} {state}: {message}", now)
        if state in AGENT_GONE_STATES or reason in AGENT_GONE_REASONS:
            effects += self.handle_agent_lost(attempt.agent_id, now)
        elif exit_code == FETCH_FAILED_EXIT:
            effects.append(CheckOutputs(tuple(m.output for m in self.maps if m.output is not None)))
        return effects

    def on_attempt_finished(self, attempt: Attempt, now: float) -> list[Effect]:
        item = self.items(attempt.kind)[attempt.index]
        if item.state == "done":
            attempt.state = "finished"
            return []
        if attempt.kind == "reduce":
            attempt.state = "committing"
            return [CommitOutput(attempt.id, attempt.index)]
        if self.spec.shuffle_dir is not None:
            attempt.state = "finished"
            place = OutputPlace(None, None, self.map_output_dir(attempt.id))
            return self.on_item_done(item, attempt, place, now)
        attempt.state = "locating"
        return [LocateOutput(attempt.id, attempt.agent_id, self.agent_urls.get(attempt.agent_id, ""))]

    def handle_located(self, attempt_id: str, sandbox: str | None, now: float) -> list[Effect]:
        """The shell's answer to LocateOutput: the attempt's sandbox, or None (agent unreachable)."""
        attempt = self.attempts.get(attempt_id)
        if attempt is None or attempt.state != "locating":
            return []
        if sandbox is None:
            attempt.state = "running"  # so that it ends as lost, like any attempt of a vanished agent
            return self.on_attempt_ended(attempt, "lost", f"{attempt_id}: sandbox not found", now)
        item = self.maps[attempt.index]
        attempt.state = "finished"
        if item.state == "done":
            return []
        place = OutputPlace(attempt.agent_id, self.agent_urls.get(attempt.agent_id), f"{sandbox}/{MAP_OUTPUT}")
        return self.on_item_done(item, attempt, place, now)

    def handle_committed(self, attempt_id: str, problem: str | None, now: float) -> list[Effect]:
        """The shell's answer to CommitOutput: None when the file is in place, else why not (a
        failure of the attempt: its output is not where the scheduler can see it)."""
        attempt = self.attempts.get(attempt_id)
        if attempt is None or attempt.state != "committing":
            return []
        if problem is not None:
            attempt.state = "running"
            return self.on_attempt_ended(attempt, "failed", f"{attempt_id}: {problem}", now)
        attempt.state = "finished"
        item = self.reduces[attempt.index]
        return [] if item.state == "done" else self.on_item_done(item, attempt, None, now)

    def on_item_done(self, item: WorkItem, winner: Attempt, place: OutputPlace | None, now: float) -> list[Effect]:
        item.state, item.output, item.duration = "done", place, now - winner.launched_at
        if winner.speculative:
            self.counts["speculative_won"] += 1
        effects: list[Effect] = []
        for other in self.live_attempts(item):
            other.state = "killed"
            effects.append(KillTask(other.id, other.agent_id))
        if self.phase == "map" and all(m.state == "done" for m in self.maps):
            self.phase = "reduce"
        elif self.phase == "reduce" and all(r.state == "done" for r in self.reduces):
            self.phase = "done"
            effects.append(JobFinished(self.report(now)))
        return effects

    def on_attempt_ended(self, attempt: Attempt, how: str, why: str, now: float) -> list[Effect]:
        """An attempt that failed (counted against its task) or was lost (not its fault)."""
        attempt.state = how
        item = self.items(attempt.kind)[attempt.index]
        self.counts[how] += 1
        if item.state == "done" or self.finished:
            return []
        if how == "failed":
            item.failures += 1
            item.failed_agents.add(attempt.agent_id)
        else:
            item.losses += 1
        if item.failures >= self.spec.max_attempts:
            return self.fail_job(f"{item.kind} {item.index} failed {item.failures} times; the last: {why}", now,
                                 attempt)
        if item.losses > MAX_LOSSES:
            return self.fail_job(f"{item.kind} {item.index} was lost {item.losses} times; the last: {why}", now)
        if not self.live_attempts(item):
            item.state = "pending"
        return []

    def fail_job(self, reason: str, now: float, culprit: Attempt | None = None) -> list[Effect]:
        self.phase, self.failure = "failed", reason
        effects: list[Effect] = []
        for attempt in self.attempts.values():
            if attempt.live:
                attempt.state = "killed"
                effects.append(KillTask(attempt.id, attempt.agent_id))
        if culprit is None:
            return [*effects, JobFailed(reason, self.report(now))]
        return [*effects, JobFailed(reason, self.report(now), culprit.id, self.agent_urls.get(culprit.agent_id))]

    # ------------------------------------------------------------- agents
    def handle_agent_lost(self, agent_id: str, now: float) -> list[Effect]:
        """Its running attempts are lost; the finished maps whose output lay there run again
        when a reducer still needs it (the running reducers are stopped until then)."""
        self.lost_agents.add(agent_id)
        effects: list[Effect] = []
        for attempt in list(self.attempts.values()):
            if attempt.live and attempt.agent_id == agent_id:
                attempt.state = "running"
                effects += self.on_attempt_ended(attempt, "lost", f"{attempt.id}: agent {agent_id} lost", now)
        if self.finished:
            return effects
        gone = [m for m in self.maps if m.state == "done" and m.output is not None and m.output.agent_id == agent_id]
        if not gone or all(r.state == "done" for r in self.reduces):
            return effects
        for item in gone:
            item.state, item.output, item.duration = "pending", None, None
            self.counts["maps_rerun"] += 1
        self.phase = "map"
        for reducer in self.reduces:
            for attempt in self.live_attempts(reducer):
                attempt.state = "killed"
                effects.append(KillTask(attempt.id, attempt.agent_id))
            if reducer.state == "running":
                reducer.state = "pending"
        return effects

    # ------------------------------------------------------------- invariants
    def validate(self) -> None:
        """Raise AssertionError when the state breaks what the machine promises (tests call it
        after every event)."""
        per_agent: dict[str, int] = {}
        for attempt in self.attempts.values():
            if attempt.live:
                per_agent[attempt.agent_id] = per_agent.get(attempt.agent_id, 0) + 1
        assert all(n <= self.spec.tasks_per_agent for n in per_agent.values()), per_agent
        for item in [*self.maps, *self.reduces]:
            live = self.live_attempts(item)
            assert len(live) <= 2, f"{item.kind} {item.index}: {len(live)} live attempts"
            assert item.state != "done" or not live, f"{item.kind} {item.index} done with live attempts"
            assert item.state != "pending" or not live, f"{item.kind} {item.index} pending with live attempts"
            assert (item.state == "running") == bool(live) or self.finished, f"{item.kind} {item.index}"
            assert (item.kind == "reduce" or self.spec.shuffle_dir is not None
                    or (item.state == "done") == (item.output is not None)), f"map {item.index} output"
        if self.phase in ("reduce", "done"):
            assert all(m.state == "done" for m in self.maps), "reducing before every map is done"
        if self.phase != "reduce" and not self.finished:
            assert not any(self.live_attempts(r) for r in self.reduces), "reducers run outside the reduce phase"
