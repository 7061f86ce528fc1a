"""The QoS decisions: when the load is over a threshold, and which executors hold revocable resources."""

from __future__ import annotations

from meseta.agent.qos import LoadThresholds, holds_revocable, overload, preempted_state

CPUS = {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}


def test_either_threshold_triggers_and_none_set_never_does() -> None:
    assert not LoadThresholds().enabled()
    assert overload(LoadThresholds(), 99.0, 99.0) is None
    five = LoadThresholds(five_min=2.0)
    assert overload(five, 2.0, 50.0) is None  # strictly above, and the 15-minute load is not watched
    assert "5-minute load 2.50" in (overload(five, 2.5, 0.0) or "")
    fifteen = LoadThresholds(fifteen_min=1.0)
    assert overload(fifteen, 9.0, 1.0) is None
    assert "15-minute load 1.20" in (overload(fifteen, 0.0, 1.2) or "")
    assert overload(LoadThresholds(5.0, 1.0), 0.5, 1.5) is not None


def test_only_revocable_resources_make_an_executor_preemptable() -> None:
    assert not holds_revocable([[CPUS], []])
    assert holds_revocable([[CPUS], [{**CPUS, "revocable": {}}]])
    assert not holds_revocable([[{"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}}]])  # unreadable


def test_partition_aware_frameworks_see_gone_and_the_others_lost() -> None:
    assert preempted_state({"capabilities": [{"type": "PARTITION_AWARE"}]}) == "TASK_GONE"
    assert preempted_state({"capabilities": [{"type": "REVOCABLE_RESOURCES"}]}) == "TASK_LOST"
    assert preempted_state({}) == "TASK_LOST"
