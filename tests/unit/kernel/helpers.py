"""Calendars and instants for the kernel's calendar tests, written as a definitions file would."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from leadrelay.calendar import WEEKDAYS, BusinessCalendar, Weekday, parse_interval

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE: dict[Weekday, list[str]] = {day: ["09:00-17:00"] for day in WEEKDAYS[:5]}
AROUND_THE_CLOCK: dict[Weekday, list[str]] = {day: ["00:00-24:00"] for day in WEEKDAYS}


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def new_york(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


def utc(text: str) -> datetime:
    """An instant written with its offset, e.g. ``2025-03-30T09:00+02:00``."""
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, "write the offset so the test says which instant it means"
    return moment


def calendar(
    time_zone: str = "UTC",
    working_hours: Mapping[Weekday, Sequence[str]] = OFFICE,
    holidays: Iterable[date] = (),
) -> BusinessCalendar:
    """A rep's calendar as the roster holds it: any week, even one without working time."""
    week = {day: [parse_interval(text) for text in texts] for day, texts in working_hours.items()}
    return BusinessCalendar.of_week(time_zone, week, holidays)
