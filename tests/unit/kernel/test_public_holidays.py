"""Calendars people already use: public holidays by country and subdivision beside explicit
dates, and business time that skips them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from leadrelay.calendar import add_business_time
from leadrelay.public_holidays import holiday_dates, parse_holiday
from services.sla_monitor.domain.config import CalendarConfig

EPIPHANY = date(2026, 1, 6)  # a public holiday in Bavaria, not in Berlin


def test_a_region_stands_for_its_public_holidays_and_a_date_for_itself() -> None:
    bavaria = holiday_dates([parse_holiday("DE-BY"), parse_holiday("2026-12-24")])
    berlin = holiday_dates([parse_holiday("de-be")])

    assert {EPIPHANY, date(2026, 12, 24), date(2026, 12, 25)} <= bavaria
    assert EPIPHANY not in berlin
    assert date(2026, 7, 4) in holiday_dates([parse_holiday("US")])


@pytest.mark.parametrize(
    ("entry", "message"),
    [("XX", "supported country"), ("DE-ZZ", "no subdivision 'ZZ'"), ("2026-13-01", "a date")],
)
def test_an_unknown_region_or_a_bad_date_is_refused(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_holiday(entry)


def test_a_calendar_with_a_regions_holidays_counts_business_time_around_them() -> None:
    config = CalendarConfig.model_validate(
        {"time_zone": "UTC", "holidays": ["DE-BY", date(2026, 1, 7)]}
    )
    monday_evening = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)

    due = add_business_time(config.to_calendar(), monday_evening, timedelta(hours=2))

    assert due == datetime(2026, 1, 8, 10, 0, tzinfo=UTC)  # Tue Epiphany and Wed off
    assert config.model_dump(mode="json")["holidays"] == ["DE-BY", "2026-01-07"]
    with pytest.raises(ValidationError, match="supported country"):
        CalendarConfig.model_validate({"time_zone": "UTC", "holidays": ["Bavaria"]})
