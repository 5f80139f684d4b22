"""Event handlers: an assignment starts clocks, sales activity stops or advances them, a roster
change applies the rep's out-of-office to their running clocks; a recycle ends them and starts
marketing's, which the MAP's acknowledgement completes.

Each handler runs inside the consume loop's transaction (inbox row, clock rows, parked activity,
the rep's roster entry and any event queued in the outbox commit together): parse, lock the lead,
load, call the pure domain, save. What the monitor announces its firing loop decides
(``firing``), except the reassignment a rep's out-of-office asks for (policy ``hand_on``), which
``on_rep_updated`` queues.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.events import (
    LeadAssigned,
    LeadRecycled,
    MarketingActivity,
    RepUpdated,
    SalesActivity,
    parse_as,
)
from leadrelay.contracts.topics import EventType
from leadrelay.store.unit_of_work import Transaction
from services.sla_monitor import repository
from services.sla_monitor.domain import (
    DEFAULT,
    MARKETING,
    Absence,
    AssignmentFacts,
    ClockKind,
    ClockState,
    SlaClock,
    SlaConfig,
    SlaPolicy,
    end_assignment,
    end_on_recycle,
    on_absences,
    on_marketing_activity,
    on_sales_activity,
    pause,
    start_clocks,
    start_marketing_clock,
    taken_away_by,
)
from services.sla_monitor.domain.rep import assignment_calendar
from services.sla_monitor.messages import ActionPublisher
from services.sla_monitor.metrics import SlaMetrics
from services.sla_monitor.repository import StoredClock

log = logging.getLogger(__name__)

SNAPSHOT_ONLY = datetime(1970, 1, 1, tzinfo=UTC)
"""The ``updated_at`` of a rep kept from an assignment's snapshot: older than any roster change."""


@dataclass(frozen=True)
class SlaHandlers:
    """The SLA monitor's reactions to the events it consumes."""

    sla: SlaConfig
    metrics: SlaMetrics
    publisher: ActionPublisher

    async def lock_batch(self, events: Sequence[CloudEvent], tx: Transaction) -> None:
        """Lock the reps and leads ``events`` touch before the first applies (see
        ``repository.lock_batch``): an assignment's rep and lead, a roster change's rep and its
        leads, any other event's lead. The subject is the lead key, a roster change's the rep."""
        roster = EventType.REP_UPDATED.value
        changed = {str(e.data["rep_id"]) for e in events if e.type == roster}
        assigned = {
            str(e.data["rep_id"]) for e in events if e.type == EventType.LEAD_ASSIGNED.value
        }
        leads = {e.subject for e in events if e.type != roster and e.subject is not None}
        await repository.lock_batch(tx.connection, changed | assigned, leads, changed)

    async def on_lead_assigned(self, event: CloudEvent, tx: Transaction) -> None:
        """Start the policy's clocks in the rep's calendar; end an earlier assignment's clocks.

        The deadlines are the ones the event announced (``sla``), so the figure the rep read is
        the one enforced; only a deadline the event lacks is computed here. Absences the monitor
        already knows from the roster pause the first-touch clock (policy ``pause``). Sales
        activity about this assignment that arrived first was parked; it applies now, so a rep
        who accepted before the monitor saw the assignment is not chased for it.
        """
        assigned = parse_as(event, LeadAssigned)
        absences = await self._absences(tx, assigned)  # the rep before the lead, always
        await repository.lock_lead(tx.connection, assigned.lead_key)
        existing = await repository.load_lead(tx.connection, assigned.lead_key)
        if any(s.clock.assignment_id == assigned.assignment_id for s in existing):
            log.info("assignment %s already has clocks", assigned.assignment_id)
            return
        ended = [
            s.replace(c) for s, c in zip(existing, _end_others(existing, assigned), strict=True)
        ]
        await repository.save_changed(tx.connection, existing, ended)
        clocks = self._start(assigned, existing, absences)
        started = [StoredClock(c, assigned.role, assigned.team) for c in clocks]
        await repository.insert_new(tx.connection, started)
        await self._apply_parked(tx, assigned, started)

    def _start(
        self, assigned: LeadAssigned, existing: Sequence[StoredClock], absences: list[Absence]
    ) -> list[SlaClock]:
        """The assignment's clocks: due at its announced deadlines, in the snapshot calendar,
        paused for the rep's absences already known (policy ``pause``)."""
        policy = self._announced_policy(assigned)
        calendar = assignment_calendar(assigned.rep, policy, self.sla)
        facts = _facts(assigned, existing)
        clocks = start_clocks(policy, calendar, facts, announced=_announced(assigned))
        if absences and policy.out_of_office == "pause":
            clocks = [pause(clock, policy, calendar, absences) for clock in clocks]
        return clocks

    async def on_sales_activity(self, event: CloudEvent, tx: Transaction) -> None:
        """Apply the rep's outcome to the assignment it is about, or park it until that exists."""
        activity = parse_as(event, SalesActivity)
        await repository.lock_lead(tx.connection, activity.lead_key)
        loaded = await repository.load_lead(tx.connection, activity.lead_key)
        clocks = _concerned(loaded, activity, self.sla.skew)
        if not clocks:
            if await repository.park_activity(tx.connection, event.id, activity, tx.now()):
                tx.after_commit(self.metrics.parked_activity.labels("parked").inc)
            log.info("sales activity %s parked: its assignment has no clocks yet", event.id)
            return
        await self._apply(tx, clocks, activity)

    async def on_rep_updated(self, event: CloudEvent, tx: Transaction) -> None:
        """Keep the rep's roster entry; apply their out-of-office to their open first-touch
        clocks as each clock's policy says (pause it, or hand the lead on). A change older than
        the one kept is ignored."""
        updated = parse_as(event, RepUpdated)
        if not await repository.save_rep(tx.connection, updated):
            log.info("roster change of rep %s is older than the one kept", updated.rep_id)
            return
        for lead_key in await repository.leads_of_rep(tx.connection, updated.rep_id):
            await repository.lock_lead(tx.connection, lead_key)
            loaded = await repository.load_lead(tx.connection, lead_key)
            for clocks in _open_assignments(loaded, updated.rep_id):
                await self._apply_absences(tx, clocks, updated, tx.now())

    async def on_lead_recycled(self, event: CloudEvent, tx: Transaction) -> None:
        """The lead went back to marketing (a rejection, a loss, our own ladder): end the clocks
        of every assignment made before it, so no warning or breach follows a recycled lead, and
        start marketing's clock when the definitions have a ``marketing`` policy."""
        recycled = parse_as(event, LeadRecycled)
        await repository.lock_lead(tx.connection, recycled.lead_key)
        existing = await repository.load_lead(tx.connection, recycled.lead_key)
        if any(s.clock.assignment_id == event.id for s in existing):
            log.info("recycle %s already has its clock", event.id)
            return
        ended = end_on_recycle([s.clock for s in existing], recycled.recycled_at)
        after = [s.replace(c) for s, c in zip(existing, ended, strict=True)]
        await repository.save_changed(tx.connection, existing, after)
        marketing = self.sla.marketing
        if marketing is not None:
            calendar = self.sla.calendar(marketing.calendar)
            clock = start_marketing_clock(
                marketing, calendar, recycled.lead_key, event.id, recycled.recycled_at
            )
            await repository.insert_new(tx.connection, [StoredClock(clock, MARKETING, None)])

    async def on_marketing_activity(self, event: CloudEvent, tx: Transaction) -> None:
        """The MAP acknowledged the recycled lead: complete its open marketing clock. An
        acknowledgement ``sla.clock_skew`` ahead of the recycle still counts (the MAP's clock may
        run behind ours); one for a lead without a marketing clock changes nothing."""
        activity = parse_as(event, MarketingActivity)
        await repository.lock_lead(tx.connection, activity.lead_key)
        existing = await repository.load_lead(tx.connection, activity.lead_key)
        acknowledged = on_marketing_activity(
            [s.clock for s in existing], activity.activity, activity.occurred_at, self.sla.skew
        )
        after = [s.replace(c) for s, c in zip(existing, acknowledged, strict=True)]
        await repository.save_changed(tx.connection, existing, after)

    def _announced_policy(self, assigned: LeadAssigned) -> SlaPolicy:
        """The policy the assignment announced, else (unknown here, or none) the monitor's own
        choice for its role, route and team."""
        announced = self.sla.policy(assigned.sla.policy)
        return announced or self.sla.policy_for(assigned.role, assigned.route, assigned.team)

    async def _absences(self, tx: Transaction, assigned: LeadAssigned) -> list[Absence]:
        """The rep's out-of-office periods from the last roster change kept, if any.

        The rep's row stays locked until the transaction ends, and is locked before any lead,
        the order ``on_rep_updated`` takes them in: a roster change and an assignment of the rep
        in two instances wait for each other instead of missing each other (or deadlocking).
        A rep hand-off never announced (one seeded from the definitions file) is kept from the
        assignment's snapshot, so the forecaster knows their hours; any roster change wins.
        """
        kept = await repository.load_rep(tx.connection, assigned.rep_id, for_update=True)
        if assigned.rep is not None and (kept is None or kept.updated_at == SNAPSHOT_ONLY):
            snapshot = RepUpdated(
                rep_id=assigned.rep_id, rep=assigned.rep, active=True, updated_at=SNAPSHOT_ONLY
            )
            await repository.save_rep(tx.connection, snapshot)
        return _periods(kept) if kept is not None else []

    async def _apply_absences(
        self, tx: Transaction, clocks: list[StoredClock], rep: RepUpdated, now: datetime
    ) -> None:
        """One assignment's clocks after the rep's roster change; queues any reassignment."""
        policy = self.sla.policy(clocks[0].clock.policy_id) or self.sla.policy(DEFAULT)
        assert policy is not None  # the configuration always has a default policy
        calendar = assignment_calendar(rep.rep, policy, self.sla)
        changed, actions = on_absences(
            [s.clock for s in clocks], policy, calendar, _periods(rep), now
        )
        after = [s.replace(c) for s, c in zip(clocks, changed, strict=True)]
        await repository.save_changed(tx.connection, clocks, after)
        await self.publisher.publish(tx, [(action, clocks[0].team) for action in actions])
        if actions:
            log.info(
                "rep %s is out of office: lead %s handed on", rep.rep_id, clocks[0].clock.lead_key
            )

    async def _apply_parked(
        self, tx: Transaction, assigned: LeadAssigned, started: list[StoredClock]
    ) -> None:
        """Apply, in the order it occurred, the parked activity about ``assigned``."""
        parked = await repository.parked_for_lead(tx.connection, assigned.lead_key)
        waiting = [p for p in parked if _is_about(p.activity, assigned, self.sla.skew)]
        clocks = started
        for item in waiting:
            clocks = await self._apply(tx, clocks, item.activity)
            tx.after_commit(self.metrics.parked_activity.labels("applied").inc)
        await repository.unpark(tx.connection, [p.event_id for p in waiting])

    async def _apply(
        self, tx: Transaction, clocks: list[StoredClock], activity: SalesActivity
    ) -> list[StoredClock]:
        """Stop or advance ``clocks`` (one assignment's) as ``activity`` says; returns them as
        saved. A rejection only stops them: scoring, which records every sales outcome, tells
        marketing."""
        outcome, at = activity.outcome, activity.occurred_at
        updated = on_sales_activity([s.clock for s in clocks], outcome, at)
        after = [s.replace(c) for s, c in zip(clocks, updated, strict=True)]
        await repository.save_changed(tx.connection, clocks, after)
        tx.after_commit(lambda: self._observe_first_touch(clocks, after))
        return after

    def _observe_first_touch(
        self, before: Sequence[StoredClock], after: Sequence[StoredClock]
    ) -> None:
        for old, stored in zip(before, after, strict=True):
            clock = stored.clock
            touched = old.clock.is_open and clock.state is ClockState.COMPLETED
            if touched and clock.kind is ClockKind.FIRST_TOUCH:
                touched_at = clock.steps_taken[-1][1]
                seconds = (touched_at - clock.started_at).total_seconds()
                self.metrics.time_to_first_touch.labels(stored.role, stored.team or "").observe(
                    max(seconds, 0.0)
                )


def _facts(assigned: LeadAssigned, existing: Sequence[StoredClock]) -> AssignmentFacts:
    """The domain's view of the assignment; earlier reps of this episode come from our clocks."""
    prior = tuple(
        dict.fromkeys(
            s.clock.rep_id
            for s in existing
            if s.clock.episode == assigned.episode and s.clock.rep_id != assigned.rep_id
        )
    )
    return AssignmentFacts(
        lead_key=assigned.lead_key,
        assignment_id=assigned.assignment_id,
        rep_id=assigned.rep_id,
        role=assigned.role,
        route=assigned.route,
        team=assigned.team,
        episode=assigned.episode,
        attempt=assigned.attempt,
        assigned_at=assigned.assigned_at,
        prior_rep_ids=prior,
        manager=assigned.rep.manager if assigned.rep is not None else None,
    )


def _announced(assigned: LeadAssigned) -> dict[ClockKind, datetime]:
    """The deadlines ``lead_assigned.sla`` announced, by clock (an older event may have none)."""
    due = {
        ClockKind.FIRST_TOUCH: assigned.sla.first_touch_due,
        ClockKind.ACCEPTANCE: assigned.sla.acceptance_due,
    }
    return {kind: at for kind, at in due.items() if at is not None}


def _periods(rep: RepUpdated) -> list[Absence]:
    return [(absence.start, absence.end) for absence in rep.out_of_office]


def _open_assignments(clocks: Sequence[StoredClock], rep_id: str) -> list[list[StoredClock]]:
    """The clocks of each of ``rep_id``'s assignments that still has an open clock."""
    open_ids = {
        s.clock.assignment_id for s in clocks if s.clock.rep_id == rep_id and s.clock.is_open
    }
    return [
        [s for s in clocks if s.clock.assignment_id == assignment_id]
        for assignment_id in sorted(open_ids)
    ]


def _end_others(existing: Sequence[StoredClock], assigned: LeadAssigned) -> list[SlaClock]:
    """A new assignment of the lead ends whatever earlier assignment still runs (no breach for a
    rep who no longer has the lead). Marketing's clock runs on: the lead qualifying again does
    not acknowledge the recycle."""
    clocks = [s.clock for s in existing]
    sales = {c.assignment_id for c in clocks if c.is_open and c.rep_id != MARKETING}
    for assignment_id in sorted(sales):
        clocks = end_assignment(clocks, assignment_id, assigned.assigned_at)
    return clocks


def _is_about(activity: SalesActivity, assigned: LeadAssigned, skew: timedelta) -> bool:
    """Whether parked ``activity`` concerns ``assigned``: by id when the CRM gave one (whatever
    its timestamp), else by rep, and only if it happened after the assignment (the rep's
    rejection of the same person last month says nothing about today's assignment). ``skew``
    (the ``sla.clock_skew`` setting) allows for the CRM's clock running behind ours."""
    if activity.assignment_id is not None:
        return activity.assignment_id == assigned.assignment_id
    after = activity.occurred_at >= assigned.assigned_at - skew
    return activity.rep_id == assigned.rep_id and after


def _concerned(
    clocks: Sequence[StoredClock], activity: SalesActivity, skew: timedelta
) -> list[StoredClock]:
    """The clocks of the assignment the activity is about; none means "not seen yet" (park).

    The event's ``assignment_id`` when given, whatever its timestamp. Else the rep's latest
    assignment that had started (``skew`` allowed) when the activity happened (the same rule
    ``_is_about`` applies to parked activity), unless the rep had lost it by then. Never another
    rep's: activity from a rep whose assignment the monitor has not read yet (a reassignment in
    flight, or the lead back with an earlier rep) must wait for that assignment, not stop
    someone else's clocks.
    """
    if activity.assignment_id is not None:
        return [s for s in clocks if s.clock.assignment_id == activity.assignment_id]
    own = [
        s
        for s in clocks
        if s.clock.rep_id == activity.rep_id and s.clock.started_at - skew <= activity.occurred_at
    ]
    if not own:
        return []
    latest = own[-1].clock.assignment_id  # load_lead returns oldest first
    theirs = [s for s in clocks if s.clock.assignment_id == latest]
    if any(taken_away_by(s.clock, activity.occurred_at) for s in theirs):
        return []
    return theirs
