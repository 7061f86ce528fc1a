"""Schedules: ISO 8601 repeating intervals and cron, table tests and hypothesis properties."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from meseta.jobs.schedule import Schedule, ScheduleError, due_times, next_due, parse_schedule, remaining_text

BERLIN = ZoneInfo("Europe/Berlin")
YEAR = 365 * 86_400.0


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def berlin(*fields: int) -> float:
    return datetime(*fields, tzinfo=BERLIN).timestamp()  # type: ignore[misc]


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(("text", "recurrences", "start", "period"), [
    ("R/2014-03-08T20:00:00.000Z/PT2H", None, "2014-03-08T20:00:00+00:00", "PT2H"),
    ("R5/2014-03-08T20:00:00Z/P1D", 5, "2014-03-08T20:00:00+00:00", "P1D"),
    ("R0/2014-01-01T00:00:00Z/PT60M", 0, "2014-01-01T00:00:00+00:00", "PT60M"),
    ("R2/2014-03-08T21:00:00+01:00/PT1H", 2, "2014-03-08T20:00:00+00:00", "PT1H"),
    ("R1/20140308T200000Z/PT1,5S", 1, "2014-03-08T20:00:00+00:00", "PT1,5S"),
    ("R3/2014-03-08T20:00:00/P1Y2M3DT4H5M6.5S", 3, "2014-03-08T20:00:00+00:00", "P1Y2M3DT4H5M6.5S"),
])
def test_iso_intervals_parse(text: str, recurrences: int | None, start: str, period: str) -> None:
    schedule = parse_schedule(text)
    assert (schedule.text, schedule.recurrences, schedule.period) == (text, recurrences, period)
    assert schedule.start_ms == epoch(start) * 1000


def test_an_empty_start_is_now() -> None:
    schedule = parse_schedule("R5//P1D", now=1_700_000_000.25)
    assert schedule.start_ms == 1_700_000_000_250
    assert next_due(schedule, 0) == 1_700_000_000.25


def test_schedule_time_zone_reads_the_wall_clock_of_the_text_in_that_zone() -> None:
    schedule = parse_schedule("R/2014-07-01T08:00:00Z/P1D", "Europe/Berlin")
    assert (schedule.time_zone, next_due(schedule, 0)) == ("Europe/Berlin", berlin(2014, 7, 1, 8))
    assert remaining_text(schedule, 0) == "R/2014-07-01T08:00:00.000+02:00/P1D"


def test_a_cron_expression_is_due_on_its_minutes_in_its_zone() -> None:
    utc = parse_schedule("*/5 * * * *")
    assert utc.recurrences is None and remaining_text(utc, 1e9) == "*/5 * * * *"
    assert due_times(utc, epoch("2020-01-01T00:04:59+00:00"), epoch("2020-01-01T00:15:00+00:00")) == [
        epoch("2020-01-01T00:05:00+00:00"), epoch("2020-01-01T00:10:00+00:00"), epoch("2020-01-01T00:15:00+00:00")]
    nine = parse_schedule("0 9 * * MON-FRI", "Europe/Berlin")
    assert next_due(nine, epoch("2020-01-04T00:00:00+00:00")) == berlin(2020, 1, 6, 9)  # Saturday -> Monday


@pytest.mark.parametrize(("text", "time_zone", "says"), [
    ("", "", "5 fields"),
    ("x", "", "Cannot parse schedule 'x'"),
    ("R/2014-03-08T20:00:00Z", "", "expected R[n]/[start]/period"),
    ("R/2014-03-08T20:00:00Z/PT1H/x", "", "expected R[n]/[start]/period"),
    ("Rx/2014-03-08T20:00:00Z/PT1H", "", "'Rx' is not R or R<number>"),
    ("R-1/2014-03-08T20:00:00Z/PT1H", "", "is not R or R<number>"),
    ("R/1969-12-31T23:59:59Z/PT1H", "", "before 1970"),
    ("R/1970-01-01T00:30:00+01:00/PT1H", "", "before 1970"),
    ("R/2014-13-08T20:00:00Z/PT1H", "", "start '2014-13-08T20:00:00Z'"),
    ("R/2014-03-08T20:00:00Z/PT0S", "", "longer than zero"),
    ("R/2014-03-08T20:00:00Z/P0D", "", "longer than zero"),
    ("R/2014-03-08T20:00:00Z/-PT1H", "", "period '-PT1H'"),
    ("R/2014-03-08T20:00:00Z/1H", "", "period '1H'"),
    ("R/2014-03-08T20:00:00Z/P0.5D", "", "whole numbers"),
    ("R/2014-03-08T20:00:00Z/PT0.0001S", "", "whole milliseconds"),
    ("R/2014-03-08T20:00:00Z/P5000Y", "", "longer than 1000 years"),
    ("R99999999999/2014-03-08T20:00:00Z/PT1H", "", "more than 2147483647 recurrences"),
    ("R/2014-03-08T24:00:00Z/PT1H", "", "24:00"),
    ("R/2014-03-08T23:59:60Z/PT1H", "", "Leap seconds"),
    ("R/9999-12-31T23:00:00Z/PT1H", "", "after the year 9999"),
    ("R/2014-03-08T20:00:00Z/PT1H", "Mars/Olympus", "Unknown time zone 'Mars/Olympus'"),
    ("R/2014-03-08T20:00:00Z/PT1H", "../../etc/passwd", "Unknown time zone"),
    ("R/2014-03-08T20:00:00Z/PT1H", "Europe", "Unknown time zone 'Europe'"),
    ("*/5 * * *", "", "got 4"),
    ("*/5 * * * * *", "", "got 6"),
    ("R * * * *", "", "expected R[n]/[start]/period"),
    ("H * * * *", "", "minute field 'H'"),
    ("@daily", "", "5 fields"),
    ("0 0 L * *", "", "day-of-month field 'L'"),
    ("60 * * * *", "", "Cannot parse schedule '60 * * * *'"),
    ("*/0 * * * *", "", "Cannot parse schedule"),
    ("0 0 30 2 *", "", "never due"),
    ("R/2014-03-08T20:00:00Z/PT1H\n", "", "printable"),
    ("R/\u0662\u0660\u0661\u0664-03-08T20:00:00Z/PT1H", "", "ASCII"),
    ("R/" + "9" * 300, "", "at most 256"),
])
def test_bad_schedules_are_refused_saying_why(text: str, time_zone: str, says: str) -> None:
    with pytest.raises(ScheduleError, match=None) as refused:
        parse_schedule(text, time_zone, now=1.7e9)
    assert says in str(refused.value)


# ----------------------------------------------------------------------------- due times


def test_recurrences_bound_the_runs_and_r0_in_the_past_is_valid() -> None:
    five = parse_schedule("R5/2014-01-01T00:00:00Z/PT1H")
    assert len(due_times(five, 0, 2e9)) == 5
    assert next_due(five, epoch("2014-01-01T04:00:00+00:00")) is None
    done = parse_schedule("R0/2014-01-01T00:00:00Z/PT60M")
    assert next_due(done, 0) is None and due_times(done, 0, 2e9) == []
    assert remaining_text(done, 2e9) == "R0/2014-01-01T00:00:00.000Z/PT60M"


def test_remaining_text_counts_down_then_keeps_the_last_start() -> None:
    three = parse_schedule("R3/2014-01-01T00:00:00.000Z/PT1H")
    assert remaining_text(three, 0) == "R3/2014-01-01T00:00:00.000Z/PT1H"
    assert remaining_text(three, epoch("2014-01-01T00:00:00+00:00")) == "R2/2014-01-01T01:00:00.000Z/PT1H"
    assert remaining_text(three, epoch("2014-01-01T01:30:00+00:00")) == "R1/2014-01-01T02:00:00.000Z/PT1H"
    assert remaining_text(three, 2e9) == "R0/2014-01-01T02:00:00.000Z/PT1H"
    forever = parse_schedule("R/2014-03-08T20:00:00.000Z/PT2H")
    assert remaining_text(forever, epoch("2014-03-08T21:00:00+00:00")) == "R/2014-03-08T22:00:00.000Z/PT2H"


def test_calendar_months_count_from_the_start_not_from_the_last_run() -> None:
    monthly = parse_schedule("R4/2014-01-31T10:00:00Z/P1M")
    assert due_times(monthly, 0, 2e9) == [epoch(f"2014-{day}T10:00:00+00:00")
                                          for day in ("01-31", "02-28", "03-31", "04-30")]


def test_p1d_at_0230_berlin_across_spring_forward_runs_every_day() -> None:
    """02:30 does not exist on 29 March 2026: that day's run is at 03:30 CEST (the wall time shifted
    forward by the gap, as Joda does), 24 hours after the previous one (01:30Z both); the next day is
    02:30 CEST again, 23 hours later."""
    daily = parse_schedule("R/2026-03-27T02:30:00/P1D", "Europe/Berlin")
    got = due_times(daily, 0, berlin(2026, 3, 31, 12))
    assert got == [berlin(2026, 3, 27, 2, 30), berlin(2026, 3, 28, 2, 30), berlin(2026, 3, 29, 3, 30),
                   berlin(2026, 3, 30, 2, 30), berlin(2026, 3, 31, 2, 30)]
    assert [b - a for a, b in itertools.pairwise(got)] == [86_400, 86_400, 82_800, 86_400]


def test_remaining_text_keeps_a_daily_0230_at_0230_across_the_gap() -> None:
    daily = parse_schedule("R/2026-03-27T02:30:00/P1D", "Europe/Berlin")
    text = remaining_text(daily, berlin(2026, 3, 28, 12))
    assert text == "R/2026-03-29T02:30:00.000+01:00/P1D"  # the instant of 03:30 CEST, the wall time of 02:30
    again = parse_schedule(text, "Europe/Berlin")
    assert due_times(again, 0, berlin(2026, 3, 31, 12)) == due_times(daily, berlin(2026, 3, 28, 12),
                                                                     berlin(2026, 3, 31, 12))


def test_p1d_at_0230_berlin_across_fall_back_runs_once_on_the_first_pass() -> None:
    daily = parse_schedule("R/2026-10-24T02:30:00/P1D", "Europe/Berlin")
    got = due_times(daily, 0, berlin(2026, 10, 26, 12))
    assert got == [epoch("2026-10-24T00:30:00+00:00"), epoch("2026-10-25T00:30:00+00:00"),
                   epoch("2026-10-26T01:30:00+00:00")]
    second_pass = parse_schedule("R1/2026-10-25T02:30:00+01:00/P1D", "Europe/Berlin")  # the offset picks the pass
    assert next_due(second_pass, 0) == epoch("2026-10-25T01:30:00+00:00")


def test_cron_in_the_skipped_hour_runs_once_at_its_end_and_the_repeated_hour_once() -> None:
    half_hourly = parse_schedule("*/30 * * * *", "Europe/Berlin")
    spring = due_times(half_hourly, berlin(2026, 3, 29, 1, 15), berlin(2026, 3, 29, 3, 45))
    assert spring == [berlin(2026, 3, 29, 1, 30), berlin(2026, 3, 29, 3), berlin(2026, 3, 29, 3, 30)]
    autumn = due_times(half_hourly, epoch("2026-10-24T23:45:00+00:00"), epoch("2026-10-25T02:15:00+00:00"))
    assert autumn == [epoch(f"2026-10-25T{hm}:00+00:00") for hm in ("00:00", "00:30", "02:00")]


def test_huge_gaps_are_answered_without_stepping_each_period() -> None:
    """30 years of one-minute periods is 15.8 million steps; the answer takes a handful."""
    minutely = parse_schedule("R/1970-01-01T00:00:00Z/PT1M")
    monthly = parse_schedule("R/1970-01-31T00:00:00Z/P1M", "America/New_York")
    began = time.process_time()
    for offset in range(100):
        after = 30 * YEAR + offset * 7.5
        assert next_due(minutely, after) == (after // 60 + 1) * 60
        assert due_times(monthly, after, after + YEAR, limit=3)[0] > after
        remaining_text(monthly, after)
    assert time.process_time() - began < 5.0  # stepping would take minutes


# ----------------------------------------------------------------------------- properties

ZONES = ["", "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia"]
PERIODS = ["PT1M", "PT2H", "PT90M", "P1D", "P1W", "P1M", "P1Y", "P1DT2H", "PT0.5S", "P1MT1H", "P3D", "PT23H59M"]
CRONS = ["*/5 * * * *", "30 2 * * *", "0 9 * * MON-FRI", "15,45 */3 * * *", "0 0 1 * *", "0 0 29 2 *",
         "*/30 1-3 * * SUN"]


@st.composite
def iso_schedules(draw: st.DrawFn) -> Schedule:
    start = draw(st.integers(0, 4_100_000_000)) / draw(st.sampled_from([1, 1, 1000]))
    stamp = datetime.fromtimestamp(start, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if draw(st.booleans()):
        stamp = stamp[:-1]  # no zone in the text: UTC, or the wall clock of scheduleTimeZone
    count = draw(st.none() | st.integers(0, 40))
    text = f"R{'' if count is None else count}/{stamp}/{draw(st.sampled_from(PERIODS))}"
    try:
        return parse_schedule(text, draw(st.sampled_from(ZONES)), now=0)
    except ScheduleError:
        assume(False)  # a wall time before 1970 in a zone east of UTC
        raise


schedules = iso_schedules() | st.builds(parse_schedule, st.sampled_from(CRONS), st.sampled_from(ZONES))
instants = st.floats(0, 4_200_000_000, allow_nan=False)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(schedules, instants)
def test_next_due_is_strictly_after(schedule: Schedule, after: float) -> None:
    due = next_due(schedule, after)
    assert due is None or due > after


@PROPERTY
@given(schedules, instants, st.floats(0, 3 * YEAR), st.integers(0, 60))
def test_due_times_ascend_within_the_window_and_chain_like_next_due(schedule: Schedule, after: float,
                                                                    span: float, limit: int) -> None:
    until = after + span
    got = due_times(schedule, after, until, limit)
    assert len(got) <= limit
    assert all(after < t <= until for t in got)
    assert all(a < b for a, b in itertools.pairwise(got))
    chained: list[float] = []
    due = next_due(schedule, after)
    while len(chained) < limit and due is not None and due <= until:
        chained.append(due)
        due = next_due(schedule, due)
    assert got == chained


@PROPERTY
@given(iso_schedules())
def test_recurrences_are_respected(schedule: Schedule) -> None:
    every = due_times(schedule, -1, 4e11, limit=100)
    if schedule.recurrences is not None:
        assert len(every) <= schedule.recurrences
        assert remaining_text(schedule, 4e11).startswith("R0/")
    if every:
        assert every[0] == schedule.start_ms / 1000


@PROPERTY
@given(iso_schedules(), instants)
def test_remaining_text_read_back_keeps_the_run_times(schedule: Schedule, after: float) -> None:
    """Exactly so for exact periods, and for whole-day/week periods (across DST gaps too); months
    and years restart from the day shown (Jan 31 + P1M shows Feb 28), as in Chronos."""
    assume(schedule.months == 0 and (schedule.days == 0 or schedule.exact_ms == 0))
    again = parse_schedule(remaining_text(schedule, after), schedule.time_zone)
    assert due_times(again, after, 4e11, limit=5) == due_times(schedule, after, 4e11, limit=5)


@PROPERTY
@given(iso_schedules(), instants)
def test_remaining_text_names_the_same_next_run(schedule: Schedule, after: float) -> None:
    text = remaining_text(schedule, after)
    again = parse_schedule(text, schedule.time_zone)
    assert next_due(again, after) == next_due(schedule, after)
    left = len(due_times(schedule, after, 4e11, limit=100))
    if schedule.recurrences is not None and left < 100:
        assert again.recurrences == left or next_due(schedule, after) is None
