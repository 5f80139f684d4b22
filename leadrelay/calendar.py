"""The one business calendar: working hours, time zones, holidays and business-time arithmetic.

Routing asks whether a rep is working now (:func:`calendar_status`, :func:`next_working_moment`);
SLA promises to sales are made in *business* time ("first touch within 1 business hour"), so a lead
assigned on Friday evening is not overdue on Saturday morning. Everything here is pure: instants go
in and come out as timezone-aware datetimes (results are always UTC), and the calendar's own time
zone decides what "09:00 on a Monday" is, including across daylight-saving changes.

Semantics worth knowing:

* Working intervals are local wall-clock times per weekday, e.g. ``mon: ["09:00-17:00"]``; the
  hour may have one digit (``"9:00-17:00"``). An interval may cross midnight (``"22:00-06:00"``);
  ``24:00`` means midnight at the end of the day, and an end equal to the start is a whole day.
  An interval belongs to the day it *starts* on: a holiday removes the intervals starting that day.
* Business time is real elapsed time inside working intervals. A 09:00-17:00 day is 8 business
  hours all year; a night shift spanning a DST change is one hour shorter or longer, as a clock on
  the wall of that office would show.
* A wall time that does not exist (the spring-forward gap) is read with the offset in force before
  the change, i.e. it lands just after the gap; an ambiguous wall time (fall-back) means its first
  occurrence.
* ``add_business_time`` returns the *earliest* instant at which the duration has elapsed, so a
  deadline that uses up a whole day lands on that day's close (17:00), not the next opening.
* Absences (out-of-office periods, as UTC intervals) are removed from the working intervals for
  business-time arithmetic (``add_business_time``, ``business_time_between``,
  ``add_business_days``), so a clock counting in a rep's calendar with their absences pauses while
  they are away. ``calendar_status`` answers working hours and holidays only: routing checks
  out-of-office itself and names it as the reason.
* ``add_business_days``: ``1bd`` is the same business moment on the next business day (Tuesday
  10:00 -> Wednesday 10:00; Friday 15:00 -> Monday 15:00). A start outside working hours counts from
  the next opening, so Saturday + 1bd is the close of Monday. If the target day is shorter than the
  position within the day (a short Friday), the deadline is that day's close.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leadrelay.memo import Memo

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Keys of ``weekly_hours`` in ``date.weekday()`` order; full English names ("monday") are
accepted too."""

CalendarStatus = Literal["working", "holiday", "outside_working_hours"]

DEFAULT_WEEKLY_HOURS: Mapping[str, tuple[str, ...]] = {
    day: ("09:00-17:00",) for day in ("mon", "tue", "wed", "thu", "fri")
}

_MINUTES_PER_DAY = 24 * 60
_MAX_DAYS_WITHOUT_WORK = 3660
_DAYS_KEPT = 4096
"""Most days a calendar keeps worked out (``BusinessCalendar.day_intervals``)."""
"""A calendar with no working time for ten years is broken; stop instead of looping forever."""
SEARCH_HORIZON_DAYS = 400
"""How far ``next_working_moment`` looks: a year of holidays plus a margin, then it gives up."""

_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

UtcInterval = tuple[datetime, datetime]


@dataclass(frozen=True, order=True)
class WorkInterval:
    """One working interval as minutes after local midnight; ``end`` > 1440 crosses midnight."""

    start: int
    end: int

    @property
    def text(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    def __str__(self) -> str:
        return self.text

    def covers(self, minute_of_day: float) -> bool:
        return self.start <= minute_of_day < self.end


@dataclass(frozen=True)
class BusinessCalendar:
    """When a rep (or a team) works: a time zone, intervals per weekday (0 = Monday), holidays
    and absences (UTC intervals not worked, such as out-of-office periods).

    Build one with :meth:`from_parts`; the constructor expects already-validated parts.
    """

    time_zone: ZoneInfo
    weekly: tuple[tuple[WorkInterval, ...], ...]
    holidays: frozenset[date] = frozenset()
    absences: tuple[UtcInterval, ...] = ()
    _days: Memo[date, tuple[UtcInterval, ...]] = field(
        default_factory=lambda: Memo(_DAYS_KEPT), init=False, compare=False, repr=False
    )
    """``day_intervals`` already worked out: every deadline and business-time count walks a few
    days of the same calendars, and each day costs two zone conversions per interval."""

    @classmethod
    def from_parts(
        cls,
        time_zone: str | ZoneInfo,
        weekly_hours: Mapping[str, Sequence[str]] | None = None,
        holidays: Iterable[date] = (),
    ) -> BusinessCalendar:
        """Build a calendar from the fields a definitions file or a rep's roster entry holds.

        ``weekly_hours`` maps ``mon``..``sun`` to lists of ``"HH:MM-HH:MM"``; days left out are
        not worked; ``None`` means Monday to Friday 09:00-17:00. Raises ``ValueError`` naming the
        bad part.
        """
        zone = time_zone if isinstance(time_zone, ZoneInfo) else parse_time_zone(time_zone)
        hours = DEFAULT_WEEKLY_HOURS if weekly_hours is None else weekly_hours
        return cls(zone, parse_weekly_hours(hours), frozenset(holidays))

    @classmethod
    def of_week(
        cls,
        time_zone: str,
        week: Mapping[Weekday, Sequence[WorkInterval]],
        holidays: Iterable[date] = (),
    ) -> BusinessCalendar:
        """A calendar from intervals already parsed per weekday, without the whole-week checks.

        A rep's roster entry may have no working hours at all (nobody routes to them); such a
        calendar answers :func:`calendar_status` but cannot count business time.
        """
        weekly = tuple(tuple(sorted(week.get(day, ()))) for day in WEEKDAYS)
        return cls(parse_time_zone(time_zone), weekly, frozenset(holidays))

    def with_absences(self, periods: Iterable[UtcInterval]) -> BusinessCalendar:
        """This calendar with ``periods`` (aware ``(start, end)``, end exclusive) not worked too.

        Empty or inverted periods are ignored; overlapping ones are merged.
        """
        spans = sorted((to_utc(start), to_utc(end)) for start, end in (*self.absences, *periods))
        merged: list[UtcInterval] = []
        for start, end in spans:
            if end <= start:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return replace(self, absences=tuple(merged))

    def day_intervals(self, day: date) -> tuple[UtcInterval, ...]:
        """The non-empty working intervals starting on local ``day``, as UTC instants, in order,
        minus the absences."""
        return self._days.get(day, partial(self._worked_on, day))

    def _worked_on(self, day: date) -> tuple[UtcInterval, ...]:
        if day in self.holidays:
            return ()
        spans = (
            (self._instant(day, iv.start), self._instant(day, iv.end))
            for iv in self.weekly[day.weekday()]
        )
        worked = tuple((start, end) for start, end in spans if start < end)
        return _without(worked, self.absences) if self.absences else worked

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.time_zone).date()

    def _instant(self, day: date, minutes: int) -> datetime:
        days, minute_of_day = divmod(minutes, _MINUTES_PER_DAY)
        wall = time(minute_of_day // 60, minute_of_day % 60)
        local = datetime.combine(day + timedelta(days=days), wall, tzinfo=self.time_zone)
        return local.astimezone(UTC)


def _without(
    spans: Sequence[UtcInterval], absences: Sequence[UtcInterval]
) -> tuple[UtcInterval, ...]:
    """``spans`` with every moment of ``absences`` cut out (both sorted, absences disjoint)."""
    kept: list[UtcInterval] = []
    for start, end in spans:
        cursor = start
        for away_from, away_until in absences:
            if away_until <= cursor or away_from >= end:
                continue
            if away_from > cursor:
                kept.append((cursor, away_from))
            cursor = max(cursor, away_until)
        if cursor < end:
            kept.append((cursor, end))
    return tuple(kept)


def parse_time_zone(name: str) -> ZoneInfo:
    """An IANA zone such as ``Europe/Berlin``; anything else is refused with a hint."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from exc


def parse_weekly_hours(hours: Mapping[str, Sequence[str]]) -> tuple[tuple[WorkInterval, ...], ...]:
    """Validate ``{mon: ["09:00-12:00", "13:00-17:00"], ...}`` into seven sorted interval tuples.

    Refuses unknown or repeated day names, malformed intervals, overlaps within a day, a night shift
    running into the next day's first interval, and a week without any working time.
    """
    week: list[tuple[WorkInterval, ...]] = [() for _ in WEEKDAYS]
    seen: set[int] = set()
    for key, texts in hours.items():
        index = _weekday_index(key)
        if index in seen:
            raise ValueError(f"{key}: {WEEKDAYS[index]} is listed twice")
        seen.add(index)
        if isinstance(texts, str):
            raise ValueError(f"{key}: expected a list of intervals like ['09:00-17:00']")
        week[index] = tuple(sorted(parse_interval(text) for text in texts))
    for index, day in enumerate(week):
        _check_no_overlap(WEEKDAYS[index], day, week[(index + 1) % 7])
    if not any(week):
        raise ValueError("no working hours on any day of the week")
    return tuple(week)


def parse_interval(text: object) -> WorkInterval:
    """``"HH:MM-HH:MM"``; an end at or before the start means the interval crosses midnight."""
    if isinstance(text, WorkInterval):
        return text
    match = _INTERVAL.match(text) if isinstance(text, str) else None
    if match is None or not isinstance(text, str):
        raise ValueError(f"invalid interval {text!r}: expected 'HH:MM-HH:MM', e.g. '09:00-17:00'")
    start = _minutes(text, int(match[1]), int(match[2]), allow_24=False)
    end = _minutes(text, int(match[3]), int(match[4]), allow_24=True)
    if end <= start:
        end += _MINUTES_PER_DAY
    if end - start > _MINUTES_PER_DAY:
        raise ValueError(f"invalid interval {text!r}: longer than 24 hours")
    return WorkInterval(start, end)


def add_business_time(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    """The earliest instant by which ``duration`` of working time has passed since ``start``.

    A start outside working hours counts from the next opening (Friday 18:00 + 1 business hour is
    Monday 10:00 local). A zero duration returns ``start`` itself.
    """
    cursor = to_utc(start)
    if duration < timedelta(0):
        raise ValueError("business durations are never negative")
    remaining = duration
    if not remaining:
        return cursor
    for opens, closes in _intervals_from(calendar, cursor):
        opens = max(opens, cursor)
        if closes <= opens:
            continue
        if remaining <= closes - opens:
            return opens + remaining
        remaining -= closes - opens
    raise AssertionError("unreachable: _intervals_from never ends")  # pragma: no cover


def business_time_between(calendar: BusinessCalendar, a: datetime, b: datetime) -> timedelta:
    """Working time from ``a`` to ``b``; negative when ``b`` is before ``a``."""
    a, b = to_utc(a), to_utc(b)
    if b < a:
        return -business_time_between(calendar, b, a)
    total = timedelta(0)
    for opens, closes in _intervals_from(calendar, a):
        if opens >= b:
            break
        overlap = min(closes, b) - max(opens, a)
        if overlap > timedelta(0):
            total += overlap
    return total


def add_business_days(calendar: BusinessCalendar, start: datetime, days: int) -> datetime:
    """The same business moment ``days`` business days later (see the module notes)."""
    if days < 1:
        raise ValueError("business days to add must be at least 1")
    cursor = to_utc(start)
    business_days = _business_days_from(calendar, calendar.local_date(cursor) - timedelta(days=1))
    intervals = next(iv for _day, iv in business_days if iv[-1][1] > cursor)
    offset = _offset_within(intervals, cursor)
    if not offset:
        # The opening of a day is the same business moment as the previous business day's close.
        days -= 1
    for _ in range(days):
        _day, intervals = next(business_days)
    return _instant_at_offset(intervals, offset) if offset else intervals[-1][1]


def _offset_within(intervals: Sequence[UtcInterval], instant: datetime) -> timedelta:
    """Working time from the day's first opening up to ``instant``."""
    return sum(
        (min(closes, instant) - opens for opens, closes in intervals if opens < instant),
        timedelta(0),
    )


def _instant_at_offset(intervals: Sequence[UtcInterval], offset: timedelta) -> datetime:
    """The earliest instant ``offset`` of working time into a day, capped at the day's close."""
    for opens, closes in intervals:
        if offset <= closes - opens:
            return opens + offset
        offset -= closes - opens
    return intervals[-1][1]


def _business_days_from(
    calendar: BusinessCalendar, first: date
) -> Iterator[tuple[date, tuple[UtcInterval, ...]]]:
    """Local dates from ``first`` on that have working time, with their intervals."""
    day, idle = first, 0
    while idle < _MAX_DAYS_WITHOUT_WORK:
        intervals = calendar.day_intervals(day)
        if intervals:
            idle = 0
            yield day, intervals
        else:
            idle += 1
        day += timedelta(days=1)
    raise ValueError(f"the calendar has no working time for {_MAX_DAYS_WITHOUT_WORK} days")


def _intervals_from(calendar: BusinessCalendar, instant: datetime) -> Iterator[UtcInterval]:
    """Working intervals in time order, starting with the day before ``instant`` (night shifts)."""
    first = calendar.local_date(instant) - timedelta(days=1)
    for _day, intervals in _business_days_from(calendar, first):
        yield from intervals


def calendar_status(calendar: BusinessCalendar, at: datetime) -> CalendarStatus:
    """Whether ``at`` is working time, and if not, whether a holiday is the reason.

    Routing's question: a holiday is a day off, so nothing runs on that local date, and a night
    shift that started on a holiday does not run into the next morning either.
    """
    local = to_utc(at).astimezone(calendar.time_zone)
    today = local.date()
    if today in calendar.holidays:
        return "holiday"
    minute = local.hour * 60 + local.minute + local.second / 60
    if any(interval.covers(minute) for interval in calendar.weekly[today.weekday()]):
        return "working"
    yesterday = today - timedelta(days=1)
    if any(iv.covers(minute + _MINUTES_PER_DAY) for iv in calendar.weekly[yesterday.weekday()]):
        return "holiday" if yesterday in calendar.holidays else "working"
    return "outside_working_hours"


def is_working(calendar: BusinessCalendar, at: datetime) -> bool:
    """Working hours and holidays only; activity and out-of-office are routing's business."""
    return calendar_status(calendar, at) == "working"


def next_working_moment(calendar: BusinessCalendar, at: datetime) -> datetime | None:
    """The first instant at or after ``at`` that is working time (UTC), or None within a year.

    Working time can only begin at ``at`` itself, at a shift start or at a local midnight (the end
    of a holiday), so trying those in order finds the earliest one.
    """
    if is_working(calendar, at):
        return to_utc(at)
    first_day = calendar.local_date(at)
    for offset in range(SEARCH_HORIZON_DAYS):
        day = first_day + timedelta(days=offset)
        starts = {0} | {interval.start for interval in calendar.weekly[day.weekday()]}
        for minute in sorted(starts):
            candidate = _first_instant_at_wall(day, minute, calendar.time_zone)
            if candidate > at and is_working(calendar, candidate):
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


def to_utc(instant: datetime) -> datetime:
    """Refuse naive datetimes (whose zone is a guess) and express aware ones in UTC."""
    require_aware(instant)
    return instant.astimezone(UTC)


def require_aware(instant: datetime, name: str = "instant") -> None:
    """Domain time is always an aware instant; a naive one would silently mean the host's zone.

    Called where time enters a domain (``name`` says which value), not where it is compared."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(
            f"{name} is a naive datetime ({instant.isoformat()}): pass a timezone-aware instant"
        )


def _weekday_index(key: str) -> int:
    index = _DAY_NAMES.get(key.strip().lower()) if isinstance(key, str) else None
    if index is None:
        raise ValueError(f"unknown day {key!r}: use one of {', '.join(WEEKDAYS)}")
    return index


_DAY_NAMES: Mapping[str, int] = {
    **{name: index for index, name in enumerate(WEEKDAYS)},
    **{
        name: index
        for index, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
}


def _minutes(text: str, hours: int, minutes: int, *, allow_24: bool) -> int:
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise ValueError(f"invalid interval {text!r}: {hours:02d}:{minutes:02d} is not a time")
    return hours * 60 + minutes


def _check_no_overlap(
    name: str, day: tuple[WorkInterval, ...], next_day: tuple[WorkInterval, ...]
) -> None:
    for earlier, later in pairwise(day):
        if later.start < earlier.end:
            raise ValueError(f"{name}: intervals {earlier.text} and {later.text} overlap")
    if day and next_day and day[-1].end - _MINUTES_PER_DAY > next_day[0].start:
        raise ValueError(f"{name}: {day[-1].text} runs into the next day's {next_day[0].text}")


def _hhmm(minutes: int) -> str:
    """``24:00`` for an end at midnight; a next-day end shows its wall time (``22:00-06:00``)."""
    wall = minutes if minutes == _MINUTES_PER_DAY else minutes % _MINUTES_PER_DAY
    return f"{wall // 60:02d}:{wall % 60:02d}"
