"""Job schedules: ISO 8601 repeating intervals (Chronos) and 5-field cron expressions; pure.

A schedule is parsed once (:func:`parse_schedule`, with ``now`` for an empty start) and then asked
for due times; nothing here reads the clock. Times at the interface are float epoch seconds (UTC);
inside, whole epoch milliseconds, so that stepping a fixed period is exact integer arithmetic::

    R5/2014-03-08T20:00:00.000Z/P1DT2H
    |  |                        +- period: calendar part (years, months -> months; weeks, days -> days)
    |  |                           stepped on the wall clock of the zone, exact part (hours, minutes,
    |  |                           seconds, whole milliseconds) added as elapsed time, as Joda does
    |  +- start: the first due time (k = 0); empty = now; 1970 or later
    +- recurrences n: due times k = 0 .. n-1 exist; "R" alone = forever; "R0" = none (may be in the past)

    due(k) = wall(start) + k x calendar part, read in the zone  +  k x exact part

Due time k is computed from the start directly (``Jan 31 + 2 x P1M`` is ``Mar 31``, not ``Mar 28``),
so a search for the first due time after ``t`` takes a handful of steps however far ``t`` is from the
start. DST (``scheduleTimeZone`` ``Europe/Berlin``, ``R/2026-03-28T02:30:00/P1D``)::

    Mar 28 02:30 CET (01:30Z) -> Mar 29: 02:30 does not exist, due 03:30 CEST (01:30Z again, 24 h later)
    -> Mar 30 02:30 CEST (00:30Z, 23 h later); in October the repeated 02:30 is due on its first pass (CEST)

The zone is ``scheduleTimeZone`` when given (the wall-clock time in the text is read in it; an offset
in the text only picks the pass of a repeated hour), else the offset written in the text (fixed: no
DST), else UTC. Cron expressions (see :mod:`meseta.jobs.cron`) are evaluated in ``time_zone`` or UTC.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation

import aniso8601
from aniso8601.builders import TupleBuilder
from dateutil.relativedelta import relativedelta

from meseta.jobs.cron import cron_problem, cron_times, next_cron_ms
from meseta.jobs.wall_clock import (
    MAX_MS,
    MIN_MS,
    UnknownTimeZone,
    fixed_zone,
    format_ms,
    format_wall,
    is_ambiguous,
    is_fixed,
    is_skipped,
    lookup_zone,
    ms_to_wall,
    wall_to_ms,
)

__all__ = ["Schedule", "ScheduleError", "due_times", "next_due", "parse_schedule", "period_parts", "remaining_text"]

MAX_TEXT = 256  # the longest schedule Meseta reads: a full ISO interval is under 60 characters
MAX_RECURRENCES = 2**31 - 1  # Chronos keeps n in a Java number; beyond this "R" (forever) says the same
MAX_PERIOD_DAYS = 366_000  # about 1000 years: a longer period is a typo, not a schedule
_RECURRENCES = re.compile(r"R([0-9]{0,12})")
_MS_PER = {"TnH": 3_600_000, "TnM": 60_000, "TnS": 1_000}
_ISO_ERRORS = (ValueError, OverflowError, TypeError, AttributeError, IndexError)  # aniso8601's and datetime's


class ScheduleError(ValueError):
    """A schedule Meseta cannot use; ``str()`` says what is wrong."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: an ISO repeating interval (``period`` set) or a cron expression (``cron`` set)."""

    text: str  # as given
    time_zone: str  # tz database name applied ("" = the zone in the text, else UTC)
    recurrences: int | None  # None: forever ("R" alone, or a cron expression); 0: no more runs
    start_ms: int = 0  # due time k = 0 (ISO)
    period: str = ""  # the period as written (ISO); "" for cron
    months: int = 0  # calendar part of the period, stepped on the wall clock ...
    days: int = 0
    exact_ms: int = 0  # ... and the exact part, added as elapsed time
    cron: str = ""  # the 5 fields, single-spaced (cron)
    start_wall: datetime = datetime(1970, 1, 1)  # naive wall time of the start in ``zone``
    start_later: bool = False  # the start is the second pass of a repeated hour
    zone: tzinfo = field(default=UTC, compare=False)  # what time_zone (or the text's offset) names


def parse_schedule(text: str, time_zone: str = "", now: float = 0.0) -> Schedule:
    """ISO 8601 repeating interval R[n]/[start]/period (empty start = now), e.g.
    'R/2014-03-08T20:00:00.000Z/PT2H', 'R5//P1D', 'R0/2014-01-01T00:00:00Z/PT60M' (R0 in the past is valid);
    or, as an extension, a standard 5-field cron expression ('*/5 * * * *') evaluated in time_zone
    (default UTC). scheduleTimeZone overrides the zone in the text (the wall-clock time in the text is read in
    that zone, and calendar periods (P1D, P1M) step in local time across DST). Rejects: unparseable text,
    start before 1970, a period of zero or negative, unknown time zone, n beyond a sane bound; with
    ScheduleError naming the problem."""
    if not isinstance(text, str) or not isinstance(time_zone, str):
        raise ScheduleError("Cannot parse schedule: expected a string")
    shown = text[:MAX_TEXT]
    if len(text) > MAX_TEXT or not text.isprintable() or not text.isascii():
        raise ScheduleError(f"Cannot parse schedule {shown!r}: expected at most {MAX_TEXT} printable ASCII characters")
    try:
        zone = lookup_zone(time_zone) if time_zone else None
    except UnknownTimeZone as error:
        raise ScheduleError(str(error)) from None
    if text.startswith("R"):
        return _parse_interval(text, time_zone, zone, now)
    problem = cron_problem(text)
    if problem is not None:
        raise ScheduleError(f"Cannot parse schedule {shown!r}: not R[n]/[start]/period, and {problem}")
    fields = " ".join(text.split())
    schedule = Schedule(text=text, time_zone=time_zone, recurrences=None, cron=fields, zone=zone or UTC)
    if next_cron_ms(fields, schedule.zone, now) is None:
        raise ScheduleError(f"Cannot parse schedule {shown!r}: the cron expression is never due")
    return schedule


def _parse_interval(text: str, time_zone: str, zone: tzinfo | None, now: float) -> Schedule:
    parts = text.split("/")
    if len(parts) != 3:
        raise ScheduleError(f"Cannot parse schedule {text!r}: expected R[n]/[start]/period")
    match = _RECURRENCES.fullmatch(parts[0])
    if match is None:
        raise ScheduleError(f"Cannot parse schedule {text!r}: {parts[0]!r} is not R or R<number>")
    recurrences = int(match.group(1)) if match.group(1) else None
    if recurrences is not None and recurrences > MAX_RECURRENCES:
        raise ScheduleError(f"Cannot parse schedule {text!r}: more than {MAX_RECURRENCES} recurrences")
    wall, later, zone = _read_start(text, parts[1], zone, now)
    start_ms = wall_to_ms(wall, zone, later=later)
    if start_ms < MIN_MS:
        raise ScheduleError(f"Cannot parse schedule {text!r}: the start is before 1970")
    if start_ms > MAX_MS:
        raise ScheduleError(f"Cannot parse schedule {text!r}: the start is after the year 9999")
    months, days, exact_ms = _read_period(text, parts[2])
    if days and is_fixed(zone):  # a day is always 86,400 s here: step it exactly
        days, exact_ms = 0, exact_ms + days * 86_400_000
    return Schedule(text=text, time_zone=time_zone, recurrences=recurrences, start_ms=start_ms, period=parts[2],
                    months=months, days=days, exact_ms=exact_ms, start_wall=wall, start_later=later, zone=zone)


def _read_start(text: str, start: str, zone: tzinfo | None, now: float) -> tuple[datetime, bool, tzinfo]:
    """The start as (naive wall time, second pass of a repeated hour, zone it is read in)."""
    if not start:
        if not math.isfinite(now) or not MIN_MS <= now * 1000 <= MAX_MS:
            raise ScheduleError(f"Cannot parse schedule {text!r}: 'now' is out of range")
        zone = zone or UTC
        return ms_to_wall(round(now * 1000), zone), False, zone
    parsed = _parse_datetime(text, start)
    wall = parsed.replace(tzinfo=None, microsecond=parsed.microsecond // 1000 * 1000)  # Chronos counts in ms
    if zone is None:
        return wall, False, fixed_zone(parsed.utcoffset())
    offset = parsed.utcoffset()
    later = (offset is not None and is_ambiguous(wall, zone)
             and wall.replace(tzinfo=zone, fold=1).utcoffset() == offset)
    return wall, later, zone


def _parse_datetime(text: str, start: str) -> datetime:
    """An ISO 8601 date-time (or a date, meaning midnight) via aniso8601; 24:00 is refused rather than
    misread (aniso8601 reads ``T24:00`` as the start of the same day)."""
    try:
        if "T" not in start:
            return datetime.combine(aniso8601.parse_date(start), datetime.min.time())
        fields = aniso8601.parse_datetime(start, builder=TupleBuilder)
        if fields.time.hh == "24":
            raise ScheduleError(f"Cannot parse schedule {text!r}: write 24:00 as 00:00 of the next day")
        parsed = aniso8601.parse_datetime(start)
    except ScheduleError:
        raise
    except _ISO_ERRORS as error:
        raise ScheduleError(f"Cannot parse schedule {text!r}: start {start!r}: {error}") from None
    if not isinstance(parsed, datetime):
        raise ScheduleError(f"Cannot parse schedule {text!r}: start {start!r} is not a date-time")
    return parsed


def _read_period(text: str, period: str) -> tuple[int, int, int]:
    """The period as (months, days, exact ms), longer than zero and at most about 1000 years."""
    try:
        months, days, exact_ms = period_parts(period)
    except ValueError as error:
        raise ScheduleError(f"Cannot parse schedule {text!r}: {error}") from None
    if months == days == exact_ms == 0:
        raise ScheduleError(f"Cannot parse schedule {text!r}: the period must be longer than zero")
    if months * 31 + days + exact_ms / 86_400_000 > MAX_PERIOD_DAYS:
        raise ScheduleError(f"Cannot parse schedule {text!r}: the period is longer than 1000 years")
    return months, days, exact_ms


def period_parts(period: str) -> tuple[int, int, int]:
    """An ISO 8601 duration (``P1Y2M3DT4H5M6.5S``, ``P2W``) as (months, days, exact ms) via aniso8601.

    Years, months, weeks and days must be whole; hours, minutes and seconds add up to whole
    milliseconds. ValueError says what is wrong otherwise.
    """
    if not period.isascii():
        raise ValueError(f"period {period!r} is not ASCII")
    try:
        fields = aniso8601.parse_duration(period, builder=TupleBuilder)
    except _ISO_ERRORS as error:
        raise ValueError(f"period {period!r}: {error}") from None
    whole = {name: getattr(fields, name) or "0" for name in ("PnY", "PnM", "PnW", "PnD")}
    if not all(value.isdigit() and len(value) <= 9 for value in whole.values()):
        raise ValueError(f"period {period!r}: years, months, weeks and days must be whole numbers")
    try:
        exact = sum((Decimal(getattr(fields, name) or "0") * per for name, per in _MS_PER.items()), Decimal(0))
    except InvalidOperation:
        raise ValueError(f"period {period!r} is not a duration") from None
    if not exact.is_finite() or exact > 10**18 or exact != exact.to_integral_value():
        raise ValueError(f"period {period!r} is not whole milliseconds")
    return int(whole["PnY"]) * 12 + int(whole["PnM"]), int(whole["PnW"]) * 7 + int(whole["PnD"]), int(exact)


# ----------------------------------------------------------------------------- due times


def _due_ms(schedule: Schedule, k: int) -> int | None:
    """Due time k (epoch ms) of an ISO schedule, ignoring recurrences; None past the year 9999."""
    if k == 0:
        return schedule.start_ms
    due: int | None
    if schedule.months == schedule.days == 0:
        due = schedule.start_ms + k * schedule.exact_ms
    else:
        try:
            wall = schedule.start_wall + relativedelta(months=k * schedule.months, days=k * schedule.days)
            due = wall_to_ms(wall, schedule.zone, later=schedule.start_later) + k * schedule.exact_ms
        except (OverflowError, ValueError):
            due = None
    return due if due is not None and due <= MAX_MS else None


def _is_after(schedule: Schedule, k: int, after: float) -> bool:
    due = _due_ms(schedule, k)
    return due is None or due / 1000 > after


def _first_index_after(schedule: Schedule, after: float) -> int:
    """The smallest k with due(k) > after, treating "past 9999" as infinitely late.

    Due times never decrease with k. A fixed period is solved by division (then corrected for
    rounding); a calendar period by doubling then bisection: about 2 log2(k) evaluations.
    """
    if math.isnan(after) or _is_after(schedule, 0, after):
        return 0
    if schedule.months == schedule.days == 0:
        past_9999 = (MAX_MS - schedule.start_ms) // schedule.exact_ms + 1
        estimate = math.floor((min(after * 1000, MAX_MS + 1) - schedule.start_ms) / schedule.exact_ms) + 1
        k = min(max(1, estimate), past_9999)
        while k > 1 and _is_after(schedule, k - 1, after):
            k -= 1
        while not _is_after(schedule, k, after):
            k += 1
        return k
    low, high = 0, 1  # due(low) <= after < due(high)
    while not _is_after(schedule, high, after):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if _is_after(schedule, middle, after) else (middle, high)
    return high


def _within_recurrences(schedule: Schedule, k: int) -> bool:
    return schedule.recurrences is None or k < schedule.recurrences


def due_times(schedule: Schedule, after: float, until: float, limit: int = 1000) -> list[float]:
    """Every due time t with after < t <= until, ascending, at most `limit` of them (honouring recurrences:
    the k-th due time exists only if k < n). Must be fast when `after` is years past the start with a
    one-minute period (no stepping one period at a time from the start for fixed-length periods)."""
    if schedule.cron:
        return _cron_due_times(schedule, after, until, limit)
    result: list[float] = []
    k = _first_index_after(schedule, after)
    while len(result) < limit and _within_recurrences(schedule, k):
        due = _due_ms(schedule, k)
        if due is None or due / 1000 > until:
            break
        if not result or due / 1000 > result[-1]:  # a whole-day DST gap can fold two days into one instant
            result.append(due / 1000)
        k += 1
    return result


def _cron_due_times(schedule: Schedule, after: float, until: float, limit: int) -> list[float]:
    result: list[float] = []
    for due in cron_times(schedule.cron, schedule.zone, after):
        if due / 1000 > until or len(result) >= limit:
            break
        result.append(due / 1000)
    return result


def next_due(schedule: Schedule, after: float) -> float | None:
    """The first due time strictly after `after`, or None when the schedule has no more runs."""
    if schedule.cron:
        due = next_cron_ms(schedule.cron, schedule.zone, after)
        return None if due is None else due / 1000
    k = _first_index_after(schedule, after)
    due = _due_ms(schedule, k) if _within_recurrences(schedule, k) else None
    return None if due is None else due / 1000


def remaining_text(schedule: Schedule, after: float) -> str:
    """The schedule as Chronos shows it once every run due at or before `after` is done:
    'R<runs left>/<next due, ISO 8601 UTC with milliseconds and Z, or in the schedule's zone>/<period>'
    ('R/...' when forever; an exhausted one keeps 'R0/<last start>/<period>'); a cron schedule is returned
    unchanged.

    "Last start" is the last due time there was (the start as given for an R0 schedule). Parsed
    again with the same ``time_zone``, the text names the same next run. A run moved by a DST gap
    is written as its wall time with the offset before the gap (``02:30:00.000+01:00``, the same
    instant as ``03:30+02:00``), so that a daily 02:30 schedule read back stays at 02:30 (Chronos
    drifts to 03:30 there). Re-parsing still restarts the count from the text, as Chronos does: a
    month-end start (``Jan 31 + P1M`` shows ``Feb 28``) continues from the day shown, so keep the
    parsed schedule, not its text, to compute due times.
    """
    if schedule.cron:
        return schedule.text
    done = _first_index_after(schedule, after)
    due = _due_ms(schedule, done)
    if schedule.recurrences is None and due is not None:
        return f"R/{_due_text(schedule, done, due)}/{schedule.period}"
    if schedule.recurrences is not None and done < schedule.recurrences and due is not None:
        return f"R{schedule.recurrences - done}/{_due_text(schedule, done, due)}/{schedule.period}"
    last = max(0, done - 1 if schedule.recurrences is None else min(done, schedule.recurrences) - 1)
    last_due = _due_ms(schedule, last)
    return f"R0/{_due_text(schedule, last, schedule.start_ms if last_due is None else last_due)}/{schedule.period}"


def _due_text(schedule: Schedule, k: int, due: int) -> str:
    """Due time k in the schedule's zone; a whole-calendar step that fell in a DST gap as its wall time."""
    if schedule.exact_ms == 0 and (schedule.months or schedule.days):
        try:
            wall = schedule.start_wall + relativedelta(months=k * schedule.months, days=k * schedule.days)
        except (OverflowError, ValueError):
            return format_ms(due, schedule.zone)
        if is_skipped(wall, schedule.zone):
            return format_wall(wall, schedule.zone)
    elif k == 0 and is_skipped(schedule.start_wall, schedule.zone):
        return format_wall(schedule.start_wall, schedule.zone)
    return format_ms(due, schedule.zone)
