"""SLA clocks: pure state transitions ``(clock state, now) -> (new clock state, actions)``.

Lifecycle of a clock: ``running`` -> ``warned`` (at ``warn_at``) -> ``breached`` (at ``due_at``) ->
``completed`` (the awaited sales activity arrived, on time or late) or ``stopped`` (the clock ended
without it: rejected or disqualified by sales, lead lost, the assignment reassigned, the lead
recycled by the ladder, or a sibling clock of the same assignment ended the assignment).

The breach ladder (``on_breach``) is scheduled when the clock starts, so users can read every step's
time from the clock: at ``due_at`` the clock emits Breach and applies the first step; each further
step comes another ``within`` later (the clock's own deadline length, in its own calendar), unless
the step sets ``after``. A ``reassign`` step whose ``max`` is already used up is left out of the
schedule, so the next step takes its place. Reassign and recycle end the assignment: the clock
stops, and the new assignment (if any) gets fresh clocks.

Marketing's clock (``marketing_acknowledgement``, policy ``marketing``) has the same lifecycle: a
recycle starts it (:func:`start_marketing_clock`), the MAP's acknowledgement completes it
(:func:`on_marketing_activity`), it warns, breaches and escalates like a sales clock (its ladder
can only escalate).

Every action fires exactly once: the new clock records it, so repeating a call with the same ``now``
yields nothing. After downtime, every step due by ``now`` fires in order, except a warning whose
deadline has also passed (the breach says more).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, TypedDict

from pydantic import AwareDatetime, BaseModel, ConfigDict

from leadrelay.calendar import BusinessCalendar, to_utc
from leadrelay.contracts.envelope import uuid5_text
from leadrelay.durations import Duration
from services.sla_monitor.domain.actions import (
    Breach,
    ClockKind,
    Escalate,
    Recycle,
    RequestReassignment,
    SlaAction,
    Warn,
)
from services.sla_monitor.domain.config import (
    MARKETING,
    ClockPolicy,
    EscalateStep,
    LadderStep,
    MarketingPolicy,
    ReassignStep,
    RecycleStep,
    Role,
    Route,
    SlaPolicy,
)

_CLOCK_NAMESPACE: Final = uuid.UUID("5b0f3c8e-2f5a-4b0e-9a57-6c1d2e3f4a5b")
"""Fixed forever: clock ids derived from it are stored in databases."""

WARNING: Final = "warn"
BREACH: Final = "breach"
ASSIGNMENT_ENDED: Final = "assignment_ended"
"""Labels in ``steps_taken`` besides ladder actions (escalate, reassign, recycle) and outcomes."""
LEAD_RECYCLED: Final = "lead_recycled"
"""A clock ended because the lead went back to marketing (whoever recycled it)."""
OUT_OF_OFFICE: Final = "out_of_office"
"""A clock ended because the rep's absence handed the lead on (policy ``hand_on``)."""
AT_RISK: Final = "sla_at_risk"
"""A clock ended because a forecast that it would not be met handed the lead on (policy
``at_risk: reassign``)."""
_TAKEN_AWAY: Final = frozenset(
    {ASSIGNMENT_ENDED, LEAD_RECYCLED, OUT_OF_OFFICE, AT_RISK, "reassign", "recycle"}
)
"""Steps after which the assignment is no longer the rep's."""

_SALES: Final = frozenset({ClockKind.FIRST_TOUCH, ClockKind.ACCEPTANCE})
_COMPLETES: Final[dict[str, frozenset[ClockKind]]] = {
    "contact_attempted": frozenset({ClockKind.FIRST_TOUCH}),
    "contacted": frozenset({ClockKind.FIRST_TOUCH}),
    "accepted": _SALES,
    "qualified": _SALES,
    "opportunity_created": _SALES,
    "won": _SALES,
}
MARKETING_ACKNOWLEDGED: Final = "nurture_enrolled"
"""The MAP activity that completes marketing's clock."""
_STOPS: Final = frozenset({"rejected", "disqualified", "lost"})
"""Outcomes that end every clock. Marketing hears of them from scoring, which records every
sales outcome (the SLA monitor announces only what its own ladder decides)."""


class ClockState(StrEnum):
    RUNNING = "running"
    WARNED = "warned"
    BREACHED = "breached"
    STOPPED = "stopped"
    COMPLETED = "completed"


_TERMINAL: Final = frozenset({ClockState.STOPPED, ClockState.COMPLETED})
_ENDS_ASSIGNMENT: Final = (RequestReassignment, Recycle)
"""Actions after which the assignment's other clocks stop (a tuple: ``isinstance`` checks a
tuple faster than a ``|`` union, which the check would also build anew every time)."""


@dataclass(frozen=True, kw_only=True)
class AssignmentFacts:
    """What the assignment event tells the SLA monitor; ``attempt`` 1 is the first assignment.

    ``prior_rep_ids`` are reps who had the lead before in this episode; a reassignment request
    excludes them and the current rep.
    """

    lead_key: str
    assignment_id: str
    rep_id: str
    role: Role
    route: Route
    team: str | None
    episode: int
    attempt: int
    assigned_at: datetime
    prior_rep_ids: tuple[str, ...] = ()
    manager: str | None = None
    """The rep's manager from the assignment's rep snapshot (whom ``manager`` escalates to)."""


class ScheduledStep(BaseModel):
    """One ladder step and when it applies; ``position`` is its 1-based place in ``on_breach``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    position: int
    at: AwareDatetime
    step: LadderStep


class SlaClock(BaseModel):
    """One durable clock; persist it with ``model_dump(mode="json")`` / ``model_validate``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clock_id: str
    lead_key: str
    assignment_id: str
    rep_id: str
    episode: int
    attempt: int
    kind: ClockKind
    policy_id: str
    started_at: AwareDatetime
    warn_at: AwareDatetime | None
    due_at: AwareDatetime
    state: ClockState = ClockState.RUNNING
    ladder_position: int = 0
    """How many scheduled ladder steps have been applied (index of the next one in ``ladder``)."""
    reassignments_done: int = 0
    steps_taken: tuple[tuple[str, AwareDatetime], ...] = ()
    """(label, when) of every warning, breach, ladder step and ending, in order."""
    ladder: tuple[ScheduledStep, ...] = ()
    prior_rep_ids: tuple[str, ...] = ()
    manager: str | None = None
    """The rep's manager at assignment; clocks stored before the snapshot existed have none."""
    unpaused_due_at: AwareDatetime | None = None
    """The deadline before the rep's out-of-office paused the clock; None if it never did."""

    @property
    def is_open(self) -> bool:
        return self.state not in _TERMINAL

    @property
    def was_breached(self) -> bool:
        return any(label == BREACH for label, _at in self.steps_taken)


def clock_id_for(assignment_id: str, kind: ClockKind) -> str:
    """Deterministic, so a redelivered assignment maps onto the clocks it already started."""
    return uuid5_text(_CLOCK_NAMESPACE, f"{assignment_id}/{kind}")


def start_clocks(
    policy: SlaPolicy,
    calendar: BusinessCalendar,
    assignment: AssignmentFacts,
    reassignments_so_far: int | None = None,
    announced: Mapping[ClockKind, datetime] | None = None,
) -> list[SlaClock]:
    """The clocks ``policy`` starts for ``assignment``, counted in ``calendar`` (the rep's own).

    ``announced`` holds the deadlines the assignment already announced (``lead_assigned.sla``):
    a clock given one is due then, whatever ``policy`` would compute; its warning and ladder
    follow from that deadline in ``calendar``. ``reassignments_so_far`` (how often the lead was
    reassigned in this episode) decides whether the ladder can still reassign; left out, it is
    ``assignment.attempt - 1``.
    """
    if reassignments_so_far is None:
        reassignments_so_far = max(assignment.attempt - 1, 0)
    given = announced or {}
    return [
        _start_clock(
            kind,
            spec,
            policy.id,
            policy.on_breach,
            calendar,
            assignment,
            reassignments_so_far,
            given.get(kind),
        )
        for kind, spec in _specs(policy)
    ]


def reschedule(
    clock: SlaClock,
    spec: ClockPolicy,
    ladder: Sequence[LadderStep],
    calendar: BusinessCalendar,
    due: datetime,
) -> SlaClock:
    """``clock`` due at ``due`` instead: its warning and ladder steps counted anew in
    ``calendar`` from that deadline (a warning already given stays given)."""
    started, due = clock.started_at, to_utc(due)
    return clock.model_copy(
        update={
            "due_at": due,
            "warn_at": _warning(spec, calendar, started, due),
            "ladder": _schedule(ladder, spec.within, calendar, due, clock.reassignments_done),
        }
    )


def next_fire_at(clock: SlaClock) -> datetime | None:
    """When ``due_actions`` next has something to do; ``None`` when nothing is scheduled."""
    if not clock.is_open:
        return None
    if clock.state is ClockState.RUNNING and clock.warn_at is not None:
        return clock.warn_at
    if clock.state in (ClockState.RUNNING, ClockState.WARNED):
        return clock.due_at
    if clock.ladder_position < len(clock.ladder):
        return clock.ladder[clock.ladder_position].at
    return None


def due_actions(clock: SlaClock, now: datetime) -> tuple[SlaClock, list[SlaAction]]:
    """Fire everything due by ``now``, in order. Idempotent for the same ``now``.

    When the result contains RequestReassignment or Recycle the assignment has ended: stop its
    other clocks (or use :func:`fire_due`, which does so).
    """
    now = to_utc(now)
    actions: list[SlaAction] = []
    while _is_due(clock, now):
        clock, fired = _fire_next(clock, now)
        actions.extend(fired)
    return clock, actions


def fire_due(clocks: Sequence[SlaClock], now: datetime) -> tuple[list[SlaClock], list[SlaAction]]:
    """``due_actions`` for several clocks (e.g. both clocks of an assignment), in time order.

    When one clock's step reassigns or recycles, the other open clocks of that assignment stop
    (label ``assignment_ended``) instead of firing steps of their own.
    """
    now = to_utc(now)
    current = list(clocks)
    actions: list[SlaAction] = []
    while due := [
        (fire_at, clock.kind is not ClockKind.FIRST_TOUCH, index)
        for index, clock in enumerate(current)
        if (fire_at := next_fire_at(clock)) is not None and fire_at <= now
    ]:
        _at, _kind, index = min(due)
        current[index], fired = _fire_next(current[index], now)
        actions.extend(fired)
        if any(isinstance(action, _ENDS_ASSIGNMENT) for action in fired):
            current = end_assignment(current, current[index].assignment_id, now)
    return current, actions


def on_sales_activity(clocks: Iterable[SlaClock], outcome: str, at: datetime) -> list[SlaClock]:
    """Apply a sales outcome (reported at ``at``) to a lead's clocks. Idempotent.

    ``contact_attempted``/``contacted`` complete first touch; ``accepted``, ``qualified``,
    ``opportunity_created`` and ``won`` complete every clock; ``rejected``, ``disqualified``
    and ``lost`` stop every clock. Closed clocks stay as they are. An unknown outcome raises
    ``ValueError``.
    """
    at = to_utc(at)
    if outcome in _STOPS:
        return [_close(c, outcome, at, ClockState.STOPPED) for c in clocks]
    if outcome not in _COMPLETES:
        raise ValueError(f"unknown sales outcome {outcome!r}")
    kinds = _COMPLETES[outcome]
    return [_close(c, outcome, at, ClockState.COMPLETED) if c.kind in kinds else c for c in clocks]


def start_marketing_clock(
    policy: MarketingPolicy,
    calendar: BusinessCalendar,
    lead_key: str,
    recycle_id: str,
    recycled_at: datetime,
) -> SlaClock:
    """Marketing's clock for a lead recycled at ``recycled_at``, counted in ``calendar``.

    It is the recycle's, not an assignment's: ``recycle_id`` (the recycle event's id) stands in
    ``assignment_id``, and marketing (``MARKETING``) in ``rep_id``, so no sales activity reaches
    it. Warning and deadline follow ``policy.acknowledge``, its ladder ``policy.on_breach``,
    as for the sales clocks.
    """
    facts = AssignmentFacts(
        lead_key=lead_key,
        assignment_id=recycle_id,
        rep_id=MARKETING,
        role="sdr",  # unused: only a sales assignment's policy matches on role
        route="fallback",
        team=None,
        episode=0,
        attempt=1,
        assigned_at=recycled_at,
    )
    kind, spec = ClockKind.MARKETING_ACKNOWLEDGEMENT, policy.acknowledge
    return _start_clock(kind, spec, MARKETING, policy.on_breach, calendar, facts, 0, None)


def on_marketing_activity(
    clocks: Iterable[SlaClock], activity: str, at: datetime, skew: timedelta = timedelta(0)
) -> list[SlaClock]:
    """Apply the MAP's ``activity`` at ``at``: ``nurture_enrolled`` completes every open marketing
    clock started by ``at + skew`` (how far the MAP's clock may run behind ours); other clocks
    are unchanged. Idempotent; an unknown activity raises ``ValueError``."""
    if activity != MARKETING_ACKNOWLEDGED:
        raise ValueError(f"unknown marketing activity {activity!r}")
    at = to_utc(at)
    return [
        _close(c, activity, at, ClockState.COMPLETED)
        if c.kind is ClockKind.MARKETING_ACKNOWLEDGEMENT and c.started_at <= at + skew
        else c
        for c in clocks
    ]


def deadlines(
    policy: SlaPolicy, calendar: BusinessCalendar, assigned_at: datetime
) -> dict[ClockKind, datetime]:
    """When each of ``policy``'s clocks comes due for an assignment made at ``assigned_at``."""
    started = to_utc(assigned_at)
    return {kind: spec.within.after(calendar, started) for kind, spec in _specs(policy)}


def _specs(policy: SlaPolicy) -> list[tuple[ClockKind, ClockPolicy]]:
    specs = ((ClockKind.FIRST_TOUCH, policy.first_touch), (ClockKind.ACCEPTANCE, policy.acceptance))
    return [(kind, spec) for kind, spec in specs if spec is not None]


def _start_clock(
    kind: ClockKind,
    spec: ClockPolicy,
    policy_id: str,
    ladder: Sequence[LadderStep],
    calendar: BusinessCalendar,
    assignment: AssignmentFacts,
    reassignments_so_far: int,
    announced_due: datetime | None,
) -> SlaClock:
    started = to_utc(assignment.assigned_at)
    due = spec.within.after(calendar, started) if announced_due is None else to_utc(announced_due)
    return SlaClock(
        clock_id=clock_id_for(assignment.assignment_id, kind),
        lead_key=assignment.lead_key,
        assignment_id=assignment.assignment_id,
        rep_id=assignment.rep_id,
        episode=assignment.episode,
        attempt=assignment.attempt,
        kind=kind,
        policy_id=policy_id,
        started_at=started,
        warn_at=_warning(spec, calendar, started, due),
        due_at=due,
        reassignments_done=reassignments_so_far,
        ladder=_schedule(ladder, spec.within, calendar, due, reassignments_so_far),
        prior_rep_ids=assignment.prior_rep_ids,
        manager=assignment.manager,
    )


def _warning(
    spec: ClockPolicy, calendar: BusinessCalendar, started: datetime, due: datetime
) -> datetime | None:
    """When the clock warns (before ``due`` only), or None when the policy gives no warning."""
    if spec.warn_at is None:
        return None
    warn = spec.warn_at.warn_at(calendar, started, due, spec.within.basis)
    return warn if warn is not None and warn < due else None


def _schedule(
    ladder: Sequence[LadderStep],
    within: Duration,
    calendar: BusinessCalendar,
    due: datetime,
    reassignments_so_far: int,
) -> tuple[ScheduledStep, ...]:
    """Step times: the first at the breach, each next one ``within`` later (or its ``after``)."""
    scheduled: list[ScheduledStep] = []
    at = due
    for position, step in enumerate(ladder, start=1):
        if isinstance(step, ReassignStep) and reassignments_so_far >= step.max:
            continue
        gap = step.after if step.after is not None else (within if scheduled else None)
        at = gap.after(calendar, at) if gap is not None else at
        scheduled.append(ScheduledStep(position=position, at=at, step=step))
    return tuple(scheduled)


def _is_due(clock: SlaClock, now: datetime) -> bool:
    fire_at = next_fire_at(clock)
    return fire_at is not None and fire_at <= now


def _fire_next(clock: SlaClock, now: datetime) -> tuple[SlaClock, list[SlaAction]]:
    """Apply the one next thing that is due: a warning, the breach, or one ladder step."""
    if clock.state is ClockState.RUNNING and clock.warn_at is not None and clock.due_at > now:
        return _record(clock, WARNING, now, state=ClockState.WARNED), [
            Warn(**clock_facts(clock, now))
        ]
    if clock.state in (ClockState.RUNNING, ClockState.WARNED):
        return _record(clock, BREACH, now, state=ClockState.BREACHED), [
            Breach(**clock_facts(clock, now))
        ]
    return _apply_step(clock, clock.ladder[clock.ladder_position], now)


def _apply_step(
    clock: SlaClock, scheduled: ScheduledStep, now: datetime
) -> tuple[SlaClock, list[SlaAction]]:
    """Apply one scheduled ladder step; the new clock is one copy (the loop fires millions)."""
    step, position = scheduled.step, scheduled.position
    facts = clock_facts(clock, now)
    applied = clock.ladder_position + 1
    if isinstance(step, EscalateStep):
        action = Escalate(**facts, position=position, escalated_to=step.to, manager=clock.manager)
        return _record(clock, step.action, now, ladder_position=applied), [action]
    if isinstance(step, ReassignStep):
        excluded = tuple(dict.fromkeys((*clock.prior_rep_ids, clock.rep_id)))
        reassign = RequestReassignment(
            **facts,
            position=position,
            episode=clock.episode,
            attempt=clock.attempt + 1,
            max_reassignments=step.max,
            exclude_rep_ids=excluded,
        )
        stopped = _record(
            clock,
            step.action,
            now,
            state=ClockState.STOPPED,
            ladder_position=applied,
            reassignments_done=clock.reassignments_done + 1,
        )
        return stopped, [reassign]
    assert isinstance(step, RecycleStep)
    recycle = Recycle(
        **facts,
        position=position,
        reason=step.reason,
        detail=f"{clock.kind} SLA breached after {clock.reassignments_done} reassignment(s)",
    )
    stopped = _record(clock, step.action, now, state=ClockState.STOPPED, ladder_position=applied)
    return stopped, [recycle]


def taken_away_by(clock: SlaClock, at: datetime) -> bool:
    """Whether the rep had lost this assignment (reassigned, recycled, superseded) by ``at``."""
    at = to_utc(at)
    return any(label in _TAKEN_AWAY and when <= at for label, when in clock.steps_taken)


def end_assignment(
    clocks: Iterable[SlaClock], assignment_id: str, now: datetime, label: str = ASSIGNMENT_ENDED
) -> list[SlaClock]:
    """Stop the open clocks of ``assignment_id`` (with ``label``); others unchanged.

    For when the assignment ends outside the ladder, e.g. hand-off assigned the lead anew
    (``assignment_ended``) or the rep's absence handed it on (``out_of_office``).
    """
    return [
        _close(c, label, now, ClockState.STOPPED) if c.assignment_id == assignment_id else c
        for c in clocks
    ]


def end_on_recycle(clocks: Iterable[SlaClock], recycled_at: datetime) -> list[SlaClock]:
    """Stop every open clock of an assignment made before the lead was recycled at
    ``recycled_at`` (label ``lead_recycled``): nobody is chased for a lead marketing has back.

    A clock started after the recycle (the lead qualified again since) keeps running, and so
    does marketing's clock of an earlier recycle: only the MAP's acknowledgement ends that.
    """
    at = to_utc(recycled_at)
    return [
        _close(c, LEAD_RECYCLED, at, ClockState.STOPPED)
        if c.started_at <= at and c.kind in _SALES
        else c
        for c in clocks
    ]


def _close(clock: SlaClock, label: str, at: datetime, state: ClockState) -> SlaClock:
    """End an open clock; a closed one is returned unchanged (this makes repeats idempotent)."""
    return _record(clock, label, at, state=state) if clock.is_open else clock


def _record(
    clock: SlaClock, label: str, at: datetime, state: ClockState | None = None, **changes: int
) -> SlaClock:
    """``clock`` with ``label`` taken at ``at``, in ``state`` (if given), and ``changes``."""
    return clock.model_copy(
        update={
            "steps_taken": (*clock.steps_taken, (label, at)),
            "state": state if state is not None else clock.state,
            **changes,
        }
    )


class _Facts(TypedDict):
    clock_id: str
    lead_key: str
    assignment_id: str
    rep_id: str
    clock: ClockKind
    policy: str
    deadline: datetime
    fired_at: datetime


def clock_facts(clock: SlaClock, now: datetime) -> _Facts:
    """The fields every clock action carries (see ``actions.ClockFacts``)."""
    return _Facts(
        clock_id=clock.clock_id,
        lead_key=clock.lead_key,
        assignment_id=clock.assignment_id,
        rep_id=clock.rep_id,
        clock=clock.kind,
        policy=clock.policy_id,
        deadline=clock.due_at,
        fired_at=now,
    )
