"""Sandbox garbage collection: the age limit shrinks as the disk fills; oldest go first."""

from __future__ import annotations

from meseta.agent.gc import due, max_age


def test_the_age_limit_follows_disk_usage() -> None:
    week = 7 * 24 * 3600.0
    assert max_age(week, 0.1, 0.0) == week * 0.9
    assert max_age(100.0, 0.1, 0.4) == 50.0
    assert max_age(100.0, 0.1, 0.95) == 0.0  # past the headroom: everything finished goes


def test_due_sandboxes_oldest_first() -> None:
    scheduled = {"/s/new": 90.0, "/s/old": 10.0, "/s/mid": 50.0}
    assert due(scheduled, 100.0, 45.0) == ["/s/old", "/s/mid"]
    assert due(scheduled, 100.0, 0.0) == ["/s/old", "/s/mid", "/s/new"]
    assert due(scheduled, 100.0, 1000.0) == []
