"""Launch delays: growth, cap, crash loops, resets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meseta.services.launch.backoff import Delay, LaunchDelays, config_version, counts_as_failure


def app(version: str = "2026-01-01T00:00:00.000Z", config: str | None = None, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "/web", "version": version, "backoffSeconds": 1.0, "backoffFactor": 2.0,
                            "maxLaunchDelaySeconds": 10.0,
                            "versionInfo": {"lastConfigChangeAt": config or version, "lastScalingAt": version}}
    base.update(fields)
    return base


def test_each_failure_multiplies_the_delay_up_to_the_cap() -> None:
    delays, a, now = LaunchDelays(), app(), 0.0
    seen = []
    for _ in range(6):
        seen.append(delays.on_failure(a, now).seconds)
        now += 0.5
    assert seen == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_marathon_defaults_apply_when_fields_are_missing() -> None:
    delays = LaunchDelays()
    bare = {"id": "/x", "version": "v"}
    assert delays.on_failure(bare, 0.0).seconds == 1.0
    assert delays.on_failure(bare, 0.1).seconds == pytest.approx(1.15)
    assert delays.get("/x", 0.1) is not None and delays.get("/x", 0.1).max_seconds == 300.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("state", "health_kill", "counts"),
    [("TASK_FAILED", False, True), ("TASK_FINISHED", False, True), ("TASK_ERROR", False, True),
     ("TASK_KILLED", False, False), ("TASK_KILLED", True, True), ("TASK_LOST", False, False)],
)
def test_which_statuses_back_off(state: str, health_kill: bool, counts: bool) -> None:
    assert counts_as_failure(state, health_check_kill=health_kill) is counts
    delays = LaunchDelays()
    delays.on_task_status(app(), state, 0.0, health_check_kill=health_kill)
    assert (delays.delay_left("/web", 0.0) > 0) is counts


def test_delay_left_and_overdue() -> None:
    delays = LaunchDelays()
    assert delays.delay_left("/web", 0.0) == 0.0 and delays.overdue("/web", 0.0)
    assert delays.delay_json("/web", 0.0) == {"timeLeftSeconds": 0, "overdue": True}
    delays.on_failure(app(), 100.0)
    delays.on_failure(app(), 100.0)  # 2 s
    assert delays.delay_left("/web", 100.5) == 1.5 and not delays.overdue("/web", 100.5)
    assert delays.delay_json("/web", 101.9) == {"timeLeftSeconds": 1, "overdue": False}  # rounded up: never "0 left"
    assert delays.launch_at("/web", 100.5) == 102.0
    assert delays.overdue("/web", 102.0) and delays.launch_at("/web", 103.0) == 103.0


def test_a_crash_loop_keeps_backing_off() -> None:
    """Each task reaches TASK_RUNNING, then dies a second later: the delay still grows."""
    delays, a, now = LaunchDelays(), app(maxLaunchDelaySeconds=100.0), 0.0
    for expected in (1.0, 2.0, 4.0, 8.0, 16.0):
        now += delays.delay_left("/web", now)  # launched as soon as allowed ...
        delays.on_task_status(a, "TASK_RUNNING", now)  # ... runs ...
        now += 1.0
        assert delays.on_task_status(a, "TASK_FAILED", now).seconds == expected  # type: ignore[union-attr]


def test_reset_clears_the_delay() -> None:
    delays = LaunchDelays()
    delays.on_failure(app(), 0.0)
    assert delays.reset("/web") and not delays.reset("/web")
    assert delays.overdue("/web", 0.0)
    assert delays.on_failure(app(), 1.0).seconds == 1.0  # starts over


def test_a_new_config_version_resets_but_a_scale_does_not() -> None:
    delays = LaunchDelays()
    delays.on_failure(app(), 0.0)
    delays.on_failure(app(), 0.0)
    scaled = app(version="2026-01-02T00:00:00.000Z", config="2026-01-01T00:00:00.000Z", instances=5)
    delays.on_app_version(scaled)
    assert delays.delay_left("/web", 0.0) == 2.0
    assert delays.on_failure(scaled, 0.0).seconds == 4.0
    changed = app(version="2026-01-03T00:00:00.000Z", cmd="new")
    delays.on_app_version(changed)
    assert delays.overdue("/web", 0.0)
    delays.on_failure(scaled, 0.0)
    assert delays.on_failure(changed, 0.0).seconds == 1.0  # a failure under a new config starts over too
    assert config_version({"version": "v9"}) == "v9"


def test_a_quiet_period_of_delay_plus_max_forgets_the_delay() -> None:
    delays = LaunchDelays()
    delays.on_failure(app(), 0.0)
    delays.on_failure(app(), 0.0)  # 2 s, forgotten at 0 + 2 + 10
    assert delays.get("/web", 11.9) is not None
    assert delays.expire(11.9) == [] and "/web" in delays
    assert delays.expire(12.0) == ["/web"] and len(delays) == 0
    delays.on_failure(app(), 20.0)
    assert delays.on_failure(app(), 40.0).seconds == 1.0  # 20 s quiet > 1 + 10: starts over


@given(st.lists(st.floats(min_value=0.0, max_value=30.0), min_size=1, max_size=40),
       st.floats(min_value=0.1, max_value=5.0), st.floats(min_value=1.0, max_value=3.0),
       st.floats(min_value=0.1, max_value=60.0))
def test_delays_never_exceed_the_cap_and_grow_within_a_streak(
    gaps: list[float], start: float, factor: float, cap: float
) -> None:
    delays, a, now = LaunchDelays(), app(backoffSeconds=start, backoffFactor=factor, maxLaunchDelaySeconds=cap), 0.0
    previous: Delay | None = None
    for gap in gaps:
        now += gap
        delay = delays.on_failure(a, now)
        assert 0 < delay.seconds <= cap
        if previous is None or now >= previous.forgotten_at:
            assert delay.seconds == min(start, cap)
        else:
            assert delay.seconds == min(previous.seconds * factor, cap)
        assert delays.delay_left("/web", now) == pytest.approx(delay.seconds)
        previous = delay
