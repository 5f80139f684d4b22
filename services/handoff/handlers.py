"""Hand-off's batch handler: parse, load and lock what the batch touches, decide in memory, save.

The consume loop has already deduplicated the event ids and opened the transaction; the
assignment rows, the rotation, the rep loads, the inbox rows and the ``lead_assigned`` outbox
rows commit together or not at all. A batch costs a handful of statements whatever its size:
the roster version, the leads' assignments, their kept sales-ready payloads, the rotation rows
of the pools it routes in, the loads of the reps it may charge, then one write per table.

Exactly one assignment per episode attempt, whatever is redelivered or runs twice:

1. a decision locks its pool's rotation row and the loads of the reps it may charge, so
   decisions of one pool never interleave (several instances included) and decisions of pools
   without shared reps run in parallel; after the first locks, PostgreSQL re-reads the leads'
   assignments, so each decision sees every assignment committed before it. The same lead
   always routes in the same pool (the pool follows from the lead and the roster), and releasing
   a rep's lead locks that rep's load, so work on one lead never interleaves either;
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
from leadrelay.runtime.consumer import EventHandlers
from leadrelay.store.unit_of_work import Transaction
from services.handoff.domain import (
    Credit,
    Footprint,
    Rejections,
    RosterConfig,
    RoutingConfig,
    RoutingDecision,
    claimed,
    decide,
    fairness_report,
    footprint,
    give_turn_back,
)
from services.handoff.domain.inputs import DecisionInputs, inputs_seen, routing_version
from services.handoff.domain.loads import loads_after, releases_the_lead
from services.handoff.domain.ports import SlaDeadlines
from services.handoff.messages import SOURCE, assigned_event_id, lead_assigned, lead_facts
from services.handoff.metrics import HandoffMetrics
from services.handoff.repository import (
    Roster,
    RosterCache,
    StoredAssignment,
    Workset,
    open_workset,
    queued,
    rotation_counts,
)

log = logging.getLogger(__name__)

QUEUE_BATCH: Final = 100
"""Queued leads tried per pass of the queue router (oldest first)."""
ClaimResult = Literal["claimed", "not_queued", "unknown_rep"]
REASSIGNED: Final = "reassigned"
"""Why an assignment was released when the lead went to another rep."""

Fact = LeadSalesReady | LeadReassignmentRequested | SalesActivity
"""A consumed event, parsed: what hand-off reacts to."""
_MODELS: Final[dict[str, type[Fact]]] = {
    EventType.LEAD_SALES_READY.value: LeadSalesReady,
    EventType.LEAD_REASSIGNMENT_REQUESTED.value: LeadReassignmentRequested,
    EventType.SALES_ACTIVITY.value: SalesActivity,
}


class MissingLeadContextError(LookupError):
    """A reassignment for an episode hand-off never saw as sales-ready: nothing to route."""


@dataclass(frozen=True)
class _Request:
    """One assignment to make: the lead as scoring sent it, the attempt and whom to leave out."""

    ready: LeadSalesReady
    attempt: int
    excluded: frozenset[str]
    requested_at: datetime


@dataclass
class _Footprints:
    """Each lead's footprint in one batch (or queue pass), computed once: the batch locks by it
    and the decision reuses its account match, as the roster and routing do not change within
    a batch. A lead's footprint depends on its sales-ready event alone, not on whom a
    reassignment excludes."""

    routing: RoutingConfig
    roster: Roster
    _known: dict[tuple[str, int], tuple[LeadSalesReady, Footprint]] = field(default_factory=dict)

    def of(self, ready: LeadSalesReady) -> Footprint:
        key = (ready.lead_key, ready.episode)
        kept = self._known.get(key)
        if kept is not None and kept[0] is ready:
            return kept[1]
        facts = lead_facts(ready, frozenset(), frozenset())
        found = footprint(self.routing, self.roster.reps, self.roster.accounts, facts)
        self._known[key] = (ready, found)
        return found


@dataclass(frozen=True)
class HandoffHandlers:
    routing: RoutingConfig
    roster: RosterConfig
    """The ``roster:`` section: the seed of the stored roster."""
    deadlines: SlaDeadlines
    assignments_topic: str
    metrics: HandoffMetrics
    rosters: RosterCache = field(init=False, repr=False, compare=False)
    """The stored roster in memory, reloaded when its version moves."""

    routing_digest: str = field(init=False, repr=False, compare=False)
    """The routing section's digest, as each decision records it (computed once)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "rosters", RosterCache(self.roster))
        object.__setattr__(self, "routing_digest", routing_version(self.routing))

    def consumed(self) -> EventHandlers:
        """What hand-off consumes, applied a batch at a time (``apply``); our own
        ``lead_assigned`` on the assignments topic is not among it and is skipped."""
        return EventHandlers(frozenset(_MODELS), self.apply)

    async def apply(self, events: Sequence[CloudEvent], tx: Transaction) -> None:
        """Apply consecutive events of one partition, in order, in ``tx``."""
        facts = [(parse_as(event, _MODELS[event.type]), event.time) for event in events]
        roster = await self.rosters.current(tx)
        keys = [fact.lead_key for fact, _ in facts]
        wanted = [
            (f.lead_key, f.episode) for f, _ in facts if isinstance(f, LeadReassignmentRequested)
        ]
        work = await open_workset(tx.connection, tx.now(), roster, keys, wanted)
        footprints = _Footprints(self.routing, roster)
        pools, reps = self._needs(work, footprints, [fact for fact, _ in facts])
        await work.lock(pools, reps)
        await work.refresh_histories()
        assigned = 0
        for fact, at in facts:
            assigned += await self._apply_fact(tx, work, footprints, fact, at)
        await work.save()
        if assigned:
            await self._measure_fairness(tx, roster)

    async def _apply_fact(
        self, tx: Transaction, work: Workset, footprints: _Footprints, fact: Fact, at: datetime
    ) -> int:
        """Apply one fact to the workset; how many assignments it made."""
        if isinstance(fact, LeadSalesReady):
            return await self._on_sales_ready(tx, work, footprints, fact, at)
        if isinstance(fact, LeadReassignmentRequested):
            return await self._on_reassignment_requested(tx, work, footprints, fact, at)
        await self._on_sales_activity(work, fact)
        return 0

    def _needs(
        self, work: Workset, footprints: _Footprints, facts: Iterable[Fact]
    ) -> tuple[set[str], set[str]]:
        """The pools and rep loads the batch will lock, all at once and in order, before any
        decision (a decision that turns out to need more locks it then)."""
        pools: set[str] = set()
        reps: set[str] = set()
        for fact in facts:
            held = _still_held(work.history(fact.lead_key))
            if held is not None and held.rep_id is not None:
                reps.add(held.rep_id)
                if held.pool is not None:
                    pools.add(held.pool)
            ready = self._ready_of(work, fact)
            if ready is not None:
                needed = footprints.of(ready)
                pools.add(needed.pool)
                reps |= needed.rep_ids
        return pools, reps

    @staticmethod
    def _ready_of(work: Workset, fact: Fact) -> LeadSalesReady | None:
        if isinstance(fact, LeadSalesReady):
            return fact
        if isinstance(fact, LeadReassignmentRequested):
            return work.contexts.get((fact.lead_key, fact.episode))
        return None

    async def _on_sales_activity(self, work: Workset, activity: SalesActivity) -> None:
        """A rep finished with a lead (won, lost, rejected, disqualified): free their capacity.

        Only the rep holding the lead's latest assignment frees it, once: a redelivered or
        repeated outcome, or one from a rep who no longer has the lead, changes nothing.
        """
        if not releases_the_lead(activity.outcome):
            return
        history = work.history(activity.lead_key)
        current = history[-1] if history else None
        if current is None or current.rep_id != activity.rep_id or current.released_at:
            return
        quick = _quick_rejection(activity, current, self.routing.credit)
        await work.lock([current.pool] if quick and current.pool else [], [activity.rep_id])
        load = work.loads[activity.rep_id]
        work.set_load(load.model_copy(update={"open_leads": max(load.open_leads - 1, 0)}))
        current = work.change(current, released_at=work.now, released_by=activity.outcome)
        if quick:
            self._give_turn_back(work, current)
        log.info(
            "rep %s released lead %s (%s)", activity.rep_id, activity.lead_key, activity.outcome
        )

    async def _on_sales_ready(
        self,
        tx: Transaction,
        work: Workset,
        footprints: _Footprints,
        ready: LeadSalesReady,
        at: datetime,
    ) -> int:
        """Assign the episode's first attempt, unless the episode already has its assignment."""
        if any(done.episode >= ready.episode for done in work.history(ready.lead_key)):
            log.info("lead %s episode %d is already assigned", ready.lead_key, ready.episode)
            return 0
        work.keep_context(ready)
        request = _Request(ready, 1, frozenset(), at)
        return int(await self._assign(tx, work, footprints, request))

    async def _on_reassignment_requested(
        self,
        tx: Transaction,
        work: Workset,
        footprints: _Footprints,
        request: LeadReassignmentRequested,
        at: datetime,
    ) -> int:
        """Assign the next attempt to a rep who has not had the lead in this episode."""
        history = work.history(request.lead_key)
        if _superseded(history, request):
            log.info(
                "reassignment of lead %s episode %d attempt %d is done or stale",
                request.lead_key,
                request.episode,
                request.attempt,
            )
            return 0
        ready = work.contexts.get((request.lead_key, request.episode))
        if ready is None:
            raise MissingLeadContextError(
                f"lead {request.lead_key} episode {request.episode} was never sales-ready here"
            )
        had_it = _reps_of_episode(history, request.episode)
        excluded = frozenset({*request.exclude_rep_ids, *had_it})
        attempt = _Request(ready, request.attempt, excluded, at)
        return int(await self._assign(tx, work, footprints, attempt))

    def _give_turn_back(self, work: Workset, taken: StoredAssignment) -> None:
        """Return the rotation turn ``taken`` cost its rep (its pool is locked)."""
        if taken.pool is None or taken.rep_id is None or taken.credit_returned:
            return
        members = {rep.id: rep.weight for rep in work.roster.reps}
        work.rotation = give_turn_back(work.rotation, taken.pool, taken.rep_id, members)
        work.change(taken, credit_returned=True)
        log.info("turn given back to rep %s in pool %s", taken.rep_id, taken.pool)

    async def route_queued(self, tx: Transaction, limit: int = QUEUE_BATCH) -> int:
        """Give queued leads, oldest first, to a rep who can take them now (capacity freed,
        shift started, back from out-of-office); the others stay queued. How many moved."""
        waiting = await queued(tx.connection, limit=limit)
        moved = await self._route_again(tx, waiting) if waiting else 0
        if moved:
            log.info("routed %d queued leads to reps", moved)
        await self._measure_queues(tx)
        return moved

    async def _route_again(self, tx: Transaction, waiting: Sequence[StoredAssignment]) -> int:
        """Route the ``waiting`` leads again in one workset; how many went to a rep."""
        work, footprints = await self._queue_workset(tx, waiting)
        moved = 0
        for lead in waiting:
            request = _next_attempt(work, lead, tx.now())
            if request is not None:
                moved += await self._assign(tx, work, footprints, request, only_to_a_rep=True)
        await work.save()
        if moved:
            await self._measure_fairness(tx, work.roster)
        return moved

    async def _queue_workset(
        self, tx: Transaction, waiting: Sequence[StoredAssignment]
    ) -> tuple[Workset, _Footprints]:
        """The workset of queued leads, their pools and rep loads locked, and their footprints."""
        roster = await self.rosters.current(tx)
        keys = [lead.lead_key for lead in waiting]
        episodes = [(lead.lead_key, lead.episode) for lead in waiting]
        work = await open_workset(tx.connection, tx.now(), roster, keys, episodes)
        footprints = _Footprints(self.routing, roster)
        needed = [footprints.of(ready) for ready in work.contexts.values()]
        await work.lock({n.pool for n in needed}, {r for n in needed for r in n.rep_ids})
        await work.refresh_histories()
        return work, footprints

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
        waiting = [w for w in await queued(tx.connection, queue) if w.lead_key == lead_key]
        if not waiting:
            return "not_queued"
        work, _ = await self._queue_workset(tx, waiting)
        rep = work.roster.rep(rep_id)
        if rep is None or not rep.active:
            return "unknown_rep"
        request = _next_attempt(work, waiting[0], tx.now())
        if request is None:
            return "not_queued"
        await work.lock([], [rep.id])
        await self._record(tx, work, request, claimed(rep, queue, work.rotation), None)
        await work.save()
        await self._measure_fairness(tx, work.roster)
        return "claimed"

    async def _assign(
        self,
        tx: Transaction,
        work: Workset,
        footprints: _Footprints,
        request: _Request,
        *,
        only_to_a_rep: bool = False,
    ) -> bool:
        """Decide and record the assignment; with ``only_to_a_rep``, a decision for the
        fallback queue records nothing (False)."""
        started = time.perf_counter()
        ready, roster = request.ready, work.roster
        history = work.history(ready.lead_key)
        held = _still_held(history)
        needed = footprints.of(ready)
        pools, reps = {needed.pool}, set(needed.rep_ids)
        if held is not None and held.rep_id is not None:
            reps.add(held.rep_id)
            if held.pool is not None:
                pools.add(held.pool)
        await work.lock(pools, reps)
        if held is not None and self.routing.credit.give_back_on_reassignment:
            self._give_turn_back(work, held)
        rejected_by = _rejected_by(history, ready.episode, self.routing.rejections)
        facts = lead_facts(ready, request.excluded, rejected_by)
        decision = decide(
            self.routing,
            roster.reps,
            roster.accounts,
            facts,
            work.rotation,
            work.loads,
            work.now,
            known=needed,
        )
        tx.after_commit(
            lambda: self.metrics.decision_seconds.observe(time.perf_counter() - started)
        )
        if only_to_a_rep and decision.route == "fallback":
            return False
        seen = inputs_seen(
            self.routing_digest,
            roster.snapshot[1],
            facts,
            work.rotation,
            work.loads,
            work.now,
        )
        await self._record(tx, work, request, decision, held, seen)
        return True

    async def _record(
        self,
        tx: Transaction,
        work: Workset,
        request: _Request,
        decision: RoutingDecision,
        held: StoredAssignment | None,
        seen: DecisionInputs | None = None,
    ) -> None:
        """Keep the decision in the workset (rotation, loads, assignment rows) and queue its
        ``lead_assigned``; keep ``seen`` (what ``decide`` was given; None for a claim)."""
        now, ready = work.now, request.ready
        work.rotation = decision.new_state
        rep = work.roster.rep(decision.rep_id)
        previous = held.rep_id if held is not None else None
        for load in loads_after(previous, rep, work.loads, now):
            work.set_load(load)
        if held is not None:
            work.change(held, released_at=now, released_by=REASSIGNED)
        payload = lead_assigned(
            ready,
            decision,
            rep,
            attempt=request.attempt,
            deadlines=self.deadlines,
            assigned_at=now,
        )
        work.record(_row(payload, decision))
        if seen is not None:
            work.keep_inputs(payload.assignment_id, seen)
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
        roster = work.roster
        tx.after_commit(lambda: self._observe(decision, roster, payload, request.requested_at))

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


def _next_attempt(work: Workset, waiting: StoredAssignment, now: datetime) -> _Request | None:
    """The request that routes a queued lead again (its episode's next attempt); None if the
    lead is no longer waiting (another pass or a claim took it meanwhile)."""
    ready = work.contexts.get((waiting.lead_key, waiting.episode))
    history = work.history(waiting.lead_key)
    if ready is None or not history or history[-1].assignment_id != waiting.assignment_id:
        return None
    excluded = frozenset(_reps_of_episode(history, waiting.episode))
    return _Request(ready, waiting.attempt + 1, excluded, now)


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
