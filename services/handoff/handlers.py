"""One handler per consumed event type: parse, lock, load, decide in the domain, save, publish.

The consume loop has already deduplicated the event id and opened the transaction; the
assignment row, the routing state, the rep loads, the inbox row and the ``lead_assigned`` outbox
row commit together or not at all.

Exactly one assignment per episode attempt, whatever is redelivered or runs twice:

1. every decision first locks the routing-state row, so decisions never interleave (several
   instances included) and each sees every assignment committed before it;
2. it then skips an episode (or attempt) that already has its assignment, which is what makes a
   sales-ready event replayed under a NEW event id harmless (the inbox catches the same id);
3. ``UNIQUE(lead_key, episode, attempt)`` refuses a second row should 1 and 2 ever be bypassed:
   the transaction fails, the runtime retries, and the retry finds the row (step 2).

Nobody eligible: the lead goes to the fallback queue. The contract needs a ``rep_id``: it is the
queue's owner when routing names one, otherwise the queue's id (the schema allows it), and
``leadrelay_handoff_no_eligible_rep_total`` counts every such lead for alerting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final, Literal

from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.contracts.events import (
    LeadAssigned,
    LeadReassignmentRequested,
    LeadSalesReady,
    SalesActivity,
    parse_as,
)
from leadrelay.contracts.topics import EventType
from leadrelay.runtime.consumer import Handler
from leadrelay.store.unit_of_work import Transaction
from services.handoff.domain import (
    Credit,
    Rejections,
    RepLoad,
    RosterConfig,
    RoutingConfig,
    RoutingDecision,
    RoutingState,
    claimed,
    decide,
    fairness_report,
    give_turn_back,
)
from services.handoff.domain.inputs import DecisionInputs, RosterSnapshot, inputs_of
from services.handoff.domain.loads import loads_after, releases_the_lead
from services.handoff.domain.ports import SlaDeadlines
from services.handoff.messages import SOURCE, assigned_event_id, lead_assigned, lead_facts
from services.handoff.metrics import HandoffMetrics
from services.handoff.repository import (
    Roster,
    StoredAssignment,
    insert_assignment,
    lead_assignments,
    load_lead_context,
    load_loads,
    load_roster,
    lock_routing_state,
    mark_credit_returned,
    mark_released,
    queued,
    release_lead,
    rotation_counts,
    save_decision_inputs,
    save_lead_context,
    save_load,
    save_routing_state,
)

log = logging.getLogger(__name__)

QUEUE_BATCH: Final = 100
"""Queued leads tried per pass of the queue router (oldest first)."""
ClaimResult = Literal["claimed", "not_queued", "unknown_rep"]
REASSIGNED: Final = "reassigned"
"""Why an assignment was released when the lead went to another rep."""


class MissingLeadContextError(LookupError):
    """A reassignment for an episode hand-off never saw as sales-ready: nothing to route."""


@dataclass(frozen=True)
class _Request:
    """One assignment to make: the lead as scoring sent it, the attempt and whom to leave out."""

    ready: LeadSalesReady
    attempt: int
    excluded: frozenset[str]
    history: list[StoredAssignment]
    state: RoutingState
    requested_at: datetime


@dataclass(frozen=True)
class HandoffHandlers:
    routing: RoutingConfig
    roster: RosterConfig
    deadlines: SlaDeadlines
    assignments_topic: str
    metrics: HandoffMetrics

    def table(self) -> dict[str, Handler]:
        """Event type -> handler; ``lead_assigned`` on the same topic has none and is skipped."""
        return {
            EventType.LEAD_SALES_READY.value: self.on_sales_ready,
            EventType.LEAD_REASSIGNMENT_REQUESTED.value: self.on_reassignment_requested,
            EventType.SALES_ACTIVITY.value: self.on_sales_activity,
        }

    async def on_sales_activity(self, event: CloudEvent, tx: Transaction) -> None:
        """A rep finished with a lead (won, lost, rejected, disqualified): free their capacity.

        Only the rep holding the lead's latest assignment frees it, once: a redelivered or
        repeated outcome, or one from a rep who no longer has the lead, changes nothing.
        """
        activity = parse_as(event, SalesActivity)
        if not releases_the_lead(activity.outcome):
            return
        state = await lock_routing_state(tx.connection, tx.now())  # loads change under the lock
        history = await lead_assignments(tx.connection, activity.lead_key)
        current = history[-1] if history else None
        if current is None or current.rep_id != activity.rep_id or current.released_at:
            return
        await release_lead(tx.connection, activity.rep_id, tx.now())
        await mark_released(tx.connection, current.assignment_id, tx.now(), activity.outcome)
        if _quick_rejection(activity, current, self.routing.credit):
            roster = await load_roster(tx.connection, self.roster, tx.now())
            await self._give_turn_back(tx, state, current, roster)
        log.info(
            "rep %s released lead %s (%s)", activity.rep_id, activity.lead_key, activity.outcome
        )

    async def on_sales_ready(self, event: CloudEvent, tx: Transaction) -> None:
        """Assign the episode's first attempt, unless the episode already has its assignment."""
        ready = parse_as(event, LeadSalesReady)
        state = await lock_routing_state(tx.connection, tx.now())
        history = await lead_assignments(tx.connection, ready.lead_key)
        if any(done.episode >= ready.episode for done in history):
            log.info("lead %s episode %d is already assigned", ready.lead_key, ready.episode)
            return
        await save_lead_context(tx.connection, ready, tx.now())
        await self._assign(tx, _Request(ready, 1, frozenset(), history, state, event.time))

    async def on_reassignment_requested(self, event: CloudEvent, tx: Transaction) -> None:
        """Assign the next attempt to a rep who has not had the lead in this episode."""
        request = parse_as(event, LeadReassignmentRequested)
        state = await lock_routing_state(tx.connection, tx.now())
        history = await lead_assignments(tx.connection, request.lead_key)
        if _superseded(history, request):
            log.info(
                "reassignment of lead %s episode %d attempt %d is done or stale",
                request.lead_key,
                request.episode,
                request.attempt,
            )
            return
        ready = await load_lead_context(tx.connection, request.lead_key, request.episode)
        if ready is None:
            raise MissingLeadContextError(
                f"lead {request.lead_key} episode {request.episode} was never sales-ready here"
            )
        had_it = _reps_of_episode(history, request.episode)
        excluded = frozenset({*request.exclude_rep_ids, *had_it})
        await self._assign(
            tx, _Request(ready, request.attempt, excluded, history, state, event.time)
        )

    async def _give_turn_back(
        self, tx: Transaction, state: RoutingState, taken: StoredAssignment, roster: Roster
    ) -> RoutingState:
        """Return the rotation turn ``taken`` cost its rep; the state as saved."""
        if taken.pool is None or taken.rep_id is None or taken.credit_returned:
            return state
        members = {rep.id: rep.weight for rep in roster.reps}
        returned = give_turn_back(state, taken.pool, taken.rep_id, members)
        if returned != state:
            await save_routing_state(tx.connection, state.version, returned, tx.now())
        await mark_credit_returned(tx.connection, taken.assignment_id)
        log.info("turn given back to rep %s in pool %s", taken.rep_id, taken.pool)
        return returned

    async def route_queued(self, tx: Transaction, limit: int = QUEUE_BATCH) -> int:
        """Give queued leads, oldest first, to a rep who can take them now (capacity freed,
        shift started, back from out-of-office); the others stay queued. How many moved."""
        moved = 0
        for waiting in await queued(tx.connection, limit=limit):
            state = await lock_routing_state(tx.connection, tx.now())
            request = await self._next_attempt(tx, waiting, state)
            if request is not None and await self._assign(tx, request, only_to_a_rep=True):
                moved += 1
        if moved:
            log.info("routed %d queued leads to reps", moved)
        await self._measure_queues(tx)
        return moved

    async def _measure_queues(self, tx: Transaction) -> None:
        """Export each queue's depth and the age of its oldest lead (the configured queue even
        when empty)."""
        depth: dict[str, int] = {self.routing.fallback.queue: 0}
        oldest: dict[str, float] = {self.routing.fallback.queue: 0.0}
        for waiting in await queued(tx.connection):
            name = waiting.fallback_queue or ""
            depth[name] = depth.get(name, 0) + 1
            age = (tx.now() - waiting.assigned_at).total_seconds()
            oldest[name] = max(oldest.get(name, 0.0), age)
        tx.after_commit(lambda: self.metrics.observe_queues(depth, oldest))

    async def claim(self, tx: Transaction, queue: str, lead_key: str, rep_id: str) -> ClaimResult:
        """A rep takes a lead waiting in ``queue``: the next attempt is theirs."""
        state = await lock_routing_state(tx.connection, tx.now())
        waiting = [w for w in await queued(tx.connection, queue) if w.lead_key == lead_key]
        if not waiting:
            return "not_queued"
        roster = await load_roster(tx.connection, self.roster, tx.now())
        rep = roster.rep(rep_id)
        if rep is None or not rep.active:
            return "unknown_rep"
        request = await self._next_attempt(tx, waiting[0], state)
        if request is None:
            return "not_queued"
        loads = await load_loads(tx.connection)
        await self._record(tx, request, claimed(rep, queue, state), roster, loads, None)
        return "claimed"

    async def _next_attempt(
        self, tx: Transaction, waiting: StoredAssignment, state: RoutingState
    ) -> _Request | None:
        """The request that routes a queued lead again (its episode's next attempt)."""
        ready = await load_lead_context(tx.connection, waiting.lead_key, waiting.episode)
        if ready is None:
            return None
        history = await lead_assignments(tx.connection, waiting.lead_key)
        excluded = frozenset(_reps_of_episode(history, waiting.episode))
        return _Request(ready, waiting.attempt + 1, excluded, history, state, tx.now())

    async def _assign(
        self, tx: Transaction, request: _Request, *, only_to_a_rep: bool = False
    ) -> bool:
        """Decide and record the assignment; with ``only_to_a_rep``, a decision for the
        fallback queue records nothing (False)."""
        connection, now, ready = tx.connection, tx.now(), request.ready
        started = time.perf_counter()
        roster = await load_roster(connection, self.roster, now)
        held = _still_held(request.history)
        if held is not None and self.routing.credit.give_back_on_reassignment:
            given = await self._give_turn_back(tx, request.state, held, roster)
            request = replace(request, state=given)
        loads = await load_loads(connection)
        rejected_by = _rejected_by(request.history, ready.episode, self.routing.rejections)
        facts = lead_facts(ready, request.excluded, rejected_by)
        decision = decide(
            self.routing, roster.reps, roster.accounts, facts, request.state, loads, now
        )
        tx.after_commit(
            lambda: self.metrics.decision_seconds.observe(time.perf_counter() - started)
        )
        if only_to_a_rep and decision.route == "fallback":
            return False
        seen = inputs_of(
            self.routing, roster.reps, roster.accounts, facts, request.state, loads, now
        )
        await self._record(tx, request, decision, roster, loads, held, seen)
        return True

    async def _record(
        self,
        tx: Transaction,
        request: _Request,
        decision: RoutingDecision,
        roster: Roster,
        loads: Mapping[str, RepLoad],
        held: StoredAssignment | None,
        seen: tuple[DecisionInputs, RosterSnapshot] | None = None,
    ) -> None:
        """Store the decision (state, loads, assignment row, and ``seen``: what ``decide`` was
        given, None for a claim) and queue its ``lead_assigned``."""
        connection, now, ready = tx.connection, tx.now(), request.ready
        if decision.new_state != request.state:
            await save_routing_state(connection, request.state.version, decision.new_state, now)
        rep = roster.rep(decision.rep_id)
        for load in loads_after(held.rep_id if held is not None else None, rep, loads, now):
            await save_load(connection, load, now)
        if held is not None:
            await mark_released(connection, held.assignment_id, now, REASSIGNED)
        payload = lead_assigned(
            ready,
            decision,
            rep,
            attempt=request.attempt,
            deadlines=self.deadlines,
            assigned_at=now,
        )
        await insert_assignment(connection, _row(payload, decision))
        if seen is not None:
            await save_decision_inputs(connection, payload.assignment_id, *seen)
        await tx.publish(
            self.assignments_topic,
            new_event(
                EventType.LEAD_ASSIGNED.value,
                SOURCE,
                payload,
                subject=ready.lead_key,
                time=now,
                id=assigned_event_id(ready.lead_key, ready.episode, request.attempt),
            ),
        )
        tx.after_commit(lambda: self._observe(decision, roster, payload, request.requested_at))
        await self._measure_fairness(tx, roster)

    async def _measure_fairness(self, tx: Transaction, roster: Roster) -> None:
        """Export each rep's expected and actual share, and each pool's largest deviation."""
        window = self.routing.credit.fairness_window
        counts = await rotation_counts(tx.connection, tx.now() - window)
        report = fairness_report(self.routing, roster.reps, counts)
        tx.after_commit(lambda: self.metrics.observe_fairness(report))

    def _observe(
        self,
        decision: RoutingDecision,
        roster: Roster,
        payload: LeadAssigned,
        requested_at: datetime,
    ) -> None:
        """Metrics and one log line (ids only: never an email address)."""
        metrics = self.metrics
        metrics.assignments.labels(decision.route, payload.role).inc()
        for rep in roster.reps:
            metrics.rep_weight.labels(rep.id, rep.role).set(rep.weight)
        for skipped in decision.trace.skipped:
            metrics.reps_skipped.labels(skipped.reason).inc()
        wait = (payload.assigned_at - requested_at).total_seconds()
        metrics.assignment_wait_seconds.labels(decision.route).observe(max(wait, 0.0))
        if decision.rep_id is not None:
            metrics.rep_assignments.labels(decision.rep_id, payload.role).inc()
        if decision.route == "fallback":
            metrics.no_eligible_rep.labels(
                decision.role,
                decision.fallback_queue or "",
                str(decision.rep_id is not None).lower(),
            ).inc()
            log.warning(
                "no eligible rep for lead %s (%s pool): fallback queue %s, owner %s",
                payload.lead_key,
                decision.role,
                decision.fallback_queue,
                decision.rep_id or "none",
            )
            return
        log.info(
            "assigned lead %s episode %d attempt %d to %s by %s",
            payload.lead_key,
            payload.episode,
            payload.attempt,
            payload.rep_id,
            decision.route,
        )


def _superseded(history: Iterable[StoredAssignment], request: LeadReassignmentRequested) -> bool:
    """The attempt is already assigned, or the lead has moved on to a later episode."""
    return any(
        done.episode > request.episode
        or (done.episode == request.episode and done.attempt >= request.attempt)
        for done in history
    )


def _reps_of_episode(history: Iterable[StoredAssignment], episode: int) -> tuple[str, ...]:
    """Reps who had the lead in ``episode``, in the order they got it."""
    return tuple(
        dict.fromkeys(
            done.rep_id for done in history if done.episode == episode and done.rep_id is not None
        )
    )


def _quick_rejection(activity: SalesActivity, held: StoredAssignment, credit: Credit) -> bool:
    """Whether the rep rejected the lead soon enough after getting it to get their turn back."""
    within = credit.give_back_on_rejection_within
    if activity.outcome != "rejected" or within is None:
        return False
    return activity.occurred_at - held.assigned_at <= within


def _rejected_by(
    history: Iterable[StoredAssignment], episode: int, rejections: Rejections
) -> frozenset[str]:
    """Reps who rejected the lead in the ``exclude_rep_for_episodes`` episodes before
    ``episode`` (a rejection the rep reported after losing the lead released nothing)."""
    first = episode - rejections.exclude_rep_for_episodes
    return frozenset(
        done.rep_id
        for done in history
        if first <= done.episode < episode
        and done.released_by == "rejected"
        and done.rep_id is not None
    )


def _still_held(history: list[StoredAssignment]) -> StoredAssignment | None:
    """The lead's latest assignment if a rep still holds it (not yet released)."""
    latest = history[-1] if history else None
    if latest is None or latest.rep_id is None or latest.released_at is not None:
        return None
    return latest


def _row(payload: LeadAssigned, decision: RoutingDecision) -> StoredAssignment:
    event = payload.model_dump(mode="json", exclude_none=True)
    return StoredAssignment(
        assignment_id=payload.assignment_id,
        lead_key=payload.lead_key,
        episode=payload.episode,
        attempt=payload.attempt,
        rep_id=decision.rep_id,
        fallback_queue=decision.fallback_queue,
        route=decision.route,
        role=payload.role,
        team=payload.team,
        trace=event["trace"],
        event=event,
        assigned_at=payload.assigned_at,
        pool=decision.pool,
    )
