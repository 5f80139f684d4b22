"""Out of office during a running first-touch clock: pause it, or hand the lead on, by policy."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.sla_monitor.domain import (
    AssignmentFacts,
    BusinessCalendar,
    ClockKind,
    ClockState,
    RequestReassignment,
    SlaClock,
    SlaPolicy,
    due_actions,
    hand_on,
    load_sla,
    on_absences,
    pause,
    start_clocks,
)

from ..helpers import berlin, default_sla_section

CALENDAR = BusinessCalendar.from_parts("Europe/Berlin")
SLA = load_sla(default_sla_section())
SDR = SLA.policy_for("sdr", "round_robin")  # first touch 1bh warn 75%, escalate, reassign...
ASSIGNED = berlin(2026, 1, 13, 10, 0)  # a Tuesday: first touch due 11:00, warning 10:45
AWAY = (berlin(2026, 1, 13, 10, 30), berlin(2026, 1, 13, 14, 0))


def facts() -> AssignmentFacts:
    return AssignmentFacts(
        lead_key="lk_0123",
        assignment_id="as-1",
        rep_id="rep-anna",
        role="sdr",
        route="round_robin",
        team="emea",
        episode=1,
        attempt=1,
        assigned_at=ASSIGNED,
        prior_rep_ids=("rep-bob",),
    )


def clocks(policy: SlaPolicy = SDR) -> list[SlaClock]:
    return start_clocks(policy, CALENDAR, facts())


def with_policy(**fields: Any) -> SlaPolicy:
    return SDR.model_copy(update=fields)


class TestPause:
    def test_time_away_moves_the_first_touch_deadline_later_by_the_working_time_missed(
        self,
    ) -> None:
        first_touch, acceptance = clocks()
        paused = pause(first_touch, SDR, CALENDAR, [AWAY])
        # 30 minutes ran before the absence, 30 are left when the rep is back at 14:00.
        assert paused.due_at == berlin(2026, 1, 13, 14, 30)
        assert paused.warn_at == berlin(2026, 1, 13, 14, 15)
        assert paused.unpaused_due_at == berlin(2026, 1, 13, 11, 0)
        assert paused.ladder[0].at == paused.due_at
        assert paused.ladder[1].at == berlin(2026, 1, 13, 15, 30)  # one more 1bh after the breach
        assert pause(acceptance, SDR, CALENDAR, [AWAY]) == acceptance

    def test_nothing_fires_while_the_rep_is_away(self) -> None:
        paused = pause(clocks()[0], SDR, CALENDAR, [AWAY])
        assert due_actions(paused, berlin(2026, 1, 13, 13, 59))[1] == []

    def test_each_roster_change_counts_from_the_deadline_before_any_pause(self) -> None:
        first_touch = clocks()[0]
        once = pause(first_touch, SDR, CALENDAR, [AWAY])
        assert pause(once, SDR, CALENDAR, [AWAY]) == once
        longer = (AWAY[0], berlin(2026, 1, 13, 15, 0))
        assert pause(once, SDR, CALENDAR, [longer]).due_at == berlin(2026, 1, 13, 15, 30)
        back = pause(once, SDR, CALENDAR, [])  # the absence was withdrawn
        assert back.due_at == first_touch.due_at

    def test_an_absence_outside_the_clock_changes_nothing(self) -> None:
        first_touch = clocks()[0]
        tomorrow = (berlin(2026, 1, 14, 9, 0), berlin(2026, 1, 14, 17, 0))
        assert pause(first_touch, SDR, CALENDAR, [tomorrow]) == first_touch

    def test_a_warning_already_given_is_not_given_again(self) -> None:
        warned, _warning = due_actions(clocks()[0], berlin(2026, 1, 13, 10, 46))
        assert warned.state is ClockState.WARNED
        later = (berlin(2026, 1, 13, 10, 50), berlin(2026, 1, 13, 14, 0))
        paused = pause(warned, SDR, CALENDAR, [later])
        assert paused.due_at == berlin(2026, 1, 13, 14, 10)
        _, fired = due_actions(paused, berlin(2026, 1, 13, 14, 10))
        assert [type(action).__name__ for action in fired] == ["Breach", "Escalate"]

    def test_a_breached_clock_is_not_paused(self) -> None:
        breached, _ = due_actions(clocks()[0], berlin(2026, 1, 13, 11, 1))
        assert breached.state is ClockState.BREACHED
        assert pause(breached, SDR, CALENDAR, [AWAY]) == breached

    def test_an_elapsed_time_deadline_pauses_for_the_real_time_away(self) -> None:
        elapsed = SlaPolicy.model_validate(
            {**SDR.model_dump(mode="json"), "first_touch": {"within": "2h"}}
        )
        first_touch = clocks(elapsed)[0]
        assert first_touch.due_at == berlin(2026, 1, 13, 12, 0)
        assert pause(first_touch, elapsed, CALENDAR, [AWAY]).due_at == berlin(2026, 1, 13, 15, 30)


class TestHandOn:
    NOW = berlin(2026, 1, 13, 10, 20)

    def test_an_absence_before_the_deadline_requests_another_rep_and_ends_the_clocks(
        self,
    ) -> None:
        after, actions = hand_on(clocks(), [AWAY], self.NOW)
        (request,) = actions
        assert isinstance(request, RequestReassignment)
        assert request.reason == "out_of_office"
        assert (request.attempt, request.exclude_rep_ids) == (2, ("rep-bob", "rep-anna"))
        assert request.action_id.endswith("/out-of-office")
        assert [c.state for c in after] == [ClockState.STOPPED, ClockState.STOPPED]
        assert after[0].steps_taken[-1] == ("out_of_office", self.NOW)

    def test_an_absence_after_the_deadline_or_already_over_hands_nothing_on(self) -> None:
        later = (berlin(2026, 1, 13, 12, 0), berlin(2026, 1, 13, 13, 0))
        over = (berlin(2026, 1, 13, 8, 0), berlin(2026, 1, 13, 9, 0))
        current = clocks()
        assert hand_on(current, [later, over], self.NOW) == (current, [])

    def test_the_policy_decides_between_pause_and_hand_on(self) -> None:
        paused, none = on_absences(clocks(), SDR, CALENDAR, [AWAY], self.NOW)
        assert none == []
        assert paused[0].kind is ClockKind.FIRST_TOUCH
        assert paused[0].due_at == berlin(2026, 1, 13, 14, 30)
        handing_on = with_policy(out_of_office="hand_on")
        stopped, requested = on_absences(clocks(), handing_on, CALENDAR, [AWAY], self.NOW)
        assert [type(a).__name__ for a in requested] == ["RequestReassignment"]
        assert not any(c.is_open for c in stopped)


def test_the_default_policy_pauses_and_the_key_is_validated() -> None:
    assert all(policy.out_of_office == "pause" for policy in SLA.policies)
    section = default_sla_section()
    section["policies"][0]["out_of_office"] = "hand_on"
    assert load_sla(section).policies[0].out_of_office == "hand_on"
    section["policies"][0]["out_of_office"] = "ignore"
    with pytest.raises(ValidationError, match="out_of_office"):
        load_sla(section)
