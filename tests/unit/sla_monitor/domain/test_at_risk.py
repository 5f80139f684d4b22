"""Which running clocks are at risk on a rep's crafted calendar, and what the policy does then."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.sla_monitor.domain import (
    AssignmentFacts,
    BusinessCalendar,
    ClockKind,
    ClockState,
    SlaClock,
    SlaPolicy,
    on_sales_activity,
    start_clocks,
)
from services.sla_monitor.domain.at_risk import (
    assess,
    hand_on_at_risk,
    open_load,
    outlook,
    recent_pace,
)

from ..helpers import berlin

EARLY_SHIFT = BusinessCalendar.from_parts(
    "Europe/Berlin", {d: ("09:00-17:00",) for d in ("mon", "tue", "wed", "thu", "fri")}
)
LATE_SHIFT = BusinessCalendar.from_parts(
    "Europe/Berlin", {d: ("09:00-22:00",) for d in ("mon", "tue", "wed", "thu", "fri")}
)
ASSIGNED = berlin(2026, 1, 13, 16, 30)  # a Tuesday, half an hour before the early shift ends


def policy(**fields: Any) -> SlaPolicy:
    """Two hours of real time to first touch, a business day to acceptance."""
    return SlaPolicy.model_validate(
        {"id": "sdr", "first_touch": {"within": "2h"}, "acceptance": {"within": "1bd"}, **fields}
    )


def clocks(
    assignment_id: str = "as-1", at: datetime = ASSIGNED, rep_id: str = "rep-anna"
) -> list[SlaClock]:
    facts = AssignmentFacts(
        lead_key=f"lk_{assignment_id}",
        assignment_id=assignment_id,
        rep_id=rep_id,
        role="sdr",
        route="round_robin",
        team="emea",
        episode=1,
        attempt=1,
        assigned_at=at,
        prior_rep_ids=("rep-bob",),
    )
    return start_clocks(policy(), EARLY_SHIFT, facts)


def first_touch(of: list[SlaClock]) -> SlaClock:
    return next(c for c in of if c.kind is ClockKind.FIRST_TOUCH)


def touched_yesterday_in_40_minutes() -> list[SlaClock]:
    done = [first_touch(clocks("as-0", berlin(2026, 1, 12, 10, 0)))]
    return on_sales_activity(done, "contacted", berlin(2026, 1, 12, 10, 40))


def test_a_shift_ending_before_the_due_time_puts_the_first_touch_at_risk() -> None:
    clock = first_touch(clocks())  # due 18:30; the rep leaves at 17:00 and is slow
    rep = outlook(clock, EARLY_SHIFT, (), touched_yesterday_in_40_minutes(), ASSIGNED)
    assert rep.recent_touch == timedelta(minutes=40)
    risk = assess(clock, policy(), rep, ASSIGNED)
    assert risk is not None
    assert risk.forecast.reasons == ("off_shift_before_due",)
    assert risk.forecast.expected_at == berlin(2026, 1, 14, 9, 10)
    assert not risk.reassign  # the default policy only announces it


def test_an_idle_rep_in_hours_is_not_at_risk() -> None:
    clock = first_touch(clocks())
    assert assess(clock, policy(), outlook(clock, LATE_SHIFT, (), [], ASSIGNED), ASSIGNED) is None


def test_an_absence_covering_the_due_time_puts_it_at_risk() -> None:
    clock = first_touch(clocks())
    away = [(berlin(2026, 1, 13, 16, 45), berlin(2026, 1, 14, 12, 0))]
    now = berlin(2026, 1, 13, 16, 50)
    risk = assess(clock, policy(), outlook(clock, LATE_SHIFT, away, [], now), now)
    assert risk is not None
    assert risk.forecast.reasons == ("out_of_office",)


def test_the_rep_s_other_open_leads_are_their_load() -> None:
    clock = first_touch(clocks())
    others = [*clocks("as-2"), *clocks("as-3"), *clocks("as-4", rep_id="rep-bob")]
    assert open_load([*clocks(), *others], clock) == 2
    loaded = outlook(clock, LATE_SHIFT, (), others, ASSIGNED)
    assert assess(clock, policy(), loaded, ASSIGNED) is None  # 20 minutes of work fit in 2 hours
    desk = [c for n in range(13) for c in clocks(f"as-{n + 10}")]  # 130 minutes of work
    risk = assess(clock, policy(), outlook(clock, LATE_SHIFT, (), desk, ASSIGNED), ASSIGNED)
    assert risk is not None
    assert risk.forecast.reasons == ("loaded",)


def test_pace_is_the_median_of_recent_completed_clocks_of_the_same_kind() -> None:
    done = []
    for day, minutes in ((5, 10), (6, 30), (7, 200)):
        started = berlin(2026, 1, day, 10, 0)
        clock = first_touch(clocks(f"as-{day}", started))
        done += on_sales_activity([clock], "contacted", started + timedelta(minutes=minutes))
    stale = first_touch(clocks("as-old", berlin(2025, 11, 3, 10, 0)))
    done += on_sales_activity([stale], "contacted", berlin(2025, 11, 3, 16, 0))
    pace = recent_pace(done, ClockKind.FIRST_TOUCH, LATE_SHIFT, ASSIGNED)
    assert pace == timedelta(minutes=30)
    assert recent_pace(done, ClockKind.ACCEPTANCE, LATE_SHIFT, ASSIGNED) is None


def test_a_clock_past_due_or_breached_is_not_forecast() -> None:
    clock = first_touch(clocks())
    rep = outlook(clock, EARLY_SHIFT, (), [], ASSIGNED)
    assert assess(clock, policy(), rep, berlin(2026, 1, 13, 18, 31)) is None
    breached = clock.model_copy(update={"state": ClockState.BREACHED})
    assert assess(breached, policy(), rep, ASSIGNED) is None


def test_policy_reassign_hands_the_first_touch_lead_on_before_the_breach() -> None:
    assignment = clocks()
    clock = first_touch(assignment)
    rep = outlook(clock, EARLY_SHIFT, (), touched_yesterday_in_40_minutes(), ASSIGNED)
    risk = assess(clock, policy(at_risk="reassign"), rep, ASSIGNED)
    assert risk is not None
    assert risk.reassign
    ended, request = hand_on_at_risk(assignment, risk)
    assert [c.state for c in ended] == [ClockState.STOPPED, ClockState.STOPPED]
    assert request.reason == "sla_at_risk"
    assert request.exclude_rep_ids == ("rep-bob", "rep-anna")
    assert request.attempt == 2
    assert request.action_id == f"{clock.clock_id}/sla-at-risk"


def test_an_acceptance_clock_at_risk_is_only_announced() -> None:
    acceptance = next(c for c in clocks() if c.kind is ClockKind.ACCEPTANCE)
    away = [(berlin(2026, 1, 13, 16, 0), berlin(2026, 1, 20, 9, 0))]
    rep = outlook(acceptance, EARLY_SHIFT, away, [], ASSIGNED)
    risk = assess(acceptance, policy(at_risk="reassign"), rep, ASSIGNED)
    assert risk is not None
    assert not risk.reassign
