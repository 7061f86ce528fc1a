"""The batch planner: which pending tasks go on which offer, retries, and the run's exit code."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from meseta.batch.job import check_job, merge
from meseta.batch.plan import BatchBook, Phase, waiting_report
from meseta.batch.tasks import exit_code_of, task_id_of

RUN = "submit-test"


def job(**members: Any) -> Any:
    return check_job(*merge({"command": "true", **members}, {}))


def offer(offer_id: str, agent: str, cpus: float = 4, mem: float = 1024, disk: float = 0,
          host: str | None = None, **attributes: str) -> dict[str, Any]:
    resources = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "allocation_info": {"role": "*"}},
                 {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}]
    if disk:
        resources.append({"name": "disk", "type": "SCALAR", "scalar": {"value": disk}})
    return {"id": {"value": offer_id}, "agent_id": {"value": agent}, "hostname": host or agent,
            "resources": resources,
            "attributes": [{"name": k, "type": "TEXT", "text": {"value": v}} for k, v in attributes.items()]}


def launch_all(book: BatchBook, offers: list[dict[str, Any]]) -> dict[str, list[int]]:
    plan = book.plan(offers)
    for launch in sorted((la for ls in plan.launches.values() for la in ls), key=lambda la: la.index):
        book.launched(launch)
    return {offer_id: [la.index for la in launches] for offer_id, launches in plan.launches.items()}


def update(index: int, attempt: int, state: str, message: str = "") -> dict[str, Any]:
    return {"task_id": {"value": task_id_of(RUN, index, attempt)}, "state": state, "message": message}


def test_as_many_tasks_as_fit_go_on_each_offer_in_index_order() -> None:
    book = BatchBook(job(count=10, cpus=1, mem=32), RUN)
    plan = book.plan([offer("o1", "a1", cpus=4), offer("o2", "a2", cpus=2.5)])
    assert {o: [la.index for la in ls] for o, ls in plan.launches.items()} == {"o1": [0, 1, 2, 3], "o2": [4, 5]}
    assert plan.unused == []
    first = plan.launches["o1"][0]
    assert first.resources[0] == {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0},
                                  "allocation_info": {"role": "*"}}  # the offer's item, quantity replaced


def test_thousandths_add_up_exactly() -> None:
    book = BatchBook(job(count=20, cpus=0.1, mem=1), RUN)
    assert len(book.plan([offer("o1", "a1", cpus=1)]).launches["o1"]) == 10


def test_a_task_no_offer_fits_leaves_the_offers_unused_and_says_why() -> None:
    book = BatchBook(job(cpus=8), RUN)
    plan = book.plan([offer("o1", "a1", cpus=4)])
    assert plan.launches == {} and plan.unused == ["o1"]
    assert plan.reasons == {"a1": "cpus: 8 needed, 4 offered"}
    assert "a1: cpus: 8 needed, 4 offered" in waiting_report(1, 12, plan.reasons, offers_seen=1)
    assert "no offer came" in waiting_report(1, 12, {}, offers_seen=0)


def test_max_parallel_caps_what_runs_at_once() -> None:
    book = BatchBook(job(count=5, max_parallel=2), RUN)
    assert launch_all(book, [offer("o1", "a1", cpus=8)]) == {"o1": [0, 1]}
    plan = book.plan([offer("o2", "a1", cpus=6)])
    assert plan.launches == {} and "--max-parallel 2" in plan.reasons["a1"]
    assert book.handle_update(update(0, 0, "TASK_FINISHED")).kind == "done"
    assert launch_all(book, [offer("o3", "a1", cpus=6)]) == {"o3": [2]}


def test_unique_hostname_puts_one_running_task_per_agent() -> None:
    book = BatchBook(job(count=3, constraints=["hostname:UNIQUE"]), RUN)
    assert launch_all(book, [offer("o1", "a1"), offer("o2", "a2")]) == {"o1": [0], "o2": [1]}
    assert book.plan([offer("o3", "a1")]).launches == {}
    book.handle_update(update(0, 0, "TASK_FINISHED"))
    assert launch_all(book, [offer("o4", "a1")]) == {"o4": [2]}


def test_cluster_without_value_pins_the_first_placement_and_like_matches_whole_values() -> None:
    book = BatchBook(job(count=4, constraints=["rack:CLUSTER"]), RUN)
    assert launch_all(book, [offer("o1", "a1", cpus=1, rack="r1"), offer("o2", "a2", rack="r2")]) == {"o1": [0]}
    assert launch_all(book, [offer("o3", "a2", rack="r2"), offer("o4", "a3", cpus=1, rack="r1")]) == {"o4": [1]}
    book = BatchBook(job(count=2, constraints=["rack:LIKE:r[0-9]", "zone:UNLIKE:west"]), RUN)
    plan = book.plan([offer("o1", "a1", rack="r12"), offer("o2", "a2", rack="r1", zone="west"),
                      offer("o3", "a3", rack="r2"), offer("o4", "a4")])
    assert list(plan.launches) == ["o3"]  # r12 is not a whole match, west is unlike
    assert set(plan.reasons) == {"a1", "a2"}
    assert book.plan([offer("o5", "a4")]).reasons == {"a4": "rack:LIKE:r[0-9]: the agent has no 'rack'"}


def test_a_failed_task_is_retried_on_another_agent_when_one_fits_else_on_any() -> None:
    book = BatchBook(job(retries=2), RUN)
    launch_all(book, [offer("o1", "a1")])
    outcome = book.handle_update(update(0, 0, "TASK_FAILED", "Command exited with status 3"))
    assert (outcome.kind, outcome.exit_code) == ("retry", 3) and book.slots[0].phase == Phase.PENDING
    assert launch_all(book, [offer("o2", "a1"), offer("o3", "a2")]) == {"o3": [0]}
    assert book.slots[0].attempt == 1
    book.handle_update(update(0, 1, "TASK_FAILED", "Command exited with status 3"))
    assert launch_all(book, [offer("o4", "a1")]) == {"o4": [0]}  # only failed agents offered: take one
    assert book.handle_update(update(0, 1, "TASK_FINISHED")).kind == "stale"  # an older attempt
    assert book.handle_update(update(0, 2, "TASK_FAILED", "Command exited with status 3")).kind == "done"
    assert book.finished() and book.exit_code() == 3


def test_the_exit_code_is_the_lowest_failing_index_and_invalid_tasks_are_not_retried() -> None:
    book = BatchBook(job(count=3, retries=1), RUN)
    launch_all(book, [offer("o1", "a1")])
    book.handle_update(update(2, 0, "TASK_ERROR", "bad task"))
    book.handle_update(update(0, 0, "TASK_FINISHED"))
    assert book.handle_update(update(1, 0, "TASK_FAILED", "Command exited with status 7")).kind == "retry"
    assert book.exit_code() == 1  # index 2 (TASK_ERROR, no status of its own), not retried
    launch_all(book, [offer("o2", "a2")])
    book.handle_update(update(1, 1, "TASK_FAILED", "Command exited with status 7"))
    assert book.finished() and book.exit_code() == 7
    assert +book.phases == Counter(slot.phase.value for slot in book.slots) == Counter(done=3)
    assert book.handle_update({"task_id": {"value": "someone-else.0.0"}, "state": "TASK_FAILED"}).kind == "stale"


def test_exit_codes_follow_the_shell() -> None:
    assert exit_code_of({"state": "TASK_FINISHED"}) == 0
    assert exit_code_of({"state": "TASK_FAILED", "message": "Command exited with status 42"}) == 42
    assert exit_code_of({"state": "TASK_FAILED", "message": "Command terminated with signal Killed"}) == 137
    assert exit_code_of({"state": "TASK_LOST", "message": "agent removed"}) == 1


@given(needs=st.tuples(st.integers(1, 4000), st.integers(0, 3000)),
       offers=st.lists(st.tuples(st.integers(0, 16000), st.integers(0, 16000)), min_size=1, max_size=6),
       count=st.integers(1, 40))
def test_a_plan_never_takes_more_than_an_offer_holds(needs: tuple[int, int], offers: list[tuple[int, int]],
                                                    count: int) -> None:
    book = BatchBook(job(count=count, cpus=needs[0] / 1000, mem=needs[1] / 1000), RUN)
    made = [offer(f"o{i}", f"a{i}", cpus=c / 1000, mem=m / 1000) for i, (c, m) in enumerate(offers)]
    plan = book.plan(made)
    placed = [la.index for launches in plan.launches.values() for la in launches]
    assert placed == sorted(placed) == list(range(len(placed))) and len(placed) <= count
    for i, (cpus, mem) in enumerate(offers):
        taken = plan.launches.get(f"o{i}", [])
        for name, have in (("cpus", cpus), ("mem", mem)):
            used = sum(r["scalar"]["value"] for la in taken for r in la.resources if r["name"] == name)
            assert round(used * 1000) <= have


@given(count=st.integers(1, 12), max_parallel=st.integers(0, 4), retries=st.integers(0, 2),
       steps=st.lists(st.tuples(st.sampled_from(["offer", "start", "finish", "fail", "lost", "error"]),
                                st.integers(0, 11), st.integers(1, 6)), max_size=80))
def test_the_book_keeps_its_invariants_through_any_run(count: int, max_parallel: int, retries: int,
                                                      steps: list[tuple[str, int, int]]) -> None:
    book = BatchBook(job(count=count, max_parallel=max_parallel, retries=retries, cpus=1, mem=1), RUN)
    ended: dict[int, int] = {}  # index -> the exit code it ended with for good
    for number, (kind, index, size) in enumerate(steps):
        if kind == "offer":
            launch_all(book, [offer(f"o{number}", f"a{size % 3}", cpus=size)])
        elif index < count and book.slots[index].phase in (Phase.LAUNCHED, Phase.RUNNING):
            attempt = book.slots[index].attempt
            state, code = {"start": ("TASK_RUNNING", None), "finish": ("TASK_FINISHED", 0),
                           "fail": ("TASK_FAILED", size), "lost": ("TASK_LOST", 1), "error": ("TASK_ERROR", 1)}[kind]
            message = f"Command exited with status {size}" if kind == "fail" else "gone"
            outcome = book.handle_update(update(index, attempt, state, message))
            if outcome.kind == "done":
                ended[index] = outcome.exit_code or 0
                assert outcome.exit_code == code
            if outcome.kind == "retry":
                assert attempt < retries and state != "TASK_ERROR"
        assert +book.phases == Counter(slot.phase.value for slot in book.slots)
        assert book.phases["launched"] + book.phases["running"] == len(book.active)
        assert not max_parallel or len(book.active) <= max_parallel
        assert all(slot.attempt <= retries for slot in book.slots)
        assert book.pending() == book.phases["pending"]
        assert book.finished() == (len(ended) == count)
    if book.finished():
        failing = [ended[i] for i in range(count) if ended[i]]
        assert book.exit_code() == (failing[0] if failing else 0)
