"""Forecasting a running clock on crafted calendars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadrelay.calendar import BusinessCalendar
from services.sla_monitor.domain.forecast import RepOutlook, forecast

NINE_TO_FIVE = BusinessCalendar.from_parts("UTC")
MONDAY = datetime(2024, 6, 3, tzinfo=UTC)


def at(hour: int, minute: int = 0, day: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


def test_an_idle_rep_in_hours_is_expected_to_make_it() -> None:
    result = forecast(at(11), at(10), RepOutlook(NINE_TO_FIVE))
    assert not result.at_risk
    assert result.expected_at == at(10)
    assert result.reasons == ()


def test_a_shift_ending_before_the_due_time_puts_the_clock_at_risk() -> None:
    # an elapsed 90-minute SLA started at 16:30: due 18:00, the rep leaves at 17:00
    rep = RepOutlook(NINE_TO_FIVE, recent_touch=timedelta(minutes=40))
    result = forecast(at(18), at(16, 30), rep)
    assert result.at_risk
    assert result.expected_at == at(9, 10, day=1)  # 30 minutes today, 10 tomorrow
    assert result.reasons == ("off_shift_before_due",)


def test_off_shift_until_after_the_due_time_is_at_risk_even_for_a_quick_rep() -> None:
    result = forecast(at(20), at(18), RepOutlook(NINE_TO_FIVE))
    assert result.at_risk
    assert result.expected_at == at(9, day=1)
    assert result.reasons == ("off_shift_before_due",)


def test_out_of_office_until_after_the_due_time() -> None:
    rep = RepOutlook(NINE_TO_FIVE, out_of_office=[(at(8), at(14))])
    result = forecast(at(12), at(10), rep)
    assert result.at_risk
    assert result.expected_at == at(14)
    assert result.reasons == ("out_of_office",)
    assert not forecast(at(15), at(10), rep).at_risk


def test_a_slow_or_loaded_rep_misses_it_in_hours() -> None:
    slow = RepOutlook(NINE_TO_FIVE, recent_touch=timedelta(hours=2))
    assert forecast(at(11), at(10), slow).reasons == ("slow_to_touch",)
    loaded = RepOutlook(NINE_TO_FIVE, open_load=9)
    assert forecast(at(11), at(10), loaded).reasons == ("loaded",)
    both = RepOutlook(NINE_TO_FIVE, recent_touch=timedelta(minutes=40), open_load=3)
    assert forecast(at(11), at(10), both).reasons == ("slow_to_touch", "loaded")
    assert not forecast(at(12), at(10), both).at_risk


def test_a_rep_without_known_hours_is_taken_to_be_in() -> None:
    assert not forecast(at(23), at(22), RepOutlook(None)).at_risk
