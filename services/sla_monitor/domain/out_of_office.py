"""A rep out of office while their first-touch clock runs: pause the clock, or hand the lead on.

The SLA policy's ``out_of_office`` decides. ``pause`` counts the clock in the rep's calendar with
their absences taken out (:meth:`~leadrelay.calendar.BusinessCalendar.with_absences`): the time
left to the deadline does not run while they are away, so the deadline moves later by the working
time they miss; an absence withdrawn moves it back. The clock keeps the deadline it had before
any pause (``unpaused_due_at``), so each roster change is applied to that, not on top of the last
one. A clock already breached is not paused (the ladder is under way).

``hand_on`` asks hand-off for another rep (``lead_reassignment_requested`` with reason
``out_of_office``) when an absence covers now or begins before the clock's deadline: the rep
could not make it. The assignment ends like a ladder reassignment (the clocks stop); the new
assignment gets fresh clocks.

Only first-touch clocks: acceptance takes days and is the rep's to hand over or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from leadrelay.calendar import WEEKDAYS, BusinessCalendar, add_business_time, business_time_between
from leadrelay.durations import TimeBasis
from services.sla_monitor.domain.actions import (
    ClockKind,
    ReassignmentReason,
    RequestReassignment,
    SlaAction,
)
from services.sla_monitor.domain.clocks import (
    OUT_OF_OFFICE,
    ClockState,
    SlaClock,
    clock_facts,
    end_assignment,
    reschedule,
)
from services.sla_monitor.domain.config import SlaPolicy

Absence = tuple[datetime, datetime]
"""An out-of-office period as aware instants, ``end`` exclusive."""

ELAPSED = BusinessCalendar.from_parts("UTC", dict.fromkeys(WEEKDAYS, ("00:00-24:00",)))
"""Every moment is working time: how a clock of real elapsed time (``4h``) counts."""

_PAUSABLE = frozenset({ClockState.RUNNING, ClockState.WARNED})


def on_absences(
    clocks: Sequence[SlaClock],
    policy: SlaPolicy,
    calendar: BusinessCalendar,
    absences: Sequence[Absence],
    now: datetime,
) -> tuple[list[SlaClock], list[SlaAction]]:
    """One assignment's clocks after learning the rep's ``absences``, as ``policy`` says.

    ``calendar`` is the one the assignment's deadlines count in (without absences).
    """
    if policy.out_of_office == "hand_on":
        return hand_on(clocks, absences, now)
    return [pause(clock, policy, calendar, absences) for clock in clocks], []


def pause(
    clock: SlaClock, policy: SlaPolicy, calendar: BusinessCalendar, absences: Sequence[Absence]
) -> SlaClock:
    """``clock`` with its deadline counted in ``calendar`` minus ``absences`` (see module)."""
    spec = policy.first_touch
    if clock.kind is not ClockKind.FIRST_TOUCH or clock.state not in _PAUSABLE or spec is None:
        return clock
    counting = calendar if spec.within.basis is not TimeBasis.WALL else ELAPSED
    unpaused = clock.unpaused_due_at or clock.due_at
    budget = business_time_between(counting, clock.started_at, unpaused)
    due = add_business_time(counting.with_absences(absences), clock.started_at, budget)
    if due == clock.due_at:
        return clock
    moved = reschedule(clock, spec, policy.on_breach, calendar.with_absences(absences), due)
    return moved.model_copy(update={"unpaused_due_at": unpaused})


def hand_on(
    clocks: Sequence[SlaClock], absences: Sequence[Absence], now: datetime
) -> tuple[list[SlaClock], list[SlaAction]]:
    """Request another rep for each open first-touch clock the rep will be away for (see
    module); the assignment's clocks stop."""
    current = list(clocks)
    actions: list[SlaAction] = []
    for clock in clocks:
        first_touch = clock.kind is ClockKind.FIRST_TOUCH
        if not (first_touch and clock.is_open and away_before_due(clock, absences, now)):
            continue
        actions.append(reassignment_request(clock, now, reason="out_of_office"))
        current = end_assignment(current, clock.assignment_id, now, label=OUT_OF_OFFICE)
    return current, actions


def away_before_due(clock: SlaClock, absences: Sequence[Absence], now: datetime) -> bool:
    """Whether an absence covers ``now`` or begins before the clock's deadline (and is not over)."""
    horizon = max(clock.due_at, now)
    return any(start <= horizon and end > now for start, end in absences)


def reassignment_request(
    clock: SlaClock, now: datetime, *, reason: ReassignmentReason
) -> RequestReassignment:
    """Ask hand-off for another rep for ``clock``'s lead outside the ladder (``reason`` says why:
    the rep's absence, or a forecast that the clock will not be met); every rep who had the lead
    in this episode is excluded."""
    return RequestReassignment(
        **clock_facts(clock, now),
        position=0,
        episode=clock.episode,
        attempt=clock.attempt + 1,
        max_reassignments=None,
        exclude_rep_ids=tuple(dict.fromkeys((*clock.prior_rep_ids, clock.rep_id))),
        reason=reason,
    )
