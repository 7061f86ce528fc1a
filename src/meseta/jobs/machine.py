"""The jobs scheduler's state and decisions (pure): jobs, their schedules, runs, and offers.

    API calls  put_job / delete_job / run_now / kill_tasks / mark_success
    driver     subscribed / offers / rescinded / update
    clock      tick(now): due runs queued (or recorded as missed), overdue runs killed,
               held offers let go; next_wakeup() says when to tick again
          --> list[Effect] (jobs.effects), executed in order by the shell

A scheduled job's ``schedule_after`` is durable: every due time at or before it has been queued
or recorded as missed. It only moves forward, whoever leads and however long nobody did, so a
schedule never stops advancing and a run due during a failover is queued after it if it is
still within the job's epsilon, otherwise recorded as missed (history, event, counter).

Offers: while runs wait, every offer is used for as many as fit (highPriority first, then by
due time); the rest is declined briefly. With nothing to run, an offer is held (up to twice
HOLD_SECONDS) when a run is due within HOLD_SECONDS or a job with children is running (its end
may make a child ready), so the run starts at once instead of at the next allocation; otherwise
it is declined and the framework suppressed; it revives REVIVE_LEAD seconds before the next due time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meseta.framework.effects import Change, Decline, Effect, Emit, Kill, Launch, Reconcile, Revive, Store, Suppress
from meseta.framework.offers import OfferPool, attribute_text
from meseta.jobs import graph
from meseta.jobs.runs import Cause, Run, RunState, task_id
from meseta.jobs.schedule import Schedule, ScheduleError, next_due, parse_schedule, remaining_text
from meseta.jobs.spec import JobRejected, JobSpec, job_json, parse_job
from meseta.jobs.task_builder import TaskDefaults, needs, task_info
from meseta.protocol.task_states import TERMINAL

ENDED = TERMINAL | {"TASK_UNKNOWN"}  # TASK_UNKNOWN: reconciliation of a task the master never had

log = logging.getLogger(__name__)

HISTORY = 50  # runs kept per job (taskStatHistory, percentiles)
HOLD_SECONDS = 2.0  # hold an offer when a run is due this soon (for twice as long at most)
REVIVE_LEAD = 1.5  # revive this long before the next due time
DECLINE_BUSY = 1.0  # refuse seconds of an offer that fits none of the runs waiting
DECLINE_IDLE = 30.0  # ... of one when nothing is due soon (a REVIVE undoes it); a held one let go: 0
MISSED_PER_TICK = 1000  # old due times handled per job and tick (the rest on the next ticks)


@dataclass(slots=True)
class Job:
    spec: JobSpec
    schedule: Schedule | None  # None: a dependent job
    schedule_after: float  # every due time <= this is handled
    next_due: float | None = None  # cached: the first due time after schedule_after
    success_count: int = 0
    error_count: int = 0
    errors_since_last_success: int = 0
    last_success: float | None = None
    last_error: float | None = None
    missed_count: int = 0
    skipped_count: int = 0
    parents_done: set[str] = field(default_factory=set)
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY))

    def schedule_text(self) -> str | None:
        if self.schedule is None:
            return None
        return remaining_text(self.schedule, self.schedule_after)

    def wire(self) -> dict[str, Any]:
        """The job as GET .../jobs shows it."""
        return job_json(self.spec, schedule=self.schedule_text(), success_count=self.success_count,
                        error_count=self.error_count, last_success=self.last_success, last_error=self.last_error,
                        errors_since_last_success=self.errors_since_last_success)

    def to_json(self) -> dict[str, Any]:
        """The stored record: the wire form, and the schedule as first given (due times are counted
        from its start: re-reading the remaining text would drift, Jan 31 + P1M + P1M = Mar 28)."""
        return {"spec": self.wire(), "schedule_origin": self.spec.schedule,
                "schedule_after": self.schedule_after, "missed_count": self.missed_count,
                "skipped_count": self.skipped_count, "parents_done": sorted(self.parents_done),
                "history": list(self.history)}


class UnknownJob(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Job '{name}' not found")
        self.name = name


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t * 1000) % 1000:03d}Z"


class JobsMachine:
    def __init__(self, *, role: str = "*", defaults: TaskDefaults | None = None,
                 epsilon: float = 60.0, on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.role = role
        self.defaults = defaults or TaskDefaults()
        self.default_epsilon = epsilon
        self.jobs: dict[str, Job] = {}
        self.runs: dict[str, Run] = {}  # task id -> a queued or active run
        self.held: dict[str, dict[str, Any]] = {}  # offer id -> an offer kept for a run due soon
        self.held_since: dict[str, float] = {}
        self.framework_id: str | None = None
        self.suppressed = False
        self.on_event = on_event
        self.children: dict[str, list[str]] = {}  # job -> the jobs naming it a parent (kept by _reindex)

    def _reindex(self) -> None:
        self.children = {}
        for name in sorted(self.jobs):
            for parent in self.jobs[name].spec.parents:
                self.children.setdefault(parent, []).append(name)

    # ------------------------------------------------------------------ durable state
    def restore(self, stored: Mapping[str, Mapping[str, Any]], now: float) -> None:
        self.framework_id = (stored.get("meta") or {}).get("framework_id")
        for name, value in (stored.get("job") or {}).items():
            try:
                spec = parse_job(value["spec"], dependent=bool(value["spec"].get("parents")), legacy=True, now=now)
                if spec.schedule is not None and value.get("schedule_origin"):
                    spec = dataclasses.replace(spec, schedule=str(value["schedule_origin"]))
                    parse_schedule(spec.schedule or "", spec.schedule_time_zone, now)
            except (JobRejected, ScheduleError) as exc:
                log.error("jobs: stored job %r no longer parses (%s); left out", name, exc)
                continue
            job = self._new_job(spec, now, float(value.get("schedule_after", now)))
            job.missed_count = int(value.get("missed_count", 0))
            job.skipped_count = int(value.get("skipped_count", 0))
            job.parents_done = set(value.get("parents_done") or ())
            job.history.extend(value.get("history") or ())
            job.success_count = int(value["spec"].get("successCount", 0))
            job.error_count = int(value["spec"].get("errorCount", 0))
            job.errors_since_last_success = int(value["spec"].get("errorsSinceLastSuccess", 0))
            job.last_success = value.get("last_success")
            job.last_error = value.get("last_error")
            self.jobs[spec.name] = job
        for key, value in (stored.get("run") or {}).items():
            run = Run.from_json(value)
            if run.job in self.jobs:
                self.runs[key] = run
        self._reindex()

    def _new_job(self, spec: JobSpec, now: float, schedule_after: float) -> Job:
        schedule = parse_schedule(spec.schedule, spec.schedule_time_zone, now) if spec.schedule else None
        job = Job(spec, schedule, schedule_after)
        job.next_due = next_due(schedule, schedule_after) if schedule else None
        return job

    def _job_change(self, job: Job) -> Change:
        value = job.to_json()
        value["last_success"], value["last_error"] = job.last_success, job.last_error
        return ("job", job.spec.name, value)

    # ------------------------------------------------------------------ API
    def put_job(self, spec: JobSpec, now: float) -> list[Effect]:
        """Create or replace a job (POST iso8601 / dependency). Raises JobRejected."""
        for parent in spec.parents:
            if parent not in self.jobs and parent != spec.name:
                raise JobRejected("parents", f"parent job '{parent}' does not exist")
        cycle = graph.cycle_through(self.children, spec.name, spec.parents)
        if cycle:
            raise JobRejected("parents", "the dependency would make a cycle: " + " -> ".join(cycle))
        old = self.jobs.get(spec.name)
        if spec.schedule:
            schedule = parse_schedule(spec.schedule, spec.schedule_time_zone, now)
            spec = dataclasses.replace(spec, schedule=remaining_text(schedule, -1.0))  # the start made explicit
        job = self._new_job(spec, now, now)
        if job.schedule is not None:
            # Due times before the job, older than its epsilon, are not its runs; one within its
            # epsilon runs now (a start a moment ago means "now"). A replaced job keeps the due
            # times its last version handled: an update never runs a due time again.
            epsilon = self.default_epsilon if spec.epsilon is None else spec.epsilon
            first = next_due(job.schedule, -1.0)
            job.schedule_after = now if first is None else max(first - 1e-3, now - epsilon)
            if old is not None:  # (what it handled is in the past: its schedule_after may lie ahead)
                job.schedule_after = max(job.schedule_after, min(old.schedule_after, now))
            job.next_due = next_due(job.schedule, job.schedule_after)
        if old is not None:  # counters and history stay with the name
            for name in ("success_count", "error_count", "errors_since_last_success", "last_success", "last_error",
                         "missed_count", "skipped_count", "history"):
                setattr(job, name, getattr(old, name))
            job.parents_done = old.parents_done & set(spec.parents)
        self.jobs[spec.name] = job
        for parent in old.spec.parents if old is not None else ():
            self.children[parent].remove(spec.name)
        for parent in spec.parents:
            self.children.setdefault(parent, []).append(spec.name)
        effects: list[Effect] = [Store((self._job_change(job),))]
        return effects + self.tick(now)

    def delete_job(self, name: str, now: float) -> list[Effect]:
        """Delete a job, kill its runs, and re-wire its children (Chronos's way): a child of a
        dependent job gets the deleted job's parents instead; a child whose only parent was a
        scheduled job takes over its schedule."""
        job = self._job(name)
        changes: list[Change] = [("job", name, None)]
        effects: list[Effect] = []
        for child_name in list(self.children.get(name, ())):
            child = self.jobs[child_name]
            others = tuple(p for p in child.spec.parents if p != name)
            if job.schedule is None:
                parents = others + tuple(p for p in job.spec.parents if p not in others and p != child_name)
                spec = dataclasses.replace(child.spec, parents=parents)
            elif others:
                spec = dataclasses.replace(child.spec, parents=others)
            else:
                spec = dataclasses.replace(child.spec, parents=(), schedule=job.spec.schedule,
                                           schedule_time_zone=job.spec.schedule_time_zone)
            rewired = self._new_job(spec, now, job.schedule_after if spec.schedule else now)
            for field_name in ("success_count", "error_count", "errors_since_last_success", "last_success",
                               "last_error", "missed_count", "skipped_count", "history"):
                setattr(rewired, field_name, getattr(child, field_name))
            rewired.parents_done = child.parents_done & set(spec.parents)
            self.jobs[child_name] = rewired
            changes.append(self._job_change(rewired))
        del self.jobs[name]
        self._reindex()
        for run in [r for r in self.runs.values() if r.job == name]:
            effects += self._drop_run(run, changes)
        return [Store(tuple(changes)), *effects]

    def run_now(self, name: str, arguments: tuple[str, ...], now: float) -> list[Effect]:
        job = self._job(name)
        if job.spec.disabled:
            raise JobRejected("disabled", f"job '{name}' is disabled and never runs")
        changes: list[Change] = []
        run = self._queue(job, now, Cause.MANUAL, now, changes, arguments)
        if run is None:
            raise JobRejected("concurrent", f"job '{name}' is not concurrent and a run of it already waits to start")
        return [Store(tuple(changes)), *self._launch_held(now), *self._offers_wanted()]

    def kill_tasks(self, name: str, now: float) -> list[Effect]:
        """Kill every run of the job: queued ones are dropped, active ones killed (not retried)."""
        self._job(name)
        changes: list[Change] = []
        effects: list[Effect] = []
        for run in [r for r in self.runs.values() if r.job == name]:
            effects += self._drop_run(run, changes)
        return [Store(tuple(changes)), *effects] if changes else effects

    def _drop_run(self, run: Run, changes: list[Change]) -> list[Effect]:
        if run.state is RunState.QUEUED:
            del self.runs[run.task_id]
            changes.append(("run", run.task_id, None))
            return []
        run.kill_asked = True
        changes.append(("run", run.task_id, run.to_json()))
        return [Kill(run.task_id, run.agent_id)]

    def mark_success(self, name: str, now: float) -> list[Effect]:
        """PUT .../job/success/<name>: count a success now and let its children run."""
        job = self._job(name)
        changes: list[Change] = []
        self._succeeded(job, now, changes)
        return [Store(tuple(changes)), *self._launch_held(now), *self._offers_wanted()]

    def _job(self, name: str) -> Job:
        job = self.jobs.get(name)
        if job is None:
            raise UnknownJob(name)
        return job

    # ------------------------------------------------------------------ queueing
    def _queue(self, job: Job, due: float, cause: Cause, now: float, changes: list[Change],
               arguments: tuple[str, ...] = (), attempt: int = 0) -> Run | None:
        """A new run of ``job`` in the queue, or None when the job is not concurrent and one already
        waits in the queue. (One that runs does not stop it: the new run waits for its end, so that
        a run still shown running after a failover, until reconciliation says it ended, costs no
        due run.)"""
        if attempt == 0 and not job.spec.concurrent and any(
                r.job == job.spec.name and r.state is RunState.QUEUED for r in self.runs.values()):
            return None
        run = Run(task_id(job.spec.name, due, attempt, arguments), job.spec.name, due, attempt, cause, now, arguments)
        if run.task_id in self.runs:  # the same due time asked twice (a manual run in the same millisecond)
            return None
        self.runs[run.task_id] = run
        changes.append(("run", run.task_id, run.to_json()))
        return run

    def _offers_wanted(self) -> list[Effect]:
        if self.suppressed and any(r.state is RunState.QUEUED for r in self.runs.values()):
            self.suppressed = False
            return [Revive()]
        return []

    def _event(self, kind: str, job: str, **details: Any) -> Emit:
        event = {"type": kind, "job": job, **details}
        if self.on_event is not None:
            self.on_event(event)
        return Emit(event)

    def tick(self, now: float) -> list[Effect]:
        """Queue what is due, record what was missed, kill what ran too long, let held offers go."""
        changes: list[Change] = []
        effects: list[Effect] = []
        for job in self.jobs.values():
            if job.schedule is None or job.next_due is None or job.next_due > now:
                continue
            effects += self._advance(job, now, changes)
        for run in self.runs.values():
            spec = self.jobs[run.job].spec
            limit = spec.max_completion_time
            if limit and run.active and not (run.kill_asked or run.timed_out) and run.launched_at is not None \
                    and now - run.launched_at > limit:
                run.timed_out = True  # ended by its time limit: a failure, retried if retries remain
                changes.append(("run", run.task_id, run.to_json()))
                effects.append(Kill(run.task_id, run.agent_id))
                effects.append(self._event("run_timed_out", run.job, task_id=run.task_id, limit=limit))
        out: list[Effect] = [Store(tuple(changes))] if changes else []
        out += effects
        out += self._launch_held(now)
        out += self._offers_wanted()
        out += self._revive_ahead(now)
        return out

    def _advance(self, job: Job, now: float, changes: list[Change]) -> list[Effect]:
        """Handle ``job``'s due times up to ``now`` (at most MISSED_PER_TICK of them)."""
        assert job.schedule is not None
        effects: list[Effect] = []
        epsilon = self.default_epsilon if job.spec.epsilon is None else job.spec.epsilon
        handled = 0
        while job.next_due is not None and job.next_due <= now and handled < MISSED_PER_TICK:
            due = job.next_due
            handled += 1
            if job.spec.disabled:
                pass  # a disabled job never runs; its schedule still advances
            elif now - due > epsilon:
                job.missed_count += 1
                job.history.appendleft(self._history_entry(job.spec.name, task_id(job.spec.name, due, 0, ()),
                                                           "", due, None, "missed"))
                effects.append(self._event("run_missed", job.spec.name, due=_iso(due),
                                           late_seconds=round(now - due, 3)))
            elif self._queue(job, due, Cause.SCHEDULE, now, changes) is None:
                job.skipped_count += 1
                effects.append(self._event("run_skipped", job.spec.name, due=_iso(due),
                                           reason="not concurrent, and a run of it already waits to start"))
            job.schedule_after = due
            job.next_due = next_due(job.schedule, due)
        changes.append(self._job_change(job))
        return effects

    def next_wakeup(self) -> float | None:
        """When a tick is next needed: a due time (and a revive ahead of it), a run's time limit,
        a held offer to let go."""
        times: list[float] = []
        soonest = self._soonest_due()
        if soonest is not None:
            times.append(soonest - REVIVE_LEAD if self.suppressed else soonest)
        for run in self.runs.values():
            limit = self.jobs[run.job].spec.max_completion_time
            if limit and run.launched_at is not None and not (run.kill_asked or run.timed_out):
                times.append(run.launched_at + limit)
        if self.held_since:
            times.append(min(self.held_since.values()) + HOLD_SECONDS * 2)
        return min(times, default=None)

    def _soonest_due(self) -> float | None:
        return min((j.next_due for j in self.jobs.values() if j.next_due is not None and not j.spec.disabled),
                   default=None)

    def _revive_ahead(self, now: float) -> list[Effect]:
        if not self.suppressed:
            return []
        soonest = self._soonest_due()
        if soonest is not None and soonest - now <= REVIVE_LEAD:
            self.suppressed = False
            return [Revive()]
        return []

    # ------------------------------------------------------------------ offers
    def subscribed(self, framework_id: str, now: float) -> list[Effect]:
        effects: list[Effect] = []
        if framework_id != self.framework_id:
            self.framework_id = framework_id
            effects.append(Store((("meta", "framework_id", framework_id),)))
        self.held.clear()
        self.held_since.clear()
        self.suppressed = False
        active = tuple((r.task_id, r.agent_id) for r in self.runs.values() if r.active)
        if active:
            effects.append(Reconcile(active))
        return [*effects, Revive()]

    def rescinded(self, offer_id: str) -> None:
        self.held.pop(offer_id, None)
        self.held_since.pop(offer_id, None)

    def offers(self, offers: Iterable[dict[str, Any]], now: float) -> list[Effect]:
        for offer in offers:
            self.held[offer["id"]["value"]] = offer
            self.held_since[offer["id"]["value"]] = now
        return self._launch_held(now) + self._offers_wanted()

    def _queued(self) -> list[Run]:
        queued = [r for r in self.runs.values() if r.state is RunState.QUEUED]
        queued.sort(key=lambda r: (not self.jobs[r.job].spec.high_priority, r.due, r.queued_at))
        return queued

    def _launch_held(self, now: float) -> list[Effect]:
        """Use every held offer for the queued runs; decline or keep what is left."""
        if not self.held:
            return []
        queued = self._queued()
        busy = {r.job for r in self.runs.values() if r.active and not self.jobs[r.job].spec.concurrent}
        wanted = self._wanted_soon(now)
        effects: list[Effect] = []
        launched: list[Launch] = []
        changes: list[Change] = []
        unfit: list[str] = []  # runs wait, but not for this offer: back in a second
        aged: list[str] = []  # held its time while runs are due soon: let go, to come back at once
        idle: list[str] = []  # nothing is due soon: not wanted for a while
        for offer_id, offer in list(self.held.items()):
            tasks = self._fill(offer, queued, busy, now, changes) if queued else []
            if tasks:
                launched.append(Launch(offer_id, tuple(tasks)))
            elif queued:
                unfit.append(offer_id)
            elif not wanted:
                idle.append(offer_id)
            elif now - self.held_since[offer_id] > HOLD_SECONDS * 2:
                aged.append(offer_id)
            else:
                continue  # kept for the run due soon
            self.rescinded(offer_id)
        if changes:
            effects.append(Store(tuple(changes)))  # before the launches: fenced with ZooKeeper
        effects += launched
        for offer_ids, refuse in ((unfit, DECLINE_BUSY), (aged, 0.0), (idle, DECLINE_IDLE)):
            if offer_ids:
                effects.append(Decline(tuple(offer_ids), refuse))
        if idle and not self.suppressed:
            self.suppressed = True
            effects.append(Suppress())
        return effects

    def _wanted_soon(self, now: float) -> bool:
        """Whether a run will likely be queued within HOLD_SECONDS: one is due, or a job with
        children runs (its end may make a child ready)."""
        soonest = self._soonest_due()
        if soonest is not None and soonest - now <= HOLD_SECONDS:
            return True
        return any(run.active and run.job in self.children for run in self.runs.values())

    def _fill(self, offer: dict[str, Any], queued: list[Run], busy: set[str], now: float,
              changes: list[Change]) -> list[dict[str, Any]]:
        """As many queued runs as fit the offer (``busy``: the jobs that are not concurrent and
        have a run going: theirs wait), each run taken out of ``queued``."""
        pool = OfferPool(offer, (self.role,))
        agent_id = offer["agent_id"]["value"]
        host = str(offer.get("hostname", ""))
        tasks: list[dict[str, Any]] = []
        for run in list(queued):
            spec = self.jobs[run.job].spec
            if run.job in busy:
                continue  # it waits for the job's run before it to end
            if not _meets(spec, offer):
                continue
            resources = pool.take(needs(spec, self.defaults))
            if resources is None:
                continue
            tasks.append(task_info(spec, run, agent_id=agent_id, host=host, resources=resources,
                                   defaults=self.defaults))
            run.state, run.agent_id, run.launched_at = RunState.LAUNCHING, agent_id, now
            changes.append(("run", run.task_id, run.to_json()))
            queued.remove(run)
            if not spec.concurrent:
                busy.add(run.job)
        return tasks

    # ------------------------------------------------------------------ status updates
    def update(self, status: Mapping[str, Any], now: float) -> list[Effect]:
        key = (status.get("task_id") or {}).get("value")
        run = self.runs.get(key) if isinstance(key, str) else None
        if run is None:
            return []
        state = str(status.get("state", ""))
        agent_id = (status.get("agent_id") or {}).get("value") or run.agent_id
        if state in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"):
            if run.state is not RunState.RUNNING or run.agent_id != agent_id:
                run.state, run.agent_id = RunState.RUNNING, agent_id
                run.started_at = run.started_at or now
                run.launched_at = run.launched_at or now
                return [Store((("run", run.task_id, run.to_json()),))]
            return []
        if state not in ENDED:
            return []
        return self._ended(run, state, status, now)

    def _ended(self, run: Run, state: str, status: Mapping[str, Any], now: float) -> list[Effect]:
        del self.runs[run.task_id]
        changes: list[Change] = [("run", run.task_id, None)]
        job = self.jobs.get(run.job)
        if job is None:
            return [Store(tuple(changes))]
        reason = str(status.get("reason", ""))
        never_started = run.state is RunState.LAUNCHING and reason == "REASON_RECONCILIATION"
        if never_started and not run.kill_asked:  # the last leader stored it, but the launch never got through
            run.state, run.agent_id, run.launched_at = RunState.QUEUED, "", None
            self.runs[run.task_id] = run
            changes[0] = ("run", run.task_id, run.to_json())
            return [Store(tuple(changes)), *self._launch_held(now), *self._offers_wanted()]
        started = run.started_at or run.launched_at or now
        name = job.spec.name
        if state == "TASK_FINISHED":
            job.history.appendleft(self._history_entry(name, run.task_id, run.agent_id, started, now, "success"))
            self._succeeded(job, now, changes)
        else:
            outcome = "killed" if run.kill_asked and state == "TASK_KILLED" else "failure"
            job.history.appendleft(self._history_entry(job.spec.name, run.task_id, run.agent_id, started, now, outcome))
            retry = not run.kill_asked and run.attempt < job.spec.retries
            if retry:
                self._queue(job, run.due, Cause.RETRY, now, changes, run.arguments, attempt=run.attempt + 1)
            elif outcome == "failure":
                job.error_count += 1
                job.errors_since_last_success += 1
                job.last_error = now
            changes.append(self._job_change(job))
        effects: list[Effect] = [Store(tuple(changes))]
        if state != "TASK_FINISHED":
            effects.append(self._event("run_failed", job.spec.name, task_id=run.task_id, state=state,
                                       message=str(status.get("message", ""))[:200], attempt=run.attempt))
        return effects + self._launch_held(now) + self._offers_wanted()

    def _succeeded(self, job: Job, now: float, changes: list[Change]) -> None:
        job.success_count += 1
        job.errors_since_last_success = 0
        job.last_success = now
        changes.append(self._job_change(job))
        for child_name in self.children.get(job.spec.name, ()):
            child = self.jobs[child_name]
            child.parents_done.add(job.spec.name)
            if graph.ready(child.spec.parents, child.parents_done) and not child.spec.disabled:
                if self._queue(child, now, Cause.DEPENDENCY, now, changes) is not None:
                    child.parents_done.clear()
                else:
                    child.skipped_count += 1
            changes.append(self._job_change(child))

    @staticmethod
    def _history_entry(job: str, task: str, agent: str, start: float, end: float | None, status: str) -> dict[str, Any]:
        return {"taskId": task, "jobName": job, "slaveId": agent, "startTime": _iso(start),
                "endTime": _iso(end) if end is not None else "",
                "duration": round(end - start, 3) if end is not None else 0.0, "status": status,
                "numElementsProcessed": 0}

    # ------------------------------------------------------------------ views
    def durations(self, name: str) -> list[float]:
        return [float(h["duration"]) for h in self._job(name).history if h["status"] == "success"]

    def state_of(self, name: str) -> str:
        runs = [r for r in self.runs.values() if r.job == name]
        if any(r.active for r in runs):
            return "running"
        return "queued" if runs else "idle"

    def last_state(self, name: str) -> str:
        job = self._job(name)
        if job.last_success is None and job.last_error is None:
            return "fresh"
        if job.last_error is not None and (job.last_success is None or job.last_error > job.last_success):
            return "failure"
        return "success"


def _meets(spec: JobSpec, offer: Mapping[str, Any]) -> bool:
    """Chronos constraints: EQUALS, LIKE (full regular-expression match), UNLIKE."""
    for attribute, operator, value in spec.constraints:
        text = attribute_text(offer, attribute)
        if operator == "EQUALS" and text != value:
            return False
        if operator == "LIKE" and (text is None or re.fullmatch(value, text) is None):
            return False
        if operator == "UNLIKE" and text is not None and re.fullmatch(value, text) is not None:
            return False
    return True
