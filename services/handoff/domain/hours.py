"""A rep's working calendar: weekly shifts on the rep's own wall clock, minus holidays.

Shifts are wall-clock times ("09:00-17:00" means 09:00 to 17:00 wherever the rep's clock says so),
so DST changes move the UTC instants and never the shape of the working day. A shift belongs to the
day it starts on; "22:00-06:00" on Monday runs into Tuesday morning. A holiday is a day off in the
rep's own calendar: nothing runs on that local date, and a shift that starts on it does not run at
all.

The SLA service keeps its own business-calendar module; this one only answers what routing needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from services.handoff.domain.config import Rep

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday keys of ``working_hours``, in ``date.weekday()`` order."""

CalendarStatus = Literal["working", "holiday", "outside_working_hours"]

DAY_MINUTES = 24 * 60
SEARCH_HORIZON_DAYS = 400
"""How far ``next_working_moment`` looks: a year of holidays plus a margin, then it gives up."""

_SHIFT = re.compile(r"^\s*(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*$")


@dataclass(frozen=True, order=True)
class Shift:
    """One working interval of a weekday, in minutes after the local midnight of the day it starts.

    ``end`` is greater than ``start``; above 1440 the shift runs past midnight into the next day.
    """

    start: int
    end: int

    def __str__(self) -> str:
        end = self.end if self.end == DAY_MINUTES else self.end % DAY_MINUTES
        return f"{_hhmm(self.start)}-{_hhmm(end)}"

    def covers(self, minute_of_day: float) -> bool:
        return self.start <= minute_of_day < self.end


def parse_shift(value: object) -> Shift:
    """``"HH:MM-HH:MM"``; an end before the start crosses midnight, ``24:00`` ends at midnight."""
    if isinstance(value, Shift):
        return value
    match = _SHIFT.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected 'HH:MM-HH:MM' such as '09:00-17:00', got {value!r}")
    start = _minutes(int(match[1]), int(match[2]), allow_24=False)
    end = _minutes(int(match[3]), int(match[4]), allow_24=True)
    if end == start:
        raise ValueError(f"{value!r} is empty; write '00:00-24:00' for a whole day")
    return Shift(start, end if end > start else end + DAY_MINUTES)


def parse_time_zone(name: str) -> ZoneInfo:
    """An IANA zone such as ``Europe/Berlin``; an unknown name is refused with an example."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r} (for example 'Europe/Berlin')") from None


def local_day(rep: Rep, at: datetime) -> date:
    """The date on the rep's own calendar at ``at``: daily capacity counts per this day."""
    return _local(rep, at).date()


def calendar_status(rep: Rep, at: datetime) -> CalendarStatus:
    """Whether ``at`` is working time for the rep, and if not, whether a holiday is the reason."""
    local = _local(rep, at)
    today = local.date()
    if today in rep.holidays:
        return "holiday"
    minute = local.hour * 60 + local.minute + local.second / 60
    if any(shift.covers(minute) for shift in _shifts_on(rep, today)):
        return "working"
    yesterday = today - timedelta(days=1)
    if any(shift.covers(minute + DAY_MINUTES) for shift in _shifts_on(rep, yesterday)):
        return "holiday" if yesterday in rep.holidays else "working"
    return "outside_working_hours"


def is_working(rep: Rep, at: datetime) -> bool:
    """Working hours and holidays only; activity and out-of-office are routing's business."""
    return calendar_status(rep, at) == "working"


def next_working_moment(rep: Rep, at: datetime) -> datetime | None:
    """The first instant at or after ``at`` that is working time (UTC), or None within a year.

    Working time can only begin at ``at`` itself, at a shift start or at a local midnight (the end
    of a holiday), so trying those in order finds the earliest one.
    """
    if is_working(rep, at):
        return at.astimezone(UTC)
    zone = parse_time_zone(rep.time_zone)
    first_day = _local(rep, at).date()
    for offset in range(SEARCH_HORIZON_DAYS):
        day = first_day + timedelta(days=offset)
        starts = {0} | {shift.start for shift in _shifts_on(rep, day)}
        for minute in sorted(starts):
            candidate = _first_instant_at_wall(day, minute, zone)
            if candidate > at and is_working(rep, candidate):
                return candidate
    return None


def _first_instant_at_wall(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The first UTC instant at which the local clock reads ``day`` ``minute`` or later.

    On a fall-back day that is the first of the two occurrences; a time skipped by spring-forward
    is reached when the clock jumps over it, which only a search can find (the jump's size and
    wall time vary by zone).
    """
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    first, second = (wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
    if first <= second:
        return first
    low, high = second, first  # in the gap: the clock jumps somewhere in (low, high]
    while high - low > timedelta(minutes=1):
        middle = low + (high - low) // 2
        middle -= timedelta(seconds=middle.second, microseconds=middle.microsecond)
        if middle <= low:
            break
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high


def require_aware(at: datetime) -> None:
    """Domain time is always an aware instant; a naive one would silently mean the host's zone."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {at.isoformat()}")


def _local(rep: Rep, at: datetime) -> datetime:
    require_aware(at)
    return at.astimezone(parse_time_zone(rep.time_zone))


def _shifts_on(rep: Rep, day: date) -> tuple[Shift, ...]:
    return rep.working_hours.get(WEEKDAYS[day.weekday()], ())


def _minutes(hours: int, minutes: int, *, allow_24: bool) -> int:
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise ValueError(f"{hours:02d}:{minutes:02d} is not a time of day")
    return hours * 60 + minutes


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
