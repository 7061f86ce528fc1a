"""The status update manager: per-task FIFO, one in flight, backoff, closed after a terminal ack;
``add`` answers (taken, to send now), ``acknowledge`` (matched, to send now)."""

from __future__ import annotations

from meseta.agent.status_updates import StatusUpdateManager


def update(task: str, state: str, uuid: str) -> dict:
    return {"framework_id": {"value": "f"}, "status": {"task_id": {"value": task}, "state": state, "uuid": uuid}}


def test_one_update_in_flight_per_task_in_order() -> None:
    manager = StatusUpdateManager(initial_retry=10, max_retry=600)
    taken, first = manager.add("f", update("t", "TASK_STARTING", "u1"), now=0)
    assert taken and first is not None and first["status"]["uuid"] == "u1"
    assert manager.add("f", update("t", "TASK_RUNNING", "u2"), now=0) == (True, None)  # queued behind u1
    assert manager.add("f", update("other", "TASK_RUNNING", "o1"), now=0)[1] is not None  # other task: own stream
    matched, following = manager.acknowledge("f", "t", "u1", now=1)
    assert matched and following is not None and following["status"]["uuid"] == "u2"
    assert following["latest_state"] == "TASK_RUNNING"


def test_wrong_ack_changes_nothing_and_retries_back_off() -> None:
    manager = StatusUpdateManager(initial_retry=10, max_retry=25)
    manager.add("f", update("t", "TASK_RUNNING", "u1"), now=0)
    assert manager.acknowledge("f", "t", "not-it", now=0) == (False, None)
    assert manager.due(now=5) == []
    assert [u["status"]["uuid"] for u in manager.due(now=10)] == ["u1"]  # next retry in 20 s
    assert manager.due(now=25) == []
    assert len(manager.due(now=30)) == 1  # then capped at 25 s
    assert manager.due(now=50) == [] and len(manager.due(now=55)) == 1


def test_terminal_ack_closes_the_stream_and_duplicates_are_dropped() -> None:
    manager = StatusUpdateManager()
    manager.add("f", update("t", "TASK_FINISHED", "u1"), now=0)
    assert manager.add("f", update("t", "TASK_FINISHED", "u1"), now=0) == (False, None)  # executor re-sent it
    assert manager.acknowledge("f", "t", "u1", now=1) == (True, None)
    assert not manager.has_pending("f", "t")
    assert manager.in_flight() == []


def test_in_flight_lists_every_stream_head_for_resending() -> None:
    manager = StatusUpdateManager()
    manager.add("f", update("a", "TASK_RUNNING", "a1"), now=0)
    manager.add("f", update("a", "TASK_FINISHED", "a2"), now=0)
    manager.add("f", update("b", "TASK_RUNNING", "b1"), now=0)
    assert sorted(u["status"]["uuid"] for u in manager.in_flight()) == ["a1", "b1"]
    manager.drop_framework("f")
    assert manager.in_flight() == []


def test_a_stream_remembers_where_its_records_go() -> None:
    manager = StatusUpdateManager()
    manager.add("f", update("t", "TASK_RUNNING", "u1"), now=0, where="run-1")
    manager.add("f", update("t", "TASK_LOST", "u2"), now=0)  # a report on a task the agent does not have
    assert manager.where("f", "t") == "run-1" and manager.where("f", "nope") is None
    manager.add("f", update("t", "TASK_RUNNING", "u3"), now=0, where="run-2")  # a later run of the same id
    assert manager.where("f", "t") == "run-2"
