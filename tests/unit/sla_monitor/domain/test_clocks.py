"""SLA clocks driven by an injected ``now``: warning, breach, ladder, sales activity, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.sla_monitor.domain import (
    AssignmentFacts,
    Breach,
    BusinessCalendar,
    ClockKind,
    ClockState,
    Escalate,
    Recycle,
    RequestReassignment,
    SlaAction,
    SlaClock,
    SlaPolicy,
    Warn,
    clock_id_for,
    due_actions,
    end_on_recycle,
    fire_due,
    load_sla,
    next_fire_at,
    on_sales_activity,
    start_clocks,
)

from ..helpers import berlin, default_sla_section, new_york

CALENDAR = BusinessCalendar.from_parts("Europe/Berlin")


CONFIG = load_sla(default_sla_section())
SDR = CONFIG.policy_for("sdr", "round_robin")
ASSIGNED = berlin(2026, 1, 13, 10, 0)  # a Tuesday


def assignment(
    assignment_id: str = "as-1", rep_id: str = "rep-anna", at: datetime = ASSIGNED, attempt: int = 1
) -> AssignmentFacts:
    return AssignmentFacts(
        lead_key="lk_0123",
        assignment_id=assignment_id,
        rep_id=rep_id,
        role="sdr",
        route="round_robin",
        team="emea",
        episode=1,
        attempt=attempt,
        assigned_at=at,
        prior_rep_ids=("rep-bob",),
    )


def sdr_clocks(reassignments: int = 0, **facts: Any) -> tuple[SlaClock, SlaClock]:
    first_touch, acceptance = start_clocks(SDR, CALENDAR, assignment(**facts), reassignments)
    return first_touch, acceptance


def policy(**fields: Any) -> SlaPolicy:
    return SlaPolicy.model_validate({"id": "custom", **fields})


def kinds(actions: list[SlaAction]) -> list[str]:
    return [type(action).__name__ for action in actions]


class TestStartingClocks:
    def test_sdr_deadlines(self) -> None:
        first_touch, acceptance = sdr_clocks()
        assert first_touch.kind is ClockKind.FIRST_TOUCH
        assert (first_touch.warn_at, first_touch.due_at) == (
            berlin(2026, 1, 13, 10, 45),
            berlin(2026, 1, 13, 11, 0),
        )
        assert acceptance.kind is ClockKind.ACCEPTANCE
        assert (acceptance.warn_at, acceptance.due_at) == (None, berlin(2026, 1, 14, 10, 0))
        assert {first_touch.state, acceptance.state} == {ClockState.RUNNING}
        assert first_touch.policy_id == "sdr"

    def test_ladder_steps_are_spaced_by_the_clock_length(self) -> None:
        first_touch, acceptance = sdr_clocks()
        assert [(s.position, s.step.action, s.at) for s in first_touch.ladder] == [
            (1, "escalate", berlin(2026, 1, 13, 11, 0)),
            (2, "reassign", berlin(2026, 1, 13, 12, 0)),
            (3, "recycle", berlin(2026, 1, 13, 13, 0)),
        ]
        assert [s.at for s in acceptance.ladder] == [
            berlin(2026, 1, 14, 10, 0),
            berlin(2026, 1, 15, 10, 0),
            berlin(2026, 1, 16, 10, 0),
        ]

    def test_used_up_reassignments_leave_the_step_out(self) -> None:
        first_touch, _ = sdr_clocks(reassignments=2)
        assert [(s.position, s.step.action, s.at) for s in first_touch.ladder] == [
            (1, "escalate", berlin(2026, 1, 13, 11, 0)),
            (3, "recycle", berlin(2026, 1, 13, 12, 0)),
        ]

    def test_reassignments_so_far_default_to_earlier_attempts(self) -> None:
        third = start_clocks(SDR, CALENDAR, assignment(attempt=3))
        assert [s.step.action for s in third[0].ladder] == ["escalate", "recycle"]
        second = start_clocks(SDR, CALENDAR, assignment(attempt=2))
        assert [s.step.action for s in second[0].ladder] == ["escalate", "reassign", "recycle"]
        assert second[0].reassignments_done == 1

    def test_warnings_in_business_time(self) -> None:
        ae = CONFIG.policy_for("ae", "account")
        _, acceptance = start_clocks(ae, CALENDAR, assignment())
        # 2bd from Tuesday 10:00 is Thursday 10:00: 16 business hours, 75% of them is 12.
        assert acceptance.due_at == berlin(2026, 1, 15, 10, 0)
        assert acceptance.warn_at == berlin(2026, 1, 14, 14, 0)
        custom = policy(first_touch={"within": "1bh", "warn_at": "15bm before"})
        [clock] = start_clocks(custom, CALENDAR, assignment(at=berlin(2026, 1, 13, 16, 30)))
        assert (clock.warn_at, clock.due_at) == (
            berlin(2026, 1, 14, 9, 15),  # 15 business minutes before, not 16:45 wall time
            berlin(2026, 1, 14, 9, 30),
        )

    def test_explicit_step_spacing(self) -> None:
        custom = policy(
            first_touch={"within": "1bh"},
            on_breach=[
                {"action": "escalate", "after": "15bm"},
                {"action": "escalate", "to": "director", "after": "30bm"},
            ],
        )
        [clock] = start_clocks(custom, CALENDAR, assignment())
        assert [s.at for s in clock.ladder] == [
            berlin(2026, 1, 13, 11, 15),
            berlin(2026, 1, 13, 11, 45),
        ]

    def test_lead_assigned_friday_evening_is_due_monday_morning(self) -> None:
        first_touch, acceptance = sdr_clocks(at=berlin(2026, 1, 16, 18, 0))
        assert first_touch.due_at == berlin(2026, 1, 19, 10, 0)
        assert first_touch.warn_at == berlin(2026, 1, 19, 9, 45)
        assert acceptance.due_at == berlin(2026, 1, 19, 17, 0)

    def test_the_reps_own_calendar_decides(self) -> None:
        new_york_office = BusinessCalendar.from_parts("America/New_York")
        first_touch, _ = start_clocks(SDR, new_york_office, assignment())
        # 10:00 in Berlin is 04:00 in New York: the clock starts at the New York opening.
        assert first_touch.due_at == new_york(2026, 1, 13, 10, 0)

    def test_wall_clock_deadline_runs_through_the_night(self) -> None:
        custom = policy(first_touch={"within": "4h", "warn_at": "30m before"})
        [clock] = start_clocks(custom, CALENDAR, assignment(at=berlin(2026, 1, 16, 22, 0)))
        assert clock.due_at == berlin(2026, 1, 17, 2, 0)
        assert clock.warn_at == berlin(2026, 1, 17, 1, 30)

    def test_clock_ids_are_deterministic(self) -> None:
        again = sdr_clocks()
        assert [c.clock_id for c in sdr_clocks()] == [c.clock_id for c in again]
        assert sdr_clocks()[0].clock_id == clock_id_for("as-1", ClockKind.FIRST_TOUCH)
        ids = {
            clock_id_for(assignment_id, kind)
            for assignment_id in ("as-1", "as-2")
            for kind in ClockKind
        }
        assert len(ids) == 2 * len(ClockKind)

    def test_times_are_utc(self) -> None:
        first_touch, _ = sdr_clocks()
        assert first_touch.started_at.tzinfo is UTC
        assert first_touch.due_at.tzinfo is UTC


class TestLadder:
    def test_step_by_step(self) -> None:
        clock, _ = sdr_clocks()
        assert next_fire_at(clock) == berlin(2026, 1, 13, 10, 45)

        clock, actions = due_actions(clock, berlin(2026, 1, 13, 10, 44))
        assert actions == []

        clock, actions = due_actions(clock, berlin(2026, 1, 13, 10, 45))
        [warn] = actions
        assert isinstance(warn, Warn)
        assert (warn.step, warn.deadline) == ("warn", berlin(2026, 1, 13, 11, 0))
        assert warn.fired_at == berlin(2026, 1, 13, 10, 45)
        assert (warn.clock, warn.policy, warn.rep_id) == (ClockKind.FIRST_TOUCH, "sdr", "rep-anna")
        assert clock.state is ClockState.WARNED
        assert next_fire_at(clock) == berlin(2026, 1, 13, 11, 0)

        clock, actions = due_actions(clock, berlin(2026, 1, 13, 11, 0))
        breach, escalate = actions
        assert isinstance(breach, Breach)
        assert isinstance(escalate, Escalate)
        assert (escalate.step, escalate.position, escalate.escalated_to) == (
            "escalate",
            1,
            "manager",
        )
        assert clock.state is ClockState.BREACHED
        assert clock.ladder_position == 1
        assert next_fire_at(clock) == berlin(2026, 1, 13, 12, 0)

        clock, actions = due_actions(clock, berlin(2026, 1, 13, 11, 59))
        assert actions == []

        clock, actions = due_actions(clock, berlin(2026, 1, 13, 12, 0))
        [reassign] = actions
        assert isinstance(reassign, RequestReassignment)
        assert reassign.exclude_rep_ids == ("rep-bob", "rep-anna")
        assert (reassign.step, reassign.position) == ("reassign", 2)
        assert (reassign.episode, reassign.attempt, reassign.max_reassignments) == (1, 2, 2)
        assert reassign.assignment_id == "as-1"
        assert clock.state is ClockState.STOPPED
        assert clock.reassignments_done == 1
        assert next_fire_at(clock) is None
        assert [label for label, _at in clock.steps_taken] == [
            "warn",
            "breach",
            "escalate",
            "reassign",
        ]

    def test_last_allowed_assignment_is_recycled(self) -> None:
        clock, _ = sdr_clocks(reassignments=2)
        clock, actions = due_actions(clock, berlin(2026, 1, 13, 11, 0))
        assert kinds(actions) == ["Breach", "Escalate"]
        clock, actions = due_actions(clock, berlin(2026, 1, 13, 12, 0))
        [recycle] = actions
        assert isinstance(recycle, Recycle)
        assert (recycle.reason, recycle.position, recycle.clock_id) == (
            "sla_breached",
            3,
            clock.clock_id,
        )
        assert recycle.detail is not None
        assert clock.state is ClockState.STOPPED
        assert next_fire_at(clock) is None

    def test_reassignment_ends_the_other_clock_of_the_assignment(self) -> None:
        clocks, warned = fire_due(list(sdr_clocks()), berlin(2026, 1, 13, 10, 45))
        clocks, actions = fire_due(clocks, berlin(2026, 1, 13, 12, 0))
        assert kinds(warned) == ["Warn"]
        assert kinds(actions) == ["Breach", "Escalate", "RequestReassignment"]
        _first_touch, acceptance = clocks
        assert acceptance.state is ClockState.STOPPED
        assert acceptance.steps_taken[-1][0] == "assignment_ended"
        later, more = fire_due(clocks, berlin(2026, 2, 1, 12, 0))
        assert (later, more) == (clocks, [])

    def test_a_ladder_without_an_ending_waits_for_the_rep(self) -> None:
        custom = policy(first_touch={"within": "1bh"}, on_breach=[{"action": "escalate"}])
        [clock] = start_clocks(custom, CALENDAR, assignment())
        clock, actions = due_actions(clock, berlin(2026, 1, 20, 9, 0))
        assert kinds(actions) == ["Breach", "Escalate"]
        assert clock.state is ClockState.BREACHED
        assert next_fire_at(clock) is None
        [clock] = on_sales_activity([clock], "contacted", berlin(2026, 1, 20, 9, 5))
        assert clock.state is ClockState.COMPLETED
        assert clock.was_breached


class TestFiresOnce:
    def test_same_now_twice_yields_nothing_new(self) -> None:
        clock, _ = sdr_clocks()
        now = berlin(2026, 1, 13, 11, 0)
        once, actions = due_actions(clock, now)
        twice, repeated = due_actions(once, now)
        assert kinds(actions) == ["Breach", "Escalate"]
        assert repeated == []
        assert twice == once

    def test_action_ids_are_unique_and_stable(self) -> None:
        now = berlin(2026, 1, 13, 12, 0)
        _, first = fire_due(list(sdr_clocks()), now)
        _, second = fire_due(list(sdr_clocks()), now)
        ids = [action.action_id for action in first]
        assert ids == [action.action_id for action in second]
        assert len(set(ids)) == len(ids)


class TestCatchUpAfterDowntime:
    def test_every_step_due_meanwhile_fires_in_order(self) -> None:
        thursday = berlin(2026, 1, 15, 9, 0)
        clocks, actions = fire_due(list(sdr_clocks()), thursday)
        # The warning is skipped: the deadline has passed too, and the breach says more.
        assert kinds(actions) == ["Breach", "Escalate", "RequestReassignment"]
        assert {action.fired_at for action in actions} == {thursday}
        assert [c.state for c in clocks] == [ClockState.STOPPED, ClockState.STOPPED]

    def test_overdue_ladder_runs_to_its_end(self) -> None:
        custom = policy(
            first_touch={"within": "1bh", "warn_at": "75%"},
            on_breach=[
                {"action": "escalate"},
                {"action": "escalate", "to": "director"},
                {"action": "recycle"},
            ],
        )
        [clock] = start_clocks(custom, CALENDAR, assignment())
        clock, actions = due_actions(clock, berlin(2026, 1, 30, 9, 0))
        assert kinds(actions) == ["Breach", "Escalate", "Escalate", "Recycle"]
        assert [a.escalated_to for a in actions if isinstance(a, Escalate)] == [
            "manager",
            "director",
        ]
        assert clock.state is ClockState.STOPPED

    def test_partly_overdue_fires_only_what_is_due(self) -> None:
        clock, _ = sdr_clocks()
        clock, actions = due_actions(clock, berlin(2026, 1, 13, 11, 30))
        assert kinds(actions) == ["Breach", "Escalate"]
        assert next_fire_at(clock) == berlin(2026, 1, 13, 12, 0)


class TestSalesActivity:
    @pytest.mark.parametrize(
        "contact_at",
        [
            pytest.param(berlin(2026, 1, 13, 10, 30), id="before-warning"),
            pytest.param(berlin(2026, 1, 13, 10, 50), id="after-warning"),
            pytest.param(berlin(2026, 1, 13, 11, 30), id="after-escalation"),
        ],
    )
    def test_contact_stops_what_remains_of_first_touch(self, contact_at: datetime) -> None:
        clocks, _ = fire_due(list(sdr_clocks()), contact_at)
        clocks = on_sales_activity(clocks, "contacted", contact_at)
        first_touch, acceptance = clocks
        assert first_touch.state is ClockState.COMPLETED
        assert next_fire_at(first_touch) is None
        assert acceptance.state is ClockState.RUNNING
        _, later = fire_due(clocks, berlin(2026, 1, 14, 9, 59))
        assert later == []

    def test_a_contact_attempt_is_a_first_touch(self) -> None:
        clocks = on_sales_activity(sdr_clocks(), "contact_attempted", ASSIGNED)
        assert [c.state for c in clocks] == [ClockState.COMPLETED, ClockState.RUNNING]

    @pytest.mark.parametrize("outcome", ["accepted", "qualified", "opportunity_created", "won"])
    def test_acceptance_and_beyond_complete_every_clock(self, outcome: str) -> None:
        clocks = on_sales_activity(sdr_clocks(), outcome, ASSIGNED)
        assert [c.state for c in clocks] == [ClockState.COMPLETED, ClockState.COMPLETED]

    def test_repeated_activity_changes_nothing(self) -> None:
        once = on_sales_activity(sdr_clocks(), "contacted", ASSIGNED)
        assert on_sales_activity(once, "contacted", ASSIGNED + timedelta(minutes=5)) == once

    @pytest.mark.parametrize("outcome", ["rejected", "disqualified", "lost"])
    def test_a_rejection_or_loss_stops_every_clock_and_nothing_fires(self, outcome: str) -> None:
        at = berlin(2026, 1, 13, 10, 20)
        clocks = on_sales_activity(sdr_clocks(), outcome, at)
        assert [c.state for c in clocks] == [ClockState.STOPPED, ClockState.STOPPED]
        assert [c.steps_taken[-1] for c in clocks] == [(outcome, at), (outcome, at)]
        assert on_sales_activity(clocks, outcome, at) == clocks
        _, fired = fire_due(clocks, berlin(2026, 2, 1, 9, 0))
        assert fired == []

    def test_a_rejection_after_acceptance_leaves_the_completed_clocks_alone(self) -> None:
        accepted = on_sales_activity(sdr_clocks(), "accepted", ASSIGNED)
        assert on_sales_activity(accepted, "disqualified", ASSIGNED) == accepted

    def test_unknown_outcome_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown sales outcome 'called'"):
            on_sales_activity(sdr_clocks(), "called", ASSIGNED)


def test_clock_survives_a_round_trip_through_storage() -> None:
    clock, _ = sdr_clocks()
    clock, _ = due_actions(clock, berlin(2026, 1, 13, 11, 0))
    stored = clock.model_dump(mode="json")
    restored = SlaClock.model_validate(stored)
    assert restored == clock
    assert next_fire_at(restored) == next_fire_at(clock)


def test_a_recycle_ends_the_clocks_of_assignments_made_before_it() -> None:
    earlier = sdr_clocks()
    later = sdr_clocks(assignment_id="as-2", at=berlin(2026, 1, 20, 10, 0))
    recycled_at = berlin(2026, 1, 13, 10, 30)

    ended = end_on_recycle([*earlier, *later], recycled_at)

    assert [c.state for c in ended[:2]] == [ClockState.STOPPED, ClockState.STOPPED]
    assert ended[0].steps_taken[-1] == ("lead_recycled", recycled_at)
    assert ended[2:] == list(later)  # the lead qualified again after the recycle
    assert [next_fire_at(c) for c in ended[:2]] == [None, None]
    assert end_on_recycle(ended, recycled_at) == ended  # a redelivery changes nothing
