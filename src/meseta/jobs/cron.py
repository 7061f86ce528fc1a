"""Standard 5-field cron expressions, evaluated on wall-clock time in a zone; pure.

``minute hour day-of-month month day-of-week``, each field digits, ``*``, ``,``, ``-``, ``/`` and the
English month and weekday abbreviations (``JAN``, ``MON``); day-of-month and day-of-week combine with
OR as in Vixie cron. croniter's extensions (``R`` random, ``H`` hashed, ``L``, ``#``, ``@daily``,
a seconds or year field) are refused: they are not standard and ``R`` would not be repeatable.

croniter steps naive wall-clock times; :func:`wall_to_instant_ms` maps each to an instant, so that the
mapping never goes backwards and DST is handled once, here::

    clocks go forward (02:00 -> 03:00): a time in the skipped hour is due at 03:00, once
                                        (``30 2 * * *`` still runs that day; ``*/15`` runs once for the hour)
    clocks go back (03:00 -> 02:00):    a time in the repeated hour is due on its first pass only
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime, tzinfo
from typing import Any

from croniter import croniter
from croniter.croniter import CroniterError

from meseta.jobs.wall_clock import MAX_MS, gap_end_ms, is_skipped, ms_to_wall, wall_to_ms

_NAMES = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT"
_FIELD = re.compile(rf"(?:[0-9*,/-]|{_NAMES})+", re.IGNORECASE)
FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
MAX_STEPS = 2_000  # candidates looked at per call: a per-minute job inside a repeated hour needs about 60


def cron_problem(text: str) -> str | None:
    """Why ``text`` is not a standard 5-field cron expression croniter accepts, or None."""
    fields = text.split()
    if len(fields) != 5:
        return f"a cron expression has 5 fields ({' '.join(FIELD_NAMES)}), got {len(fields)}"
    for name, field in zip(FIELD_NAMES, fields, strict=True):
        if not _FIELD.fullmatch(field):
            return f"the {name} field {field!r} is not standard cron (digits, * , - / and names only)"
    try:
        croniter(" ".join(fields))
    except (CroniterError, ValueError, KeyError, IndexError, OverflowError) as error:
        return str(error) or type(error).__name__
    return None


def wall_to_instant_ms(wall: datetime, zone: tzinfo) -> int:
    """The instant a cron wall time is due: skipped times at the end of the gap, repeated ones once."""
    return gap_end_ms(wall, zone) if is_skipped(wall, zone) else wall_to_ms(wall, zone)


def cron_times(expression: str, zone: tzinfo, after: float) -> Iterator[int]:
    """The instants (epoch ms) strictly after ``after`` (epoch seconds) that ``expression`` is due,
    ascending, ending at the year 9999 or when croniter finds no further match.

    croniter starts from the wall time of the whole second at or before ``after`` (cron times are
    whole minutes, so none is skipped) and yields strictly later wall times; the mapping to instants
    never goes backwards, so dropping what is not past the last instant given keeps the order strict.
    At most MAX_STEPS candidates in a row may be dropped (a repeated hour).
    """
    if not math.isfinite(after) or after >= MAX_MS / 1000:
        return
    base_ms = max(0, math.floor(after)) * 1000
    candidates: Any = croniter(expression, ms_to_wall(base_ms, zone))
    last, dropped = after, 0
    while dropped < MAX_STEPS:
        try:
            wall: datetime = candidates.get_next(datetime)
            due = wall_to_instant_ms(wall, zone)
        except (CroniterError, ValueError, OverflowError):  # never again, or past the year 9999
            return
        if due > MAX_MS:
            return
        if due / 1000 > last:
            last, dropped = due / 1000, 0
            yield due
        else:
            dropped += 1


def next_cron_ms(expression: str, zone: tzinfo, after: float) -> int | None:
    """The first instant strictly after ``after`` that ``expression`` is due, or None."""
    return next(cron_times(expression, zone, after), None)
