"""The one calendar choice for an assignment's deadlines: the rep snapshot, plus the policy's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from leadrelay.calendar import add_business_time
from leadrelay.contracts.events import RepSnapshot
from services.sla_monitor.domain import (
    AnnouncedDeadlines,
    assignment_calendar,
    escalation_target,
    load_sla,
)

from ..helpers import default_sla_section

SLA = load_sla(default_sla_section())
POLICY = SLA.policy_for("sdr", "round_robin")
HOUR = timedelta(hours=1)
AROUND_THE_CLOCK = {
    day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


def utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None
    return moment


def make_rep(
    _rep_id: str,
    *,
    time_zone: str = "UTC",
    working_hours: Mapping[str, Any] = AROUND_THE_CLOCK,
    holidays: Iterable[date] = (),
    manager: str | None = None,
) -> RepSnapshot:
    """The snapshot hand-off sends for a rep of team ``core``."""
    return RepSnapshot.model_validate(
        {
            "time_zone": time_zone,
            "working_hours": working_hours,
            "holidays": list(holidays),
            "team": "core",
            "manager": manager,
        }
    )


def test_deadlines_count_in_the_reps_own_time_zone_and_hours() -> None:
    rep = make_rep(
        "sdr-tokyo",
        time_zone="Asia/Tokyo",
        working_hours={"mon": ["09:00-17:00"], "tue": ["09:00-17:00"]},
    )
    calendar = assignment_calendar(rep, POLICY, SLA)
    # Monday 17:30 in Tokyo: the next business hour is Tuesday 09:00-10:00 JST.
    due = add_business_time(calendar, utc("2025-06-02T17:30+09:00"), HOUR)
    assert due == utc("2025-06-03T10:00+09:00")


def test_a_night_shift_counts_on_both_days() -> None:
    rep = make_rep(
        "sdr-night",
        working_hours={"mon": ["22:00-06:00"], "tue": ["06:00-14:00"], "wed": ["00:00-24:00"]},
        holidays=[date(2025, 6, 10)],
    )
    calendar = assignment_calendar(rep, POLICY, SLA)
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
    calendar = assignment_calendar(rep, POLICY, SLA)
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
    calendar = assignment_calendar(rep, POLICY, team_sla)
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
        assert add_business_time(assignment_calendar(rep, POLICY, SLA), start, HOUR) == expected


def test_the_announced_deadlines_are_the_ones_the_clocks_run_to() -> None:
    """Hand-off publishes what this function says; the monitor's clocks use the same rule."""
    rep = make_rep("sdr-tokyo", time_zone="Asia/Tokyo", working_hours={"mon": ["09:00-17:00"]})
    terms = AnnouncedDeadlines(SLA)(
        role="sdr",
        route="round_robin",
        team=None,
        rep=rep,
        assigned_at=utc("2025-06-02T16:30+09:00"),
    )
    calendar = assignment_calendar(rep, POLICY, SLA)
    assert terms.policy == POLICY.id
    assert POLICY.first_touch is not None
    assert terms.first_touch_due == POLICY.first_touch.within.after(
        calendar, utc("2025-06-02T16:30+09:00")
    )


def test_one_announcer_tells_each_rep_the_deadlines_of_their_own_calendar() -> None:
    """The announcer keeps the calendars it built; reps who differ only in zone, hours or
    holidays, asked in turn, still get their own deadlines."""
    tokyo = make_rep("a", time_zone="Asia/Tokyo", working_hours={"mon": ["09:00-17:00"]})
    berlin = make_rep("b", time_zone="Europe/Berlin", working_hours={"mon": ["09:00-17:00"]})
    short = make_rep("c", time_zone="Europe/Berlin", working_hours={"mon": ["09:00-12:00"]})
    off = make_rep(
        "d",
        time_zone="Europe/Berlin",
        working_hours={"mon": ["09:00-12:00"]},
        holidays=[date(2025, 6, 9)],
    )
    announcer = AnnouncedDeadlines(SLA)
    assigned_at = utc("2025-06-02T11:30+02:00")
    for rep in (tokyo, berlin, short, off, None) * 2:
        terms = announcer(
            role="sdr", route="round_robin", team=None, rep=rep, assigned_at=assigned_at
        )
        fresh = AnnouncedDeadlines(SLA)(
            role="sdr", route="round_robin", team=None, rep=rep, assigned_at=assigned_at
        )
        assert terms == fresh
    dues = {
        rep.time_zone + str(rep.working_hours) + str(rep.holidays): announcer(
            role="sdr", route="round_robin", team=None, rep=rep, assigned_at=assigned_at
        ).first_touch_due
        for rep in (tokyo, berlin, short, off)
    }
    assert len(set(dues.values())) == 4


def test_escalations_to_the_manager_reach_the_snapshots_manager_else_the_team() -> None:
    assert escalation_target("manager", "mgr-maria", "sdr-emea") == "mgr-maria"
    assert escalation_target("manager", None, "sdr-emea") == "sdr-emea"
    assert escalation_target("manager", None, None) == "manager"
    assert escalation_target("sales-ops", "mgr-maria", "sdr-emea") == "sales-ops"
