"""The one duration grammar: elapsed units for the scorecard, business units for SLA policies."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadrelay.durations import Duration, TimeBasis, format_elapsed, parse_duration, parse_elapsed


@pytest.mark.parametrize(
    ("text", "amount", "unit", "basis"),
    [
        ("1bh", 1, "bh", TimeBasis.BUSINESS),
        ("4h", 4, "h", TimeBasis.WALL),
        ("2bd", 2, "bd", TimeBasis.BUSINESS),
        ("90bm", 90, "bm", TimeBasis.BUSINESS),
        (" 30m ", 30, "m", TimeBasis.WALL),
        ("1d", 1, "d", TimeBasis.WALL),
        ("2w", 2, "w", TimeBasis.WALL),
        ("45s", 45, "s", TimeBasis.WALL),
    ],
)
def test_valid(text: str, amount: int, unit: str, basis: TimeBasis) -> None:
    duration = parse_duration(text)
    assert (duration.amount, duration.unit, duration.basis) == (amount, unit, basis)
    assert str(duration) == text.strip()


@pytest.mark.parametrize(
    "text",
    ["1.5bh", "bh", "4", 4, "1x", "0bh", "-1h", "1 business hour", "10000bd", "14 days", "3y", ""],
)
def test_invalid_names_the_grammar(text: object) -> None:
    with pytest.raises(
        ValueError, match=r"invalid duration .*(e\.g\. '90m'|at least 1|between 1 and 9999)"
    ):
        parse_duration(text)


def test_the_business_limit_leaves_elapsed_units_alone() -> None:
    """The 9999 cap guards the day-by-day business walk; elapsed time has no walk to guard."""
    assert parse_duration("86400s").fixed == timedelta(days=1)
    with pytest.raises(ValueError, match="between 1 and 9999"):
        parse_duration("10000bh")


def test_business_days_have_no_fixed_length() -> None:
    assert parse_duration("1bd").fixed is None
    assert parse_duration("90bm") == Duration(90, "bm")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("36h", timedelta(hours=36)),
        ("14d", timedelta(days=14)),
        ("2w", timedelta(weeks=2)),
        (" 7 d ", timedelta(days=7)),
    ],
)
def test_elapsed_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_elapsed(text) == expected


@pytest.mark.parametrize("text", ["1bh", "2bd", "30bm"])
def test_elapsed_refuses_business_units(text: str) -> None:
    with pytest.raises(ValueError, match="business time has no fixed length"):
        parse_elapsed(text)


@pytest.mark.parametrize("text", ["14 days", "14", 14, "0d", "", "1.5d", "-3h", "3y"])
def test_bad_elapsed_durations_say_what_is_expected(text: object) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*(e\.g\. '90m'|at least 1)"):
        parse_elapsed(text)


def test_elapsed_durations_dump_back_to_the_text_form() -> None:
    texts = ("90m", "36h", "14d", "2w", "45s")
    assert [format_elapsed(parse_elapsed(t)) for t in texts] == ["90m", "36h", "14d", "14d", "45s"]
