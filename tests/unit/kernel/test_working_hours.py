"""Working hours on the calendar's own clock: time zones, night shifts, DST days and holidays."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from leadrelay.calendar import WEEKDAYS, Weekday, calendar_status, is_working, next_working_moment

from .helpers import AROUND_THE_CLOCK, OFFICE, calendar, utc

EVERY_DAY_OFFICE: dict[Weekday, list[str]] = {day: ["09:00-17:00"] for day in WEEKDAYS}


@pytest.mark.parametrize(
    ("moment", "working"),
    [
        ("2025-06-02T00:00+00:00", True),  # Monday 09:00 in Tokyo
        ("2025-06-01T23:59+00:00", False),  # Sunday in UTC, Monday 08:59 in Tokyo
        ("2025-06-06T07:59+00:00", True),  # Friday 16:59 in Tokyo
        ("2025-06-06T08:00+00:00", False),  # Friday 17:00 in Tokyo: the day is over
    ],
)
def test_tokyo_day_starts_before_midnight_utc(moment: str, working: bool) -> None:
    cal = calendar(time_zone="Asia/Tokyo", working_hours=OFFICE)
    assert is_working(cal, utc(moment)) is working


@pytest.mark.parametrize(
    ("moment", "working"),
    [
        ("2025-06-02T23:30+00:00", True),  # Monday 16:30 in Los Angeles
        ("2025-06-03T00:30+00:00", False),  # Tuesday in UTC, Monday 17:30 in Los Angeles
        ("2025-06-07T00:30+00:00", False),  # Saturday in UTC, Friday 17:30 in Los Angeles
        ("2025-06-06T23:59+00:00", True),  # Friday 16:59 in Los Angeles
    ],
)
def test_los_angeles_day_ends_after_midnight_utc(moment: str, working: bool) -> None:
    cal = calendar(time_zone="America/Los_Angeles", working_hours=OFFICE)
    assert is_working(cal, utc(moment)) is working


@pytest.mark.parametrize(
    ("moment", "working"),
    [
        ("2025-06-02T21:59+00:00", False),
        ("2025-06-02T22:00+00:00", True),
        ("2025-06-03T05:59+00:00", True),  # Tuesday morning belongs to Monday's shift
        ("2025-06-03T06:00+00:00", False),
        ("2025-06-01T23:00+00:00", False),  # Sunday night: no Sunday shift
        ("2025-06-03T22:30+00:00", False),  # no Tuesday shift
    ],
)
def test_night_shift_runs_past_midnight(moment: str, working: bool) -> None:
    cal = calendar(working_hours={"mon": ["22:00-06:00"]})
    assert is_working(cal, utc(moment)) is working


@pytest.mark.parametrize(
    ("moment", "working"),
    [
        ("2025-03-29T21:00+00:00", True),  # Saturday 22:00 CET
        ("2025-03-30T00:59+00:00", True),  # 01:59 CET, just before the clocks jump to 03:00
        ("2025-03-30T01:00+00:00", True),  # 03:00 CEST
        ("2025-03-30T03:59+00:00", True),  # 05:59 CEST
        ("2025-03-30T04:00+00:00", False),  # 06:00 CEST: a 7-hour night
    ],
)
def test_night_shift_over_berlin_spring_forward(moment: str, working: bool) -> None:
    cal = calendar(time_zone="Europe/Berlin", working_hours={"sat": ["22:00-06:00"]})
    assert is_working(cal, utc(moment)) is working


@pytest.mark.parametrize(
    ("moment", "working"),
    [
        ("2025-10-25T20:00+00:00", True),  # Saturday 22:00 CEST
        ("2025-10-26T00:30+00:00", True),  # the first 02:30 (CEST)
        ("2025-10-26T01:30+00:00", True),  # the second 02:30 (CET)
        ("2025-10-26T04:59+00:00", True),  # 05:59 CET
        ("2025-10-26T05:00+00:00", False),  # 06:00 CET: a 9-hour night
    ],
)
def test_night_shift_over_berlin_fall_back(moment: str, working: bool) -> None:
    cal = calendar(time_zone="Europe/Berlin", working_hours={"sat": ["22:00-06:00"]})
    assert is_working(cal, utc(moment)) is working


@pytest.mark.parametrize(
    ("moment", "working"),
    [
        ("2025-03-08T13:30+00:00", False),  # Saturday 08:30 EST
        ("2025-03-08T14:00+00:00", True),  # Saturday 09:00 EST
        ("2025-03-09T13:00+00:00", True),  # Sunday 09:00 EDT: an hour earlier in UTC
        ("2025-03-09T21:00+00:00", False),  # Sunday 17:00 EDT
        ("2025-11-01T13:00+00:00", True),  # Saturday 09:00 EDT
        ("2025-11-02T13:30+00:00", False),  # Sunday 08:30 EST
        ("2025-11-02T21:59+00:00", True),  # Sunday 16:59 EST
        ("2025-11-02T22:00+00:00", False),
    ],
)
def test_new_york_office_hours_follow_dst(moment: str, working: bool) -> None:
    cal = calendar(time_zone="America/New_York", working_hours=EVERY_DAY_OFFICE)
    assert is_working(cal, utc(moment)) is working


@pytest.mark.parametrize(
    ("moment", "status"),
    [
        ("2025-06-03T14:59+00:00", "working"),  # Tuesday 23:59 in Tokyo
        ("2025-06-03T15:00+00:00", "holiday"),  # the holiday starts at Tokyo midnight
        ("2025-06-04T14:59+00:00", "holiday"),
        ("2025-06-04T15:00+00:00", "working"),
    ],
)
def test_holiday_is_a_day_in_the_reps_own_calendar(moment: str, status: str) -> None:
    cal = calendar(
        time_zone="Asia/Tokyo", working_hours=AROUND_THE_CLOCK, holidays=[date(2025, 6, 4)]
    )
    assert calendar_status(cal, utc(moment)) == status


def test_holiday_cancels_a_night_shift_that_starts_on_it() -> None:
    cal = calendar(working_hours={"mon": ["22:00-06:00"]}, holidays=[date(2025, 6, 2)])
    assert calendar_status(cal, utc("2025-06-02T23:00+00:00")) == "holiday"
    assert calendar_status(cal, utc("2025-06-03T02:00+00:00")) == "holiday"
    assert calendar_status(cal, utc("2025-06-09T23:00+00:00")) == "working"


def test_next_working_moment_after_a_weekend_is_monday_morning_local() -> None:
    cal = calendar(time_zone="Europe/Berlin", working_hours=OFFICE)
    friday_evening = utc("2025-06-06T17:30+02:00")
    assert next_working_moment(cal, friday_evening) == utc("2025-06-09T09:00+02:00")


def test_next_working_moment_skips_holidays() -> None:
    cal = calendar(time_zone="Europe/Berlin", working_hours=OFFICE, holidays=[date(2025, 6, 9)])
    assert next_working_moment(cal, utc("2025-06-06T17:30+02:00")) == utc("2025-06-10T09:00+02:00")


def test_next_working_moment_while_working_is_now() -> None:
    cal = calendar(time_zone="Europe/Berlin", working_hours=OFFICE)
    assert next_working_moment(cal, utc("2025-06-04T10:00+02:00")) == utc("2025-06-04T10:00+02:00")


def test_shift_starting_in_the_spring_forward_gap_starts_when_the_clock_jumps() -> None:
    cal = calendar(time_zone="Europe/Berlin", working_hours={"sun": ["02:30-04:00"]})
    found = next_working_moment(cal, utc("2025-03-29T23:00+00:00"))
    assert found == utc("2025-03-30T03:00+02:00")


def test_shift_starting_in_the_repeated_fall_back_hour_starts_at_its_first_occurrence() -> None:
    cal = calendar(time_zone="America/New_York", working_hours={"sun": ["01:30-03:00"]})
    found = next_working_moment(cal, utc("2025-11-02T00:00-04:00"))
    assert found == utc("2025-11-02T01:30-04:00")


def test_rep_without_any_working_hours_has_no_next_working_moment() -> None:
    cal = calendar(working_hours={})
    assert next_working_moment(cal, utc("2025-06-04T10:00+00:00")) is None


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_working(calendar(), datetime(2025, 6, 4, 12, 0))
