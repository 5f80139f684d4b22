"""Marketing's clock on a recycled lead: started by a recycle, met by the MAP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadrelay.calendar import BusinessCalendar
from services.sla_monitor.domain import (
    MARKETING,
    Breach,
    ClockKind,
    ClockState,
    Escalate,
    EscalateStep,
    SlaClock,
    Warn,
    end_on_recycle,
    fire_due,
    load_sla,
    on_marketing_activity,
    on_sales_activity,
    start_marketing_clock,
)

from ..helpers import berlin, default_sla_section

CALENDAR = BusinessCalendar.from_parts("Europe/Berlin")
CONFIG = load_sla(default_sla_section())
RECYCLED = berlin(2026, 1, 16, 15, 0)  # a Friday


def recycled_clock() -> SlaClock:
    assert CONFIG.marketing is not None
    return start_marketing_clock(CONFIG.marketing, CALENDAR, "lk_0123", "evt-recycle-1", RECYCLED)


def test_the_shipped_policy_gives_marketing_two_business_days_with_a_warning() -> None:
    clock = recycled_clock()
    assert (clock.kind, clock.policy_id, clock.rep_id) == (
        ClockKind.MARKETING_ACKNOWLEDGEMENT,
        MARKETING,
        MARKETING,
    )
    assert clock.assignment_id == "evt-recycle-1"
    assert clock.due_at == berlin(2026, 1, 20, 15, 0)  # Friday 15:00 + 2bd = Tuesday 15:00
    assert clock.warn_at == berlin(2026, 1, 20, 11, 0)  # 75% of 16 working hours: 12h in
    assert [(s.at, s.step) for s in clock.ladder] == [
        (clock.due_at, EscalateStep(action="escalate", to="marketing-ops"))
    ]


def test_nurture_enrollment_meets_the_clock() -> None:
    (met,) = on_marketing_activity(
        [recycled_clock()], "nurture_enrolled", berlin(2026, 1, 19, 9, 0)
    )
    assert met.state is ClockState.COMPLETED
    assert met.steps_taken[-1] == ("nurture_enrolled", berlin(2026, 1, 19, 9, 0))
    assert fire_due([met], berlin(2026, 1, 21, 9, 0)) == ([met], [])


def test_without_acknowledgement_marketing_is_warned_breached_and_escalated_once() -> None:
    clocks, actions = fire_due([recycled_clock()], berlin(2026, 1, 20, 11, 0))
    assert [type(a) for a in actions] == [Warn]
    clocks, actions = fire_due(clocks, berlin(2026, 1, 27, 9, 0))
    assert [type(a) for a in actions] == [Breach, Escalate]
    assert actions[0].clock is ClockKind.MARKETING_ACKNOWLEDGEMENT
    assert isinstance(actions[1], Escalate)
    assert actions[1].escalated_to == "marketing-ops"
    assert fire_due(clocks, berlin(2026, 2, 27, 9, 0)) == (clocks, [])
    assert clocks[0].state is ClockState.BREACHED
    assert clocks[0].was_breached


def test_an_acknowledgement_before_the_recycle_counts_only_within_the_skew() -> None:
    early = RECYCLED - timedelta(minutes=3)
    (kept,) = on_marketing_activity([recycled_clock()], "nurture_enrolled", early)
    assert kept.is_open
    (met,) = on_marketing_activity(
        [recycled_clock()], "nurture_enrolled", early, skew=timedelta(minutes=5)
    )
    assert met.state is ClockState.COMPLETED


def test_sales_activity_never_reaches_marketing_clock() -> None:
    clock = recycled_clock()
    assert on_sales_activity([clock], "accepted", berlin(2026, 1, 19, 9, 0)) == [clock]


def test_an_unknown_marketing_activity_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown marketing activity"):
        on_marketing_activity([recycled_clock()], "opened_email", RECYCLED)


def test_marketing_calendar_must_exist_and_its_id_is_reserved() -> None:
    section = default_sla_section()
    with pytest.raises(ValueError, match="marketing uses calendar 'nowhere'"):
        load_sla(
            {**section, "marketing": {"acknowledge": {"within": "1bd"}, "calendar": "nowhere"}}
        )
    escalate = [{"action": "escalate", "to": "manager"}]
    marketing = {"acknowledge": {"within": "1bd"}, "on_breach": escalate}
    with pytest.raises(ValueError, match="named owner"):
        load_sla({**section, "marketing": marketing})
    taken = [*section["policies"], {"id": "marketing", "first_touch": {"within": "1bh"}}]
    with pytest.raises(ValueError, match="is marketing's"):
        load_sla({**section, "policies": taken})


def test_only_the_acknowledgement_ends_marketings_clock_not_a_further_recycle() -> None:
    clock = recycled_clock()
    assert end_on_recycle([clock], RECYCLED + timedelta(days=1)) == [clock]
