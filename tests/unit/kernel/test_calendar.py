"""Business-time arithmetic: what a rep's deadline is, wherever and whenever the lead arrives."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadrelay.calendar import (
    BusinessCalendar,
    add_business_days,
    add_business_time,
    business_time_between,
    calendar_status,
)
from leadrelay.durations import parse_duration

from .helpers import berlin, new_york

NINE_TO_FIVE = BusinessCalendar.from_parts("Europe/Berlin")
NEW_YORK_OFFICE = BusinessCalendar.from_parts("America/New_York")
NIGHT_SHIFT = BusinessCalendar.from_parts(
    "Europe/Berlin",
    {day: ["22:00-06:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
)
HOURS = timedelta(hours=1)


class TestAddBusinessTime:
    def test_friday_evening_lead_is_due_monday_morning(self) -> None:
        # 2026-01-16 is a Friday.
        due = add_business_time(NINE_TO_FIVE, berlin(2026, 1, 16, 18, 0), HOURS)
        assert due == berlin(2026, 1, 19, 10, 0)

    def test_result_is_utc(self) -> None:
        due = add_business_time(NINE_TO_FIVE, berlin(2026, 1, 13, 10, 0), HOURS)
        assert due.tzinfo is UTC
        assert due == datetime(2026, 1, 13, 10, 0, tzinfo=UTC)

    def test_within_the_day(self) -> None:
        assert add_business_time(NINE_TO_FIVE, berlin(2026, 1, 13, 10, 0), HOURS) == berlin(
            2026, 1, 13, 11, 0
        )

    def test_spills_over_the_close_into_the_next_morning(self) -> None:
        due = add_business_time(NINE_TO_FIVE, berlin(2026, 1, 13, 16, 30), HOURS)
        assert due == berlin(2026, 1, 14, 9, 30)

    def test_a_deadline_that_uses_the_whole_day_is_the_close_not_the_next_opening(self) -> None:
        due = add_business_time(NINE_TO_FIVE, berlin(2026, 1, 13, 9, 0), 8 * HOURS)
        assert due == berlin(2026, 1, 13, 17, 0)

    def test_weekend_is_skipped(self) -> None:
        due = add_business_time(NINE_TO_FIVE, berlin(2026, 1, 16, 16, 0), 2 * HOURS)
        assert due == berlin(2026, 1, 19, 10, 0)

    def test_holidays_are_skipped(self) -> None:
        calendar = BusinessCalendar.from_parts("Europe/Berlin", holidays=[date(2026, 12, 24)])
        # Wednesday 23rd 16:30, Thursday 24th is a holiday.
        due = add_business_time(calendar, berlin(2026, 12, 23, 16, 30), HOURS)
        assert due == berlin(2026, 12, 25, 9, 30)

    def test_deadline_spanning_several_days(self) -> None:
        # Monday 10:00 + 20 business hours: 7 on Monday, 8 on Tuesday, 5 on Wednesday.
        due = add_business_time(NINE_TO_FIVE, berlin(2026, 1, 12, 10, 0), 20 * HOURS)
        assert due == berlin(2026, 1, 14, 14, 0)

    def test_lunch_break_is_not_counted(self) -> None:
        calendar = BusinessCalendar.from_parts(
            "Europe/Berlin", {"mon": ["09:00-12:00", "13:00-17:00"]}
        )
        due = add_business_time(calendar, berlin(2026, 1, 12, 11, 30), HOURS)
        assert due == berlin(2026, 1, 12, 13, 30)

    def test_before_opening_counts_from_the_opening(self) -> None:
        due = add_business_time(NINE_TO_FIVE, berlin(2026, 1, 13, 6, 0), HOURS)
        assert due == berlin(2026, 1, 13, 10, 0)

    def test_same_instant_different_time_zones(self) -> None:
        instant = datetime(2026, 1, 13, 16, 30, tzinfo=UTC)  # 17:30 Berlin, 11:30 New York
        assert add_business_time(NINE_TO_FIVE, instant, HOURS) == berlin(2026, 1, 14, 10, 0)
        assert add_business_time(NEW_YORK_OFFICE, instant, HOURS) == new_york(2026, 1, 13, 12, 30)

    def test_zero_duration_is_the_start(self) -> None:
        start = berlin(2026, 1, 17, 12, 0)
        assert add_business_time(NINE_TO_FIVE, start, timedelta(0)) == start

    def test_naive_datetimes_are_refused(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            add_business_time(NINE_TO_FIVE, datetime(2026, 1, 13, 10, 0), HOURS)

    def test_negative_durations_are_refused(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            add_business_time(NINE_TO_FIVE, berlin(2026, 1, 13, 10, 0), -HOURS)


class TestDaylightSaving:
    def test_berlin_spring_forward_over_the_weekend(self) -> None:
        # Clocks go forward on Sunday 2026-03-29: Friday is CET (+1), Monday CEST (+2).
        due = add_business_time(NINE_TO_FIVE, berlin(2026, 3, 27, 16, 30), HOURS)
        assert due == berlin(2026, 3, 30, 9, 30)
        assert due == datetime(2026, 3, 30, 7, 30, tzinfo=UTC)

    def test_berlin_fall_back_over_the_weekend(self) -> None:
        # Clocks go back on Sunday 2026-10-25.
        due = add_business_time(NINE_TO_FIVE, berlin(2026, 10, 23, 16, 0), 2 * HOURS)
        assert due == berlin(2026, 10, 26, 10, 0)
        assert due == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)

    def test_new_york_spring_forward(self) -> None:
        # Clocks go forward on Sunday 2026-03-08.
        due = add_business_time(NEW_YORK_OFFICE, new_york(2026, 3, 6, 16, 0), 3 * HOURS)
        assert due == new_york(2026, 3, 9, 11, 0)
        assert due == datetime(2026, 3, 9, 15, 0, tzinfo=UTC)

    def test_new_york_fall_back(self) -> None:
        # Clocks go back on Sunday 2026-11-01.
        due = add_business_time(NEW_YORK_OFFICE, new_york(2026, 10, 30, 16, 0), 3 * HOURS)
        assert due == new_york(2026, 11, 2, 11, 0)
        assert due == datetime(2026, 11, 2, 16, 0, tzinfo=UTC)

    def test_a_working_day_is_eight_hours_on_both_sides_of_the_change(self) -> None:
        for monday in (berlin(2026, 3, 23, 0, 0), berlin(2026, 3, 30, 0, 0)):
            week = business_time_between(NINE_TO_FIVE, monday, monday + timedelta(days=7))
            assert week == 40 * HOURS

    def test_night_shift_is_an_hour_shorter_on_the_spring_forward_night(self) -> None:
        saturday_night = business_time_between(
            NIGHT_SHIFT, berlin(2026, 3, 28, 21, 0), berlin(2026, 3, 29, 7, 0)
        )
        assert saturday_night == 7 * HOURS

    def test_night_shift_is_an_hour_longer_on_the_fall_back_night(self) -> None:
        saturday_night = business_time_between(
            NIGHT_SHIFT, berlin(2026, 10, 24, 21, 0), berlin(2026, 10, 25, 7, 0)
        )
        assert saturday_night == 9 * HOURS

    def test_wall_clock_hours_are_real_hours_across_the_change(self) -> None:
        start = berlin(2026, 3, 29, 1, 0)  # one hour before the jump
        assert parse_duration("4h").after(NINE_TO_FIVE, start) == berlin(2026, 3, 29, 6, 0)


class TestIntervalsCrossingMidnight:
    def test_deadline_inside_a_night_shift(self) -> None:
        # Tuesday 23:00 + 2bh runs past midnight into Wednesday 01:00.
        due = add_business_time(NIGHT_SHIFT, berlin(2026, 1, 13, 23, 0), 2 * HOURS)
        assert due == berlin(2026, 1, 14, 1, 0)

    def test_start_in_the_early_morning_belongs_to_the_previous_nights_shift(self) -> None:
        due = add_business_time(NIGHT_SHIFT, berlin(2026, 1, 14, 5, 0), 2 * HOURS)
        assert due == berlin(2026, 1, 14, 23, 0)

    def test_holiday_removes_the_shift_starting_that_evening(self) -> None:
        calendar = BusinessCalendar.from_parts(
            "Europe/Berlin",
            {day: ["22:00-06:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
            holidays=[date(2026, 12, 24)],
        )
        due = add_business_time(calendar, berlin(2026, 12, 24, 5, 0), 2 * HOURS)
        assert due == berlin(2026, 12, 25, 23, 0)


class TestBusinessTimeBetween:
    def test_counts_only_working_hours(self) -> None:
        between = business_time_between(
            NINE_TO_FIVE, berlin(2026, 1, 16, 16, 0), berlin(2026, 1, 19, 10, 0)
        )
        assert between == 2 * HOURS

    def test_reversed_order_is_negative(self) -> None:
        a, b = berlin(2026, 1, 13, 10, 0), berlin(2026, 1, 13, 12, 0)
        assert business_time_between(NINE_TO_FIVE, b, a) == -2 * HOURS

    def test_outside_hours_only_is_zero(self) -> None:
        between = business_time_between(
            NINE_TO_FIVE, berlin(2026, 1, 17, 8, 0), berlin(2026, 1, 18, 20, 0)
        )
        assert between == timedelta(0)


class TestBusinessDays:
    @pytest.mark.parametrize(
        ("start", "days", "due"),
        [
            pytest.param(berlin(2026, 1, 13, 10, 0), 1, berlin(2026, 1, 14, 10, 0), id="tue-wed"),
            pytest.param(berlin(2026, 1, 16, 15, 0), 1, berlin(2026, 1, 19, 15, 0), id="fri-mon"),
            pytest.param(berlin(2026, 1, 17, 12, 0), 1, berlin(2026, 1, 19, 17, 0), id="sat"),
            pytest.param(berlin(2026, 1, 16, 18, 0), 1, berlin(2026, 1, 19, 17, 0), id="fri-eve"),
            pytest.param(berlin(2026, 1, 13, 9, 0), 1, berlin(2026, 1, 13, 17, 0), id="opening"),
            pytest.param(berlin(2026, 1, 13, 10, 0), 2, berlin(2026, 1, 15, 10, 0), id="2bd"),
            pytest.param(berlin(2026, 3, 27, 10, 0), 1, berlin(2026, 3, 30, 10, 0), id="dst"),
        ],
    )
    def test_same_business_moment_on_a_later_business_day(
        self, start: datetime, days: int, due: datetime
    ) -> None:
        assert add_business_days(NINE_TO_FIVE, start, days) == due

    def test_holiday_is_not_a_business_day(self) -> None:
        calendar = BusinessCalendar.from_parts("Europe/Berlin", holidays=[date(2026, 1, 14)])
        assert add_business_days(calendar, berlin(2026, 1, 13, 10, 0), 1) == berlin(
            2026, 1, 15, 10, 0
        )

    def test_a_shorter_target_day_ends_at_its_close(self) -> None:
        calendar = BusinessCalendar.from_parts(
            "Europe/Berlin", {"thu": ["09:00-17:00"], "fri": ["09:00-13:00"]}
        )
        assert add_business_days(calendar, berlin(2026, 1, 15, 15, 0), 1) == berlin(
            2026, 1, 16, 13, 0
        )


# --- properties -------------------------------------------------------------------------------

CALENDARS = st.sampled_from(
    [
        NINE_TO_FIVE,
        NEW_YORK_OFFICE,
        NIGHT_SHIFT,
        BusinessCalendar.from_parts(
            "America/New_York",
            {"mon": ["08:00-12:00", "13:00-18:30"], "wed": ["00:00-24:00"], "sat": ["20:00-02:00"]},
            holidays=[date(2026, 3, 9), date(2026, 11, 4)],
        ),
    ]
)
INSTANTS = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 1, 31), timezones=st.just(UTC)
)
DURATIONS = st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(hours=60))


def _inside_working_hours(calendar: BusinessCalendar, instant: datetime) -> bool:
    day = calendar.local_date(instant)
    intervals = (*calendar.day_intervals(day - timedelta(days=1)), *calendar.day_intervals(day))
    return any(opens < instant <= closes for opens, closes in intervals)


@given(calendar=CALENDARS, start=INSTANTS, duration=DURATIONS)
def test_between_undoes_add(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    due = add_business_time(calendar, start, duration)
    assert business_time_between(calendar, start, due) == duration


@given(calendar=CALENDARS, start=INSTANTS, duration=DURATIONS)
def test_deadline_always_falls_in_working_hours(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    assert _inside_working_hours(calendar, add_business_time(calendar, start, duration))


@given(calendar=CALENDARS, a=INSTANTS, b=INSTANTS, c=INSTANTS)
def test_between_is_additive(
    calendar: BusinessCalendar, a: datetime, b: datetime, c: datetime
) -> None:
    assert business_time_between(calendar, a, b) + business_time_between(
        calendar, b, c
    ) == business_time_between(calendar, a, c)


@given(start=INSTANTS, days=st.integers(min_value=1, max_value=15))
def test_a_business_day_is_a_full_working_day_on_a_regular_calendar(
    start: datetime, days: int
) -> None:
    due = add_business_days(NINE_TO_FIVE, start, days)
    assert business_time_between(NINE_TO_FIVE, start, due) == days * 8 * HOURS
    assert _inside_working_hours(NINE_TO_FIVE, due)


class TestAbsences:
    """Out-of-office periods are not working time: a clock counting in the calendar pauses."""

    AWAY = (berlin(2026, 1, 13, 10, 30), berlin(2026, 1, 13, 14, 0))  # Tuesday, 3.5h of work

    def test_an_absence_inside_the_deadline_moves_it_later_by_the_time_away(self) -> None:
        away = NINE_TO_FIVE.with_absences([self.AWAY])
        start = berlin(2026, 1, 13, 10, 0)
        assert add_business_time(NINE_TO_FIVE, start, HOURS) == berlin(2026, 1, 13, 11, 0)
        assert add_business_time(away, start, HOURS) == berlin(2026, 1, 13, 14, 30)

    def test_time_away_is_not_business_time(self) -> None:
        away = NINE_TO_FIVE.with_absences([self.AWAY])
        day = (berlin(2026, 1, 13, 0, 0), berlin(2026, 1, 14, 0, 0))
        assert business_time_between(away, *day) == timedelta(hours=4, minutes=30)

    def test_a_whole_day_away_is_no_business_day(self) -> None:
        away = NINE_TO_FIVE.with_absences([(berlin(2026, 1, 14, 0, 0), berlin(2026, 1, 15, 0, 0))])
        # Tuesday 10:00 + 1bd is Wednesday 10:00, but Wednesday is a day away: Thursday 10:00.
        assert add_business_days(away, berlin(2026, 1, 13, 10, 0), 1) == berlin(2026, 1, 15, 10, 0)

    def test_an_absence_starting_before_the_clock_delays_its_start(self) -> None:
        away = NINE_TO_FIVE.with_absences([(berlin(2026, 1, 12, 0, 0), berlin(2026, 1, 13, 12, 0))])
        assert add_business_time(away, berlin(2026, 1, 13, 9, 0), HOURS) == berlin(
            2026, 1, 13, 13, 0
        )

    def test_overlapping_absences_merge_and_empty_ones_are_ignored(self) -> None:
        first = (berlin(2026, 1, 13, 10, 0), berlin(2026, 1, 13, 12, 0))
        second = (berlin(2026, 1, 13, 11, 0), berlin(2026, 1, 13, 13, 0))
        empty = (berlin(2026, 1, 13, 15, 0), berlin(2026, 1, 13, 15, 0))
        away = NINE_TO_FIVE.with_absences([second, empty, first])
        assert away.absences == ((first[0].astimezone(UTC), second[1].astimezone(UTC)),)

    def test_absences_do_not_change_working_hours_status(self) -> None:
        away = NINE_TO_FIVE.with_absences([self.AWAY])
        assert calendar_status(away, berlin(2026, 1, 13, 11, 0)) == "working"


def test_a_calendar_made_from_another_does_not_answer_with_its_days() -> None:
    """A calendar remembers the days it worked out; one made from it with other holidays or
    absences (``replace``, ``with_absences``) works out its own."""
    tuesday = date(2026, 1, 13)
    worked = NINE_TO_FIVE.day_intervals(tuesday)
    assert worked
    assert replace(NINE_TO_FIVE, holidays=frozenset({tuesday})).day_intervals(tuesday) == ()
    away = NINE_TO_FIVE.with_absences([(berlin(2026, 1, 13, 0, 0), berlin(2026, 1, 14, 0, 0))])
    assert away.day_intervals(tuesday) == ()
    assert NINE_TO_FIVE.day_intervals(tuesday) == worked
