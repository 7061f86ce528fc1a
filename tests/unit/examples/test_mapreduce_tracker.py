"""The job tracker's decisions, event by event (pure: no cluster, no clock), with its invariants
checked after every event."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from meseta.examples.mapreduce.effects import (
    CheckOutputs,
    CommitOutput,
    Decline,
    Effect,
    JobFailed,
    JobFinished,
    KillTask,
    LaunchTasks,
    LocateOutput,
    OfferView,
    OutputPlace,
    TaskPlan,
)
from meseta.examples.mapreduce.job import InputFile, JobSpec
from meseta.examples.mapreduce.tracker import FETCH_FAILED_EXIT, JobTracker

KB = 1024


def spec(**fields: Any) -> JobSpec:
    base: dict[str, Any] = {"inputs": (InputFile("/in/a", 3 * KB), InputFile("/in/b", KB)), "output": "/out",
                            "reducers": 2, "split_bytes": KB, "cpus": 1.0, "mem": 100.0, "tasks_per_agent": 2,
                            "speculative_min_seconds": 10.0, "speculative_factor": 2.0}
    return JobSpec(**{**base, **fields})


def offer(agent: str, cpus: float = 8, mem: float = 800, number: int = 0) -> OfferView:
    return OfferView(f"o-{agent}-{number}", agent, f"http://{agent}:5051", cpus, mem)


def launched(effects: list[Effect]) -> list[TaskPlan]:
    return [plan for e in effects if isinstance(e, LaunchTasks) for plan in e.tasks]


class Run:
    """A tracker and the events fed to it; validate() after each."""

    def __init__(self, **fields: Any) -> None:
        self.tracker = JobTracker(spec(**fields), "job", now=0.0)

    def offers(self, *offers: OfferView, now: float = 0.0) -> list[Effect]:
        return self.checked(self.tracker.handle_offers(offers, now))

    def update(self, attempt: str, state: str, now: float = 1.0, reason: str | None = None,
               exit_code: int | None = None) -> list[Effect]:
        return self.checked(self.tracker.handle_update(attempt, state, reason, exit_code, "", now))

    def located(self, attempt: str, sandbox: str | None = "/sb", now: float = 1.0) -> list[Effect]:
        return self.checked(self.tracker.handle_located(attempt, sandbox, now))

    def committed(self, attempt: str, problem: str | None = None, now: float = 1.0) -> list[Effect]:
        return self.checked(self.tracker.handle_committed(attempt, problem, now))

    def agent_lost(self, agent: str, now: float = 1.0) -> list[Effect]:
        return self.checked(self.tracker.handle_agent_lost(agent, now))

    def finish_map(self, attempt: str, now: float = 1.0) -> list[Effect]:
        effects = self.update(attempt, "TASK_FINISHED", now)
        assert any(isinstance(e, LocateOutput) and e.attempt_id == attempt for e in effects)
        return self.located(attempt, f"/sb/{attempt}", now)

    def checked(self, effects: list[Effect]) -> list[Effect]:
        self.tracker.validate()
        return effects

    def run_maps(self) -> None:
        """Every map launched on agents a and b and finished."""
        while self.tracker.phase == "map":
            for plan in launched(self.offers(offer("a"), offer("b"))):
                self.finish_map(plan.attempt_id)


def test_splits_by_size_and_placement_by_slots_cpus_and_mem() -> None:
    run = Run()
    assert [(s.path, s.offset, s.length) for s in run.tracker.splits] == [
        ("/in/a", 0, KB), ("/in/a", KB, KB), ("/in/a", 2 * KB, KB), ("/in/b", 0, KB)]
    plans = launched(run.offers(offer("a")))
    assert [(p.kind, p.index, p.attempt_id) for p in plans] == [("map", 0, "job-m00000-a1"),
                                                                 ("map", 1, "job-m00001-a1")]
    assert launched(run.offers(offer("a", number=1))) == []  # the agent's two slots are taken
    assert launched(run.offers(offer("b", cpus=1.5))) == [  # room for one
        TaskPlan("job-m00002-a1", "map", 2, False, split=run.tracker.splits[2], map_output="map-out")]
    effects = run.offers(offer("c", mem=99))
    assert effects == [Decline(("o-c-0",))]


def test_a_job_runs_maps_then_reducers_over_every_map_output_then_commits() -> None:
    run = Run()
    first = launched(run.offers(offer("a"), offer("b")))
    assert len(first) == 4 and run.tracker.phase == "map"
    assert launched(run.offers(offer("c"))) == []  # no reducer before every map is done
    for plan in first:
        run.finish_map(plan.attempt_id)
    assert run.tracker.phase == "reduce"
    reducers = launched(run.offers(offer("c")))
    assert [p.index for p in reducers] == [0, 1]
    agents = ["a", "a", "b", "b"]
    assert reducers[0].inputs == tuple(OutputPlace(agent, f"http://{agent}:5051", f"/sb/{plan.attempt_id}/map-out")
                                       for agent, plan in zip(agents, first, strict=True))
    assert run.update(reducers[0].attempt_id, "TASK_FINISHED", now=5) == [CommitOutput(reducers[0].attempt_id, 0)]
    assert run.committed(reducers[0].attempt_id, now=5) == []
    assert run.update(reducers[1].attempt_id, "TASK_FINISHED", now=7) == [CommitOutput(reducers[1].attempt_id, 1)]
    effects = run.committed(reducers[1].attempt_id, now=7)
    assert isinstance(effects[0], JobFinished) and effects[0].report.attempts == 6
    assert effects[0].report.seconds == 7 and run.tracker.phase == "done"
    assert run.offers(offer("a", number=9)) == [Decline(("o-a-9",))]


def test_a_failed_attempt_is_retried_on_another_agent_until_max_attempts() -> None:
    run = Run(max_attempts=2, inputs=(InputFile("/in/a", KB),))
    assert run.offers(offer("b", cpus=0)) == [Decline(("o-b-0",))]  # b is known: somewhere else to go
    (plan,) = launched(run.offers(offer("a", number=1)))
    assert run.update(plan.attempt_id, "TASK_FAILED") == []
    assert launched(run.offers(offer("a", number=3))) == []  # not where it failed
    (retry,) = launched(run.offers(offer("b", number=4)))
    assert retry.attempt_id == "job-m00000-a2"
    effects = run.update(retry.attempt_id, "TASK_ERROR")
    assert isinstance(effects[-1], JobFailed) and "map 0 failed 2 times" in effects[-1].reason


def test_a_task_that_failed_everywhere_may_go_back_to_an_agent_it_failed_on() -> None:
    run = Run(inputs=(InputFile("/in/a", KB),))
    (plan,) = launched(run.offers(offer("a")))
    run.update(plan.attempt_id, "TASK_FAILED")
    assert len(launched(run.offers(offer("a", number=1)))) == 1  # a is the only agent the job knows


def test_lost_attempts_are_retried_without_counting_as_failures() -> None:
    run = Run(max_attempts=1, inputs=(InputFile("/in/a", KB),))
    for number, state in enumerate(["TASK_LOST", "TASK_DROPPED", "TASK_KILLED", "TASK_UNKNOWN"]):
        (plan,) = launched(run.offers(offer("a", number=number)))
        run.update(plan.attempt_id, state)
    assert run.tracker.maps[0].failures == 0 and run.tracker.counts["lost"] == 4 and not run.tracker.finished


def test_an_agent_lost_in_the_reduce_phase_reruns_its_maps_and_stops_the_reducers() -> None:
    run = Run()
    run.run_maps()
    on_a = [m.index for m in run.tracker.maps if m.output is not None and m.output.agent_id == "a"]
    reducers = launched(run.offers(offer("c")))
    effects = run.agent_lost("a")
    assert set(effects) == {KillTask(p.attempt_id, "c") for p in reducers}
    assert run.tracker.phase == "map" and run.tracker.counts["maps_rerun"] == len(on_a) > 0
    assert [m.index for m in run.tracker.maps if m.state == "pending"] == on_a
    assert run.update(reducers[0].attempt_id, "TASK_KILLED") == []  # the kill it asked for
    assert run.tracker.reduces[0].failures == 0 and run.tracker.reduces[0].losses == 0
    reruns = launched(run.offers(offer("b", number=5)))
    assert [p.index for p in reruns] == on_a
    for plan in reruns:
        run.finish_map(plan.attempt_id)
    assert [p.index for p in launched(run.offers(offer("c", number=6)))] == [0, 1]


def test_an_agent_lost_once_every_reducer_is_done_costs_nothing() -> None:
    run = Run(reducers=1)
    run.run_maps()
    (reducer,) = launched(run.offers(offer("c")))
    run.update(reducer.attempt_id, "TASK_FINISHED")
    assert isinstance(run.committed(reducer.attempt_id)[-1], JobFinished)
    assert run.agent_lost("a") == [] and run.tracker.counts["maps_rerun"] == 0


def test_task_lost_with_its_agent_disconnected_counts_as_the_agent_lost() -> None:
    run = Run()
    plans = launched(run.offers(offer("a")))
    run.finish_map(plans[0].attempt_id)
    effects = run.update(plans[1].attempt_id, "TASK_LOST", reason="REASON_AGENT_DISCONNECTED")
    assert effects == [] and "a" in run.tracker.lost_agents
    assert run.tracker.maps[0].state == "pending" and run.tracker.maps[0].output is None
    assert run.tracker.counts["maps_rerun"] == 1
    assert launched(run.offers(offer("a", number=2)))  # an agent that offers again is welcome again


def test_a_map_whose_sandbox_cannot_be_found_runs_again() -> None:
    run = Run()
    (plan, _) = launched(run.offers(offer("a")))
    run.update(plan.attempt_id, "TASK_FINISHED")
    assert run.located(plan.attempt_id, None) == []
    assert run.tracker.maps[0].state == "pending" and run.tracker.counts["lost"] == 1


def test_a_reducer_that_cannot_fetch_has_the_outputs_checked_and_is_not_blamed() -> None:
    run = Run(max_attempts=1)
    run.run_maps()
    reducers = launched(run.offers(offer("c")))
    effects = run.update(reducers[0].attempt_id, "TASK_FAILED", exit_code=FETCH_FAILED_EXIT)
    (check,) = effects
    assert isinstance(check, CheckOutputs) and len(check.places) == 4
    assert run.tracker.reduces[0].failures == 0 and not run.tracker.finished
    effects = run.update(reducers[1].attempt_id, "TASK_FAILED", exit_code=1)
    assert isinstance(effects[-1], JobFailed)  # any other exit status is the reducer's own failure


def test_a_reducer_whose_output_cannot_be_committed_has_failed() -> None:
    run = Run(reducers=1, max_attempts=2)
    run.run_maps()
    (reducer,) = launched(run.offers(offer("c")))
    run.update(reducer.attempt_id, "TASK_FINISHED")
    assert run.committed(reducer.attempt_id, "no such file") == []
    assert run.tracker.reduces[0].state == "pending" and run.tracker.reduces[0].failures == 1
    (again,) = launched(run.offers(offer("a", number=7)))
    run.update(again.attempt_id, "TASK_FINISHED")
    (failed,) = run.committed(again.attempt_id, "no such file")
    assert isinstance(failed, JobFailed) and "no such file" in failed.reason


def test_a_straggler_gets_one_speculative_copy_elsewhere_and_the_first_to_finish_wins() -> None:
    run = Run(tasks_per_agent=4)
    plans = launched(run.offers(offer("a")))
    for plan in plans[1:]:
        run.finish_map(plan.attempt_id, now=2.0)  # median 2 s: a straggler after max(10, 2 x 2) s
    straggler = plans[0].attempt_id
    assert launched(run.offers(offer("b"), now=9.0)) == []
    assert launched(run.offers(offer("a", number=1), now=11.0)) == []  # never on the straggler's agent
    (copy,) = launched(run.offers(offer("b", number=1), now=11.0))
    assert copy == TaskPlan("job-m00000-a2", "map", 0, True, split=run.tracker.splits[0], map_output="map-out")
    assert launched(run.offers(offer("c"), now=30.0)) == []  # one copy at most
    effects = run.finish_map(copy.attempt_id, now=12.0)
    assert KillTask(straggler, "a") in effects and run.tracker.phase == "reduce"
    assert run.update(straggler, "TASK_FINISHED") == []  # the loser's late finish changes nothing
    assert run.tracker.counts["speculative"] == run.tracker.counts["speculative_won"] == 1


def test_when_the_original_wins_the_copy_is_killed() -> None:
    run = Run(tasks_per_agent=4)
    plans = launched(run.offers(offer("a")))
    for plan in plans[1:]:
        run.finish_map(plan.attempt_id, now=1.0)
    (copy,) = launched(run.offers(offer("b"), now=20.0))
    effects = run.finish_map(plans[0].attempt_id, now=21.0)
    assert KillTask(copy.attempt_id, "b") in effects and run.tracker.counts["speculative_won"] == 0


def test_no_speculation_when_it_is_off() -> None:
    run = Run(tasks_per_agent=4, speculation=False)
    plans = launched(run.offers(offer("a")))
    for plan in plans[1:]:
        run.finish_map(plan.attempt_id, now=1.0)
    assert launched(run.offers(offer("b"), now=1000.0)) == []


def test_with_a_shuffle_directory_maps_are_done_at_once_and_survive_their_agent() -> None:
    run = Run(shuffle_dir="/shared")
    plans = launched(run.offers(offer("a"), offer("b")))
    assert plans[0].map_output == "/shared/job/job-m00000-a1"
    for plan in plans:
        assert run.update(plan.attempt_id, "TASK_FINISHED") == []
    reducers = launched(run.offers(offer("c")))
    assert reducers[0].inputs[0] == OutputPlace(None, None, "/shared/job/job-m00000-a1")
    assert run.agent_lost("a") == [] and run.tracker.phase == "reduce"


def test_updates_for_unknown_or_decided_attempts_change_nothing() -> None:
    run = Run()
    (plan, _) = launched(run.offers(offer("a")))
    assert run.update("someone-elses-task", "TASK_FAILED") == []
    assert run.update(plan.attempt_id, "TASK_RUNNING") == []
    run.update(plan.attempt_id, "TASK_FAILED")
    assert run.update(plan.attempt_id, "TASK_FAILED") == [] and run.tracker.maps[0].failures == 1


# ------------------------------------------------------------- random event sequences
MOVES = ["offer"] * 4 + ["finish"] * 4 + ["fail", "lose", "fetch-failed", "agent-lost", "not-located", "wait",
                                          "committing"]


def simulate(run: Run, rng: random.Random, steps: int) -> None:
    """A cluster of agents a, b, c doing random things to the job, mostly offering and finishing."""
    now = 0.0
    for number in range(steps):
        now += rng.choice([0.1, 1.0, 5.0])
        live = [a for a in run.tracker.attempts.values() if a.live]
        move = rng.choice(MOVES)
        if move == "offer":
            agent = rng.choice("abc")
            cpus, mem = rng.uniform(0, 4), rng.uniform(0, 400)
            run.offers(OfferView(f"o{number}", agent, f"http://{agent}", cpus, mem), now=now)
        elif move == "wait":
            now += 30.0  # stragglers appear
        elif move == "agent-lost":
            run.agent_lost(rng.choice("abc"), now)
        elif live:
            attempt = rng.choice(live)
            if move == "finish":
                run.update(attempt.id, "TASK_FINISHED", now)
                run.located(attempt.id, f"/sb/{attempt.id}", now)
                run.committed(attempt.id, rng.choice([None, None, None, "disk full"]), now)
            elif move == "fail":
                run.update(attempt.id, rng.choice(["TASK_FAILED", "TASK_ERROR"]), now)
            elif move == "lose":
                run.update(attempt.id, rng.choice(["TASK_LOST", "TASK_KILLED", "TASK_GONE", "TASK_DROPPED"]), now)
            elif move == "fetch-failed":
                run.update(attempt.id, "TASK_FAILED", now, exit_code=FETCH_FAILED_EXIT)
            elif move == "committing":  # finished, the commit's answer still to come
                run.update(attempt.id, "TASK_FINISHED", now)
            elif move == "not-located":
                run.update(attempt.id, "TASK_FINISHED", now)
                run.located(attempt.id, None, now)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32), st.booleans(), st.integers(1, 4))
def test_random_clusters_keep_the_invariants(seed: int, shared: bool, tasks_per_agent: int) -> None:
    run = Run(shuffle_dir="/shared" if shared else None, max_attempts=4, speculative_min_seconds=1.0,
              tasks_per_agent=tasks_per_agent)
    simulate(run, random.Random(seed), 200)
    report = run.tracker.report(1000.0)
    event(f"ended in phase {run.tracker.phase}")  # --hypothesis-show-statistics: how far the runs get
    event(f"a speculative copy won: {report.speculative_won > 0}")
    event(f"maps re-run: {report.maps_rerun > 0}")
    assert report.attempts == len(run.tracker.attempts) >= report.speculative >= report.speculative_won


def test_empty_inputs_go_straight_to_the_reducers_with_nothing_to_fetch() -> None:
    run = Run(inputs=(InputFile("/in/empty", 0),))
    assert run.tracker.maps == [] and run.tracker.phase == "reduce"
    assert [(p.kind, p.inputs) for p in launched(run.offers(offer("a")))] == [("reduce", ()), ("reduce", ())]
