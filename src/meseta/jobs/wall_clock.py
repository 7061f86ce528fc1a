"""Wall-clock time in a zone <-> epoch milliseconds, and the timestamp text Chronos shows; pure.

Schedules count in whole epoch milliseconds (UTC) so that stepping is exact integer arithmetic;
the interface converts to float seconds at the edge. A local wall-clock time maps to an instant
as follows (Europe/Berlin, spring forward on the last Sunday of March, back in October)::

    wall time            kind          instant chosen
    01:59 (March)        normal        the only one
    02:30 (March)        in the gap    shifted forward by the gap: 03:30 CEST (01:30Z), as Joda does
    02:30 (October)      ambiguous     the first (CEST, 00:30Z) unless ``later`` asks for the second
    cron 02:30 (March)   in the gap    :func:`gap_end_ms`: the end of the gap, 03:00 CEST (01:00Z)

Zones are tz database names looked up with :mod:`zoneinfo` (its data is read once per name and
cached by the standard library); a fixed offset written in a schedule is a ``datetime.timezone``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
MAX_MS = (datetime(9999, 12, 30, tzinfo=UTC) - EPOCH) // ONE_MS  # a day short of datetime's end: any offset fits
MIN_MS = 0  # schedules start in 1970 or later (Chronos refuses earlier starts)
MAX_ZONE_NAME = 64  # the longest tz database name is 32 characters
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")


class UnknownTimeZone(ValueError):
    """The name is not a tz database zone; ``str()`` says which."""


def lookup_zone(name: str) -> tzinfo:
    """The tz database zone ``name`` (e.g. ``Europe/Berlin``, ``UTC``); checked before any lookup."""
    if len(name) > MAX_ZONE_NAME or not _ZONE_NAME.fullmatch(name):
        raise UnknownTimeZone(f"Unknown time zone {name[:MAX_ZONE_NAME]!r}: expected a tz database name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:  # a directory ("Europe") is an OSError
        raise UnknownTimeZone(f"Unknown time zone {name!r}") from error


def fixed_zone(offset: timedelta | None) -> tzinfo:
    """A fixed offset read from a timestamp (``Z``, ``+05:30``); no offset means UTC."""
    return UTC if not offset else timezone(offset)


def is_fixed(zone: tzinfo) -> bool:
    """True when the zone never changes its offset (UTC, ``+05:30``): a day is always 86,400 s."""
    return isinstance(zone, timezone) or getattr(zone, "key", None) in ("UTC", "Etc/UTC")


def is_ambiguous(wall: datetime, zone: tzinfo) -> bool:
    """The naive ``wall`` time happens twice in ``zone`` (the hour repeated when clocks go back)."""
    early, late = wall.replace(tzinfo=zone, fold=0).utcoffset(), wall.replace(tzinfo=zone, fold=1).utcoffset()
    return early is not None and late is not None and early > late


def is_skipped(wall: datetime, zone: tzinfo) -> bool:
    """The naive ``wall`` time never happens in ``zone`` (the hour skipped when clocks go forward)."""
    early, late = wall.replace(tzinfo=zone, fold=0).utcoffset(), wall.replace(tzinfo=zone, fold=1).utcoffset()
    return early is not None and late is not None and early < late


def wall_to_ms(wall: datetime, zone: tzinfo, *, later: bool = False) -> int:
    """Epoch ms of the naive ``wall`` time in ``zone`` (see the table above for gaps and repeats)."""
    fold = 1 if later and is_ambiguous(wall, zone) else 0
    return (wall.replace(tzinfo=zone, fold=fold) - EPOCH) // ONE_MS


def gap_end_ms(wall: datetime, zone: tzinfo) -> int:
    """For a skipped ``wall`` time, the instant the clocks jumped (the first moment after the gap).

    The transition lies between the two readings of ``wall`` (with the offsets before and after
    it); zones change offset on whole seconds, so a bisection over seconds finds it.
    """
    low = (wall.replace(tzinfo=zone, fold=1) - EPOCH) // timedelta(seconds=1)  # before the jump
    high = (wall.replace(tzinfo=zone, fold=0) - EPOCH) // timedelta(seconds=1)  # after it
    offset_before = wall.replace(tzinfo=zone, fold=0).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if ms_to_local(middle * 1000, zone).utcoffset() == offset_before:
            low = middle
        else:
            high = middle
    return high * 1000


def ms_to_local(ms: int, zone: tzinfo) -> datetime:
    """The aware local time of epoch ``ms`` in ``zone``."""
    return (EPOCH + ms * ONE_MS).astimezone(zone)


def ms_to_wall(ms: int, zone: tzinfo) -> datetime:
    """The naive wall-clock time of epoch ``ms`` in ``zone``."""
    return ms_to_local(ms, zone).replace(tzinfo=None, fold=0)


def format_ms(ms: int, zone: tzinfo = UTC) -> str:
    """``2014-03-08T20:00:00.000Z``; in another zone with its offset (``...000+01:00``), ``Z`` for +00:00."""
    local = ms_to_local(ms, zone)
    text = local.isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if local.utcoffset() == timedelta(0) else text


def format_wall(wall: datetime, zone: tzinfo) -> str:
    """A naive wall time with the offset :func:`wall_to_ms` reads it with (fold 0): for a time in a
    DST gap, the offset before the gap (``2026-03-29T02:30:00.000+01:00``, which is 03:30 CEST)."""
    local = wall.replace(tzinfo=zone, fold=0)
    text = local.isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if local.utcoffset() == timedelta(0) else text
