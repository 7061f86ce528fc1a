"""The jobs machine: event sequences in, effects out (no clock, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from meseta.framework.effects import Decline, Effect, Emit, Kill, Launch, Reconcile, Revive, Store, Suppress
from meseta.jobs.machine import HOLD_SECONDS, JobsMachine
from meseta.jobs.spec import JobRejected, parse_job

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
START = "2027-01-15T08:00:00.000Z"


def job(name: str, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "command": "true", "owner": "", "disabled": False}
    if "parents" not in fields:
        out["schedule"] = f"R/{START}/PT60S"
    out.update(fields)
    return out


def offer(n: int = 1, cpus: float = 4.0, mem: float = 4096.0, hostname: str = "h1",
          attributes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"id": {"value": f"o{n}"}, "agent_id": {"value": f"a{n}"}, "hostname": hostname,
            "attributes": attributes or [],
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
                          {"name": "disk", "type": "SCALAR", "scalar": {"value": 10_000.0}}]}


def status(task_id: str, state: str, **extra: Any) -> dict[str, Any]:
    return {"task_id": {"value": task_id}, "state": state, "agent_id": {"value": "a1"}, **extra}


class World:
    """A machine, and the store its Store effects wrote (for restarts)."""

    def __init__(self) -> None:
        self.machine = JobsMachine()
        self.stored: dict[str, dict[str, Any]] = {"job": {}, "run": {}, "meta": {}}
        self.offers = 0

    def apply(self, effects: list[Effect]) -> list[Effect]:
        for effect in effects:
            if isinstance(effect, Store):
                for kind, key, value in effect.changes:
                    if value is None:
                        self.stored[kind].pop(key, None)
                    else:
                        self.stored[kind][key] = value
        return effects

    def put(self, body: dict[str, Any], now: float = T0 - 30) -> list[Effect]:
        spec = parse_job(body, dependent="parents" in body, legacy=False, now=now)
        return self.apply(self.machine.put_job(spec, now))

    def tick(self, now: float) -> list[Effect]:
        return self.apply(self.machine.tick(now))

    def offer(self, now: float, **kw: Any) -> list[Effect]:
        self.offers += 1
        return self.apply(self.machine.offers([offer(self.offers, **kw)], now))

    def update(self, task_id: str, state: str, now: float, **extra: Any) -> list[Effect]:
        return self.apply(self.machine.update(status(task_id, state, **extra), now))

    def launched(self, effects: list[Effect]) -> list[str]:
        return [t["task_id"]["value"] for e in effects if isinstance(e, Launch) for t in e.tasks]

    def run_to_end(self, task_id: str, now: float, state: str = "TASK_FINISHED") -> list[Effect]:
        self.update(task_id, "TASK_RUNNING", now)
        return self.update(task_id, state, now + 1)

    def restarted(self, now: float) -> World:
        other = World()
        other.stored = self.stored
        other.machine.restore(self.stored, now)
        return other


def test_a_scheduled_job_runs_at_its_due_time_and_counts_a_success() -> None:
    w = World()
    w.put(job("nightly"))
    assert w.machine.jobs["nightly"].next_due == T0
    assert w.tick(T0 - 1) == [] or not any(isinstance(e, Launch) for e in w.tick(T0 - 1))
    w.tick(T0)
    (task,) = w.launched(w.offer(T0 + 0.01))
    assert task == f"ct:{int(T0 * 1000)}:0:nightly:"
    w.run_to_end(task, T0 + 1)
    nightly = w.machine.jobs["nightly"]
    assert nightly.success_count == 1 and nightly.last_success == T0 + 2 and nightly.next_due == T0 + 60
    assert nightly.history[0]["status"] == "success" and nightly.history[0]["duration"] == 1.0
    assert w.machine.runs == {}


def test_a_held_offer_starts_a_run_on_time() -> None:
    w = World()
    w.put(job("soon"))
    effects = w.offer(T0 - HOLD_SECONDS / 2)
    assert not any(isinstance(e, (Decline, Launch)) for e in effects), "held for the run due in a second"
    assert w.launched(w.tick(T0)) == [f"ct:{int(T0 * 1000)}:0:soon:"]


def test_with_nothing_due_soon_offers_are_declined_and_the_framework_suppressed_then_revived_ahead() -> None:
    w = World()
    w.put(job("later", schedule=f"R/{START}/PT1H"))
    effects = w.offer(T0 - 600)
    assert any(isinstance(e, Decline) for e in effects) and any(isinstance(e, Suppress) for e in effects)
    wakeup = w.machine.next_wakeup()
    assert wakeup is not None and wakeup < T0
    assert any(isinstance(e, Revive) for e in w.tick(wakeup))


def test_a_failing_job_is_retried_retries_times_then_counts_one_error() -> None:
    w = World()
    w.put(job("flaky", retries=2))
    w.tick(T0)
    attempts = []
    for n in range(3):
        (task,) = w.launched(w.offer(T0 + n * 10))
        attempts.append(task)
        effects = w.run_to_end(task, T0 + n * 10, "TASK_FAILED")
    assert [t.split(":")[2] for t in attempts] == ["0", "1", "2"]
    flaky = w.machine.jobs["flaky"]
    assert flaky.error_count == 1 and flaky.errors_since_last_success == 1 and w.machine.runs == {}
    assert any(isinstance(e, Emit) and e.event["type"] == "run_failed" for e in effects)
    assert [h["status"] for h in flaky.history][:3] == ["failure"] * 3


def test_a_child_runs_once_every_parent_has_succeeded_since_its_last_run() -> None:
    w = World()
    w.put(job("a"))
    w.put(job("b"))
    w.put(job("c", parents=["a", "b"]))
    w.tick(T0)
    a, b = w.launched(w.offer(T0))
    w.run_to_end(a, T0)
    assert not any(r.job == "c" for r in w.machine.runs.values()), "b has not run yet"
    w.run_to_end(b, T0 + 1)
    (child,) = w.launched(w.offer(T0 + 3))
    assert ":c:" in child and w.machine.runs[child].cause.value == "dependency"


def test_parents_must_exist_and_cycles_are_refused_without_changing_anything() -> None:
    w = World()
    w.put(job("a"))
    w.put(job("b", parents=["a"]))
    with pytest.raises(JobRejected, match="parents"):
        w.put(job("c", parents=["nope"]))
    with pytest.raises(JobRejected, match="cycle"):
        w.put(job("a", parents=["b"]))
    assert set(w.machine.jobs) == {"a", "b"} and w.machine.jobs["a"].schedule is not None


def test_deleting_a_parent_rewires_its_children() -> None:
    w = World()
    w.put(job("root"))
    w.put(job("mid", parents=["root"]))
    w.put(job("leaf", parents=["mid"]))
    w.apply(w.machine.delete_job("mid", T0))
    assert w.machine.jobs["leaf"].spec.parents == ("root",)
    w.apply(w.machine.delete_job("root", T0))
    leaf = w.machine.jobs["leaf"]
    assert leaf.spec.parents == () and leaf.schedule is not None and leaf.next_due is not None
    assert set(w.stored["job"]) == {"leaf"}


def test_a_disabled_job_never_runs_yet_its_schedule_advances() -> None:
    w = World()
    w.put(job("off", disabled=True))
    w.tick(T0 + 600)
    assert w.machine.runs == {} and w.machine.jobs["off"].schedule_after >= T0 + 540
    with pytest.raises(JobRejected, match="disabled"):
        w.machine.run_now("off", (), T0)


def test_a_run_due_while_nobody_led_starts_within_epsilon_else_it_is_recorded_missed() -> None:
    w = World()
    w.put(job("every-minute", epsilon="PT30S"))
    w.tick(T0 - 1)
    restarted = w.restarted(T0 + 200)  # down from T0 - 1 to T0 + 200: due T0, +60, +120, +180
    effects = restarted.tick(T0 + 200)
    missed = [e.event for e in effects if isinstance(e, Emit) and e.event["type"] == "run_missed"]
    assert len(missed) == 3, "T0, T0+60 and T0+120 are more than 30 s late"
    assert [r.due for r in restarted.machine.runs.values()] == [T0 + 180], "T0+180 is 20 s late: it runs"
    assert restarted.machine.jobs["every-minute"].missed_count == 3


def test_a_not_concurrent_job_waits_for_its_last_run_and_skips_a_third() -> None:
    w = World()
    w.put(job("slow"))
    w.tick(T0)
    (first,) = w.launched(w.offer(T0))
    w.update(first, "TASK_RUNNING", T0 + 1)
    w.tick(T0 + 60)
    assert w.launched(w.offer(T0 + 60)) == [], "the next run waits for the first to end"
    effects = w.tick(T0 + 120)
    assert [e.event["type"] for e in effects if isinstance(e, Emit)] == ["run_skipped"], "one waits, no more"
    w.update(first, "TASK_FINISHED", T0 + 121)
    (second,) = w.launched(w.offer(T0 + 122))
    assert second == f"ct:{int((T0 + 60) * 1000)}:0:slow:"
    assert w.machine.jobs["slow"].skipped_count == 1


def test_kill_drops_queued_runs_and_kills_active_ones_without_retrying() -> None:
    w = World()
    w.put(job("k", retries=5, concurrent=True))
    w.tick(T0)
    (task,) = w.launched(w.offer(T0))
    w.update(task, "TASK_RUNNING", T0 + 1)
    w.apply(w.machine.run_now("k", ("x",), T0 + 2))
    effects = w.apply(w.machine.kill_tasks("k", T0 + 3))
    assert [e for e in effects if isinstance(e, Kill)] == [Kill(task, "a1")]
    assert list(w.machine.runs) == [task]
    w.update(task, "TASK_KILLED", T0 + 4)
    assert w.machine.runs == {} and w.machine.jobs["k"].error_count == 0
    assert w.machine.jobs["k"].history[0]["status"] == "killed"


def test_a_run_past_max_completion_time_is_killed_and_counts_as_a_failure() -> None:
    w = World()
    w.put(job("bounded", maxCompletionTime=10, retries=0))
    w.tick(T0)
    (task,) = w.launched(w.offer(T0))
    w.update(task, "TASK_RUNNING", T0 + 1)
    wakeup = w.machine.next_wakeup()
    assert wakeup is not None and wakeup <= T0 + 10
    assert Kill(task, "a1") in w.tick(T0 + 11)
    w.update(task, "TASK_KILLED", T0 + 12)
    assert w.machine.jobs["bounded"].error_count == 1


def test_after_a_restart_active_runs_are_reconciled_and_one_never_launched_is_queued_again() -> None:
    w = World()
    w.put(job("r"))
    w.tick(T0)
    (task,) = w.launched(w.offer(T0))
    restarted = w.restarted(T0 + 5)
    effects = restarted.apply(restarted.machine.subscribed("fw-1", T0 + 5))
    assert Reconcile(((task, "a1"),)) in effects and any(isinstance(e, Revive) for e in effects)
    restarted.update(task, "TASK_LOST", T0 + 6, reason="REASON_RECONCILIATION")
    assert restarted.launched(restarted.offer(T0 + 7)) == [task], "the same run, not a second one"
    assert restarted.machine.jobs["r"].error_count == 0


def test_r0_in_the_past_is_accepted_and_never_runs() -> None:
    w = World()
    w.put(job("done", schedule="R0/2014-01-01T00:00:00Z/PT60M"))
    w.tick(T0 + 3600)
    assert w.machine.runs == {} and w.machine.jobs["done"].next_due is None


def test_constraints_choose_the_agent() -> None:
    w = World()
    w.put(job("picky", constraints=[["rack", "EQUALS", "r2"]]))
    w.tick(T0)
    r1 = [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}]
    r2 = [{"name": "rack", "type": "TEXT", "text": {"value": "r2"}}]
    assert w.launched(w.offer(T0, attributes=r1)) == []
    assert len(w.launched(w.offer(T0, attributes=r2))) == 1


def test_a_restart_keeps_counting_due_times_from_the_first_start() -> None:
    """Jan 31 + P1M: Feb 28, then Mar 31 (not Mar 28, as re-reading 'R/Feb 28/P1M' would give)."""
    w = World()
    jan31 = 1_801_353_600.0  # 2027-01-31T00:00:00Z
    w.put(job("monthly", schedule="R/2027-01-31T00:00:00Z/P1M"), now=jan31 - 60)
    w.tick(jan31)
    w.tick(jan31 + 28 * 86400)  # Feb 28
    restarted = w.restarted(jan31 + 29 * 86400)
    assert restarted.machine.jobs["monthly"].next_due == 1_806_451_200.0  # 2027-03-31T00:00:00Z
    assert w.machine.jobs["monthly"].wire()["schedule"].startswith("R/2027-03-31")


def test_an_offer_is_held_while_a_parent_runs_and_its_child_starts_on_it() -> None:
    w = World()
    w.put(job("parent", schedule=f"R1/{START}/PT1H"))
    w.put(job("child", parents=["parent"]))
    w.tick(T0)
    (parent,) = w.launched(w.offer(T0))
    w.update(parent, "TASK_RUNNING", T0 + 1)
    held = w.offer(T0 + 2)
    assert not any(isinstance(e, (Decline, Launch)) for e in held), "held: the child may be ready soon"
    effects = w.update(parent, "TASK_FINISHED", T0 + 3)
    (child,) = w.launched(effects)
    assert ":child:" in child


def test_a_job_replaced_keeps_what_ran_and_takes_its_new_start() -> None:
    w = World()
    w.put(job("moved", schedule="R/2027-01-15T09:00:00Z/PT1H"), now=T0 - 30)
    w.put(job("moved", schedule=f"R1/{START}/PT1H"), now=T0 - 20)
    assert w.machine.jobs["moved"].next_due == T0, "moved earlier: it runs at its new start"
    w.tick(T0)
    (task,) = w.launched(w.offer(T0))
    w.run_to_end(task, T0)
    w.put(job("moved", schedule=f"R1/{START}/PT1H", command="echo changed"), now=T0 + 5)
    assert w.machine.jobs["moved"].next_due is None and w.machine.runs == {}, "an update does not run it again"


def test_a_start_a_moment_ago_runs_now_and_one_long_past_does_not() -> None:
    w = World()
    w.put(job("just", schedule=f"R1/{START}/PT1H"), now=T0 + 10)
    assert [r.due for r in w.machine.runs.values()] == [T0], "10 s late is within the 60 s epsilon: queued"
    w.put(job("old", schedule=f"R1/{START}/PT1H"), now=T0 + 600)
    assert [r.job for r in w.machine.runs.values()] == ["just"] and w.machine.jobs["old"].missed_count == 0


def test_an_offer_held_its_time_is_let_go_to_come_back_at_once() -> None:
    """While a parent runs its child may be ready any moment, so offers stay wanted: one held past
    twice HOLD_SECONDS is declined for 0 s (another framework may take it; else it is offered
    again at once), not for the second a declined offer that fits no waiting run gets."""
    w = World()
    w.put(job("parent", schedule=f"R1/{START}/PT1H"))
    w.put(job("child", parents=["parent"]))
    w.tick(T0)
    (parent,) = w.launched(w.offer(T0))
    w.update(parent, "TASK_RUNNING", T0 + 1)
    w.offer(T0 + 2)
    assert Decline(("o2",), 0.0) in w.tick(T0 + 2 + HOLD_SECONDS * 2 + 0.1)
