"""Per-app offer statistics for /v2/queue."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from meseta.services.launch.launch_stats import LaunchStats, first_reason, funnel, offer_json
from meseta.services.launch.offer_matching import REASONS
from meseta.services.wire import timestamp


def offer(agent: str = "S1", oid: str = "O1") -> dict[str, Any]:
    return {
        "id": {"value": oid}, "agent_id": {"value": agent}, "hostname": f"host-{agent}",
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 512.0},
             "reservations": [{"type": "STATIC", "role": "ads"}]},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31005}]}, "role": "*"},
        ],
        "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
                       {"name": "level", "type": "SCALAR", "scalar": {"value": 3.0}}],
    }


def steps(summary: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    return {s["reason"]: (s["declined"], s["processed"]) for s in summary}


def test_counts_used_and_unused_offers_and_their_times() -> None:
    stats = LaunchStats(since=100.0)
    stats.record(offer("S1"), ["InsufficientMemory"], 101.0)
    stats.record(offer("S2"), [], 102.5)
    stats.record(offer("S3"), ["InsufficientCpus", "InsufficientMemory"], 103.0)
    out = stats.summary_json()
    assert out["processedOffersCount"] == 3 and out["unusedOffersCount"] == 2
    assert out["lastUsedOfferAt"] == "1970-01-01T00:01:42.500Z"
    assert out["lastUnusedOfferAt"] == "1970-01-01T00:01:43.000Z"
    assert stats.reason_counts() == {"InsufficientCpus": 1, "InsufficientMemory": 2}


def test_the_funnel_declines_each_offer_at_its_first_reason() -> None:
    stats = LaunchStats(since=0.0)
    stats.record(offer("S1"), ["InsufficientMemory", "UnfulfilledConstraint"], 1.0)
    stats.record(offer("S2"), ["InsufficientMemory"], 2.0)
    stats.record(offer("S3"), [], 3.0)
    attempt = steps(stats.summary_json()["rejectSummaryLaunchAttempt"])
    assert list(attempt) == list(REASONS)
    assert attempt["UnfulfilledRole"] == (0, 3)
    assert attempt["UnfulfilledConstraint"] == (1, 3)
    assert attempt["InsufficientCpus"] == (0, 2)
    assert attempt["InsufficientMemory"] == (1, 2)
    assert attempt["InsufficientDisk"] == (0, 1)  # the used offer passed every step
    last = steps(stats.summary_json()["rejectSummaryLastOffers"])
    assert last["UnfulfilledRole"] == (0, 2) and last["InsufficientMemory"] == (1, 1)


def test_last_offers_keep_the_latest_per_agent_and_forget_an_agent_once_used() -> None:
    stats = LaunchStats(since=0.0)
    stats.record(offer("S1", "O1"), ["InsufficientCpus"], 1.0)
    stats.record(offer("S1", "O2"), ["InsufficientMemory"], 2.0)
    stats.record(offer("S2", "O3"), ["UnfulfilledRole"], 3.0)
    shown = stats.last_unused_offers_json()
    assert [(s["offer"]["id"], s["reason"]) for s in shown] == [
        ("O3", ["UnfulfilledRole"]), ("O2", ["InsufficientMemory"])]
    stats.record(offer("S1", "O4"), [], 4.0)
    assert [s["offer"]["id"] for s in stats.last_unused_offers_json()] == ["O3"]
    assert stats.summary_json()["unusedOffersCount"] == 3  # the attempt's counters keep everything


def test_the_window_is_bounded() -> None:
    stats = LaunchStats(since=0.0, window=3)
    for n in range(10):
        stats.record(offer(f"S{n}", f"O{n}"), ["InsufficientCpus"], float(n))
    assert [s["offer"]["agentId"] for s in stats.last_unused_offers_json()] == ["S9", "S8", "S7"]
    assert steps(stats.summary_json()["rejectSummaryLastOffers"])["InsufficientCpus"] == (3, 3)
    assert steps(stats.summary_json()["rejectSummaryLaunchAttempt"])["InsufficientCpus"] == (10, 10)


def test_restart_begins_a_new_launch_attempt() -> None:
    stats = LaunchStats(since=0.0)
    stats.record(offer(), ["InsufficientCpus"], 1.0)
    stats.restart(50.0)
    out = stats.summary_json()
    assert stats.since == 50.0 and out["processedOffersCount"] == 0 and "lastUnusedOfferAt" not in out
    assert stats.last_unused_offers_json() == [] and stats.reason_counts() == {}


def test_unused_offer_rendering() -> None:
    stats = LaunchStats(since=0.0)
    stats.record(offer(), ["InsufficientCpus"], 1_700_000_000.123)
    (shown,) = stats.last_unused_offers_json()
    assert shown["timestamp"] == "2023-11-14T22:13:20.123Z"
    assert shown["offer"] == {
        "id": "O1", "agentId": "S1", "hostname": "host-S1",
        "resources": [{"name": "cpus", "role": "*", "scalar": 2.0},
                      {"name": "mem", "role": "ads", "scalar": 512.0},
                      {"name": "ports", "role": "*", "ranges": [{"begin": 31000, "end": 31005}]}],
        "attributes": [{"name": "rack", "text": "r1"}, {"name": "level", "scalar": 3.0}],
    }
    assert offer_json({"id": {"value": "x"}})["resources"] == []


def test_helpers() -> None:
    assert first_reason(["InsufficientPorts", "UnfulfilledRole"]) == "UnfulfilledRole"
    assert first_reason(["SomethingNew"]) == "SomethingNew"
    assert timestamp(0.0) == "1970-01-01T00:00:00.000Z"


@given(st.lists(st.lists(st.sampled_from(REASONS), max_size=3, unique=True), max_size=40))
def test_funnel_steps_add_up(outcomes: list[list[str]]) -> None:
    stats = LaunchStats(since=0.0, window=5)
    for n, reasons in enumerate(outcomes):
        stats.record(offer(f"S{n % 7}", f"O{n}"), reasons, float(n))
    out = stats.summary_json()
    attempt = out["rejectSummaryLaunchAttempt"]
    assert attempt[0]["processed"] == out["processedOffersCount"] == len(outcomes)
    assert sum(s["declined"] for s in attempt) == out["unusedOffersCount"] == sum(1 for r in outcomes if r)
    for earlier, later in itertools.pairwise(attempt):
        assert later["processed"] == earlier["processed"] - earlier["declined"]
    last = out["rejectSummaryLastOffers"]
    assert last[0]["processed"] == len(stats.last_unused_offers_json()) <= 5
    assert funnel({}, 4)[-1] == {"reason": REASONS[-1], "declined": 0, "processed": 4}
