"""The one calendar choice hand-off and the SLA monitor share, and the facts routing reads."""

from __future__ import annotations

from datetime import date, timedelta

from leadrelay.app.definitions import load_definitions
from leadrelay.contracts.events import ActivityItem, LeadSalesReady
from services.handoff.domain.sla_calendar import rep_calendar_parts, sla_calendar
from services.handoff.messages import high_intent_actions, lead_facts
from services.sla_monitor.domain import add_business_time
from tests.unit.handoff.builders import make_rep, utc
from tests.unit.handoff.service_support import sales_ready_data

SLA = load_definitions().sla
POLICY = SLA.policy_for("sdr", "round_robin")
HOUR = timedelta(hours=1)


def test_deadlines_count_in_the_reps_own_time_zone_and_hours() -> None:
    rep = make_rep(
        "sdr-tokyo",
        time_zone="Asia/Tokyo",
        working_hours={"mon": ["09:00-17:00"], "tue": ["09:00-17:00"]},
    )
    calendar = sla_calendar(rep, POLICY, SLA)
    # Monday 17:30 in Tokyo: the next business hour is Tuesday 09:00-10:00 JST.
    due = add_business_time(calendar, utc("2025-06-02T17:30+09:00"), HOUR)
    assert due == utc("2025-06-03T10:00+09:00")


def test_a_night_shift_and_a_whole_day_survive_the_conversion() -> None:
    rep = make_rep(
        "sdr-night",
        working_hours={"mon": ["22:00-06:00"], "tue": ["06:00-14:00"], "wed": ["00:00-24:00"]},
        holidays=[date(2025, 6, 10)],
    )
    assert rep_calendar_parts(rep) == (
        "UTC",
        {"mon": ("22:00-06:00",), "tue": ("06:00-14:00",), "wed": ("00:00-24:00",)},
        (date(2025, 6, 10),),
    )
    calendar = sla_calendar(rep, POLICY, SLA)
    # Monday 23:00 + 3 business hours: the night shift runs to Tuesday 06:00 (both count).
    assert add_business_time(calendar, utc("2025-06-02T23:00Z"), 3 * HOUR) == utc(
        "2025-06-03T02:00Z"
    )


def test_holidays_of_the_rep_are_not_business_time() -> None:
    rep = make_rep(
        "sdr-a",
        working_hours={"wed": ["09:00-17:00"], "thu": ["09:00-17:00"]},
        holidays=[date(2025, 6, 4)],
    )
    calendar = sla_calendar(rep, POLICY, SLA)
    assert add_business_time(calendar, utc("2025-06-04T10:00Z"), HOUR) == utc("2025-06-05T10:00Z")


def test_holidays_of_the_policys_calendar_apply_to_the_rep_too() -> None:
    """A team's public holiday is listed once, on its calendar, and counts for every rep."""
    calendars = SLA.model_dump()["calendars"]
    calendars[POLICY.calendar]["holidays"] = [date(2025, 6, 5)]
    team_sla = SLA.model_validate({**SLA.model_dump(), "calendars": calendars})
    rep = make_rep(
        "sdr-a",
        time_zone="Europe/Berlin",
        working_hours={"wed": ["09:00-17:00"], "thu": ["09:00-17:00"], "fri": ["09:00-17:00"]},
        holidays=[date(2025, 6, 4)],
    )
    calendar = sla_calendar(rep, POLICY, team_sla)
    # Wednesday is the rep's day off and Thursday the team's: the hour is Friday 09:00-10:00.
    assert add_business_time(calendar, utc("2025-06-04T10:00+02:00"), HOUR) == utc(
        "2025-06-06T10:00+02:00"
    )


def test_without_a_usable_rep_calendar_the_policys_calendar_counts() -> None:
    no_hours = make_rep("sdr-never", working_hours={})
    # The roster accepts a night shift running into the next day's shift; a calendar cannot.
    ambiguous = make_rep(
        "sdr-twice", working_hours={"mon": ["22:00-06:00"], "tue": ["05:00-09:00"]}
    )
    start = utc("2025-06-07T12:00Z")  # a Saturday: the default calendar opens Monday 09:00 UTC
    expected = utc("2025-06-09T10:00Z")
    for rep in (no_hours, ambiguous, None):
        assert add_business_time(sla_calendar(rep, POLICY, SLA), start, HOUR) == expected


def test_routing_sees_the_email_domain_and_form_ids_but_never_the_address() -> None:
    ready = LeadSalesReady.model_validate(
        sales_ready_data("lk_ada", email="ada@uk.analytical-engines.example")
    )
    facts = lead_facts(ready, excluded=["sdr-a"])
    assert facts.email_domain == "uk.analytical-engines.example"
    assert (facts.country, facts.company_size, facts.grade) == ("DE", 850, "B")
    assert facts.excluded_rep_ids == {"sdr-a"}
    assert "ada@" not in facts.model_dump_json()
    assert facts.high_intent_actions == {
        "form_submitted",
        "form_submitted:demo-request",
        "pricing_page_view",
    }


def test_a_web_demo_request_is_its_own_high_intent_action() -> None:
    item = ActivityItem(event_id="e1", action="demo_request", occurred_at=utc("2025-06-04T10:00Z"))
    assert high_intent_actions([item]) == {"demo_request"}
