"""Scoring's batch handler: parse, load every row the batch touches (locked), decide in the
domain event by event, save the changed rows, publish.

The consume loop has already deduplicated the events and opened the transaction; everything the
batch writes or publishes commits with its inbox rows or not at all. Domain refusals
(``InvalidTransition``, ``UnknownOutcome``) propagate, so the runtime retries and then
dead-letters the event for a person to look at; stale or repeated facts are no-ops in the domain,
and a sales outcome the lead's stage rules out is recorded on the lead as ignored and counted.

Identity: activity by a visitor not yet known arrives under its anonymous id, on another
partition than the lead's, and before or after the form that identifies the visitor. It waits
on the visitor until a form (or an activity carrying both ids) links the two; then it is merged
into the lead at its original times, and later anonymous activity goes straight to the lead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from leadrelay.contracts.envelope import CloudEvent, new_event, stable_event_id
from leadrelay.contracts.events import (
    EventPayload,
    FormSubmitted,
    LeadAssigned,
    LeadRecycled,
    SalesActivity,
    WebActivity,
    parse_as,
)
from leadrelay.contracts.topics import EventType
from leadrelay.runtime.consumer import EventHandlers
from leadrelay.store.unit_of_work import Transaction
from services.scoring import messages
from services.scoring.domain import (
    Activity,
    Decision,
    Holding,
    LeadState,
    Profile,
    Scorecard,
    Stage,
    apply_activity,
    apply_assignment,
    apply_form_submission,
    apply_profile,
    apply_recycle,
    apply_sales_outcome,
    merge_visitor,
    remembered,
    reported_by_sales,
)
from services.scoring.domain.config import RecycleCooldown
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import Rows, StoredLead, Visitor, lock_rows, write_rows

log = logging.getLogger(__name__)

SOURCE: Final = "/leadrelay/scoring"
"""CloudEvent ``source`` of what scoring publishes (and how it recognises its own recycles)."""


@dataclass(frozen=True)
class OutputTopics:
    """The configured names of the topics scoring publishes to."""

    scores: str
    sales_ready: str
    recycled: str
    lifecycle: str


@dataclass(frozen=True)
class ScoringHandlers:
    scorecard: Scorecard
    topics: OutputTopics
    metrics: ScoringMetrics
    segment_for: Callable[[int | None], str | None] = field(default=lambda _: None)
    """The routing segment of a company size, for the lifecycle event's attributes."""
    cooldown: RecycleCooldown | None = None
    """The lifecycle's ``recycle_cooldown``; None: a recycled lead may re-qualify at once."""

    def event_handlers(self) -> EventHandlers:
        """What scoring consumes and its batch handler, for the ``ServiceSpec``."""
        return EventHandlers(CONSUMED, self.apply)

    async def apply(self, events: Sequence[CloudEvent], tx: Transaction) -> None:
        """Apply a batch: lock every row it touches with one query per table, apply the events
        in order in memory, write the changed rows back with one upsert per table.

        The same as applying the events one at a time: each sees the rows as the ones before it
        left them (a form earlier in the batch has linked its visitor for a later activity).
        """
        facts = [(event, _parsed(event)) for event in events]
        anonymous_ids = {
            data.anonymous_id
            for _, data in facts
            if isinstance(data, WebActivity | FormSubmitted) and data.anonymous_id is not None
        }
        rows = await lock_rows(
            tx.connection, anonymous_ids, lambda found: _lead_keys(facts, found), tx.now()
        )
        for event, data in facts:
            await self._apply_one(event, data, tx, rows)
        await write_rows(tx.connection, rows, tx.now())

    async def _apply_one(
        self, event: CloudEvent, data: EventPayload | None, tx: Transaction, rows: Rows
    ) -> None:
        if isinstance(data, WebActivity):
            await self._on_web_activity(event, data, tx, rows)
        elif isinstance(data, FormSubmitted):
            await self._on_form_submitted(event, data, tx, rows)
        elif isinstance(data, SalesActivity):
            await self._on_sales_activity(event, data, tx, rows)
        elif isinstance(data, LeadAssigned):
            await self._on_lead_assigned(event, data, tx, rows)
        elif isinstance(data, LeadRecycled):
            await self._on_lead_recycled(event, data, tx, rows)

    async def _on_web_activity(
        self, event: CloudEvent, data: WebActivity, tx: Transaction, rows: Rows
    ) -> None:
        """Score the activity on its lead, or park it on the visitor until one is known."""
        activity = messages.web_activity(event.id, data)
        lead_key, pending = data.lead_key, None
        if data.anonymous_id is not None and lead_key is not None:
            pending = self._claim_visitor(rows, data.anonymous_id, lead_key)
        elif data.anonymous_id is not None:
            lead_key = self._lead_of_visitor(tx, rows, data.anonymous_id, activity)
        if lead_key is None:
            self._record(event, tx, None, None)
            return
        stored = rows.lead(lead_key)
        state = _merged(stored.state, pending, data.anonymous_id)
        if data.email is not None:
            state = apply_profile(state, Profile(email=data.email), event.id, data.occurred_at)
        await self._conclude(
            event,
            tx,
            rows,
            stored,
            apply_activity(self.scorecard, state, activity, tx.now(), cooldown=self.cooldown),
        )

    async def _on_form_submitted(
        self, event: CloudEvent, data: FormSubmitted, tx: Transaction, rows: Rows
    ) -> None:
        """Link the visitor, merge its earlier activity, then apply what the form told us."""
        pending = None
        if data.anonymous_id is not None:
            pending = self._claim_visitor(rows, data.anonymous_id, data.lead_key)
        stored = rows.lead(data.lead_key)
        state = _merged(stored.state, pending, data.anonymous_id)
        decision = apply_form_submission(
            self.scorecard, state, messages.form_profile(data),
            messages.form_activity(event.id, data), tx.now(), cooldown=self.cooldown,
        )  # fmt: skip
        await self._conclude(event, tx, rows, stored, decision)

    async def _on_sales_activity(
        self, event: CloudEvent, data: SalesActivity, tx: Transaction, rows: Rows
    ) -> None:
        """Move the stage as sales reports, and tell marketing when sales sends a lead back.

        A rejection or a loss recycles the lead; a disqualification ends it. Either way marketing
        hears of it here, once, with the rep's reason: scoring sees every sales outcome (the SLA
        monitor, which only announces what its own ladder decides, may not know the lead).
        """
        before = rows.lead(data.lead_key).state
        known = reported_by_sales(before, event.id, data.occurred_at)
        after = apply_sales_outcome(
            known, data.outcome, event.id, data.occurred_at, data.reason,
            rep_id=data.rep_id, assignment_id=data.assignment_id,
        )  # fmt: skip
        await self._save_stage(event, tx, rows, before, after)
        if len(after.ignored) > len(known.ignored):
            ignored = self.metrics.sales_outcomes_ignored.labels(data.outcome, after.stage.value)
            tx.after_commit(ignored.inc)
            log.info(
                "ignored a sales outcome for lead %s: %s", after.lead_key, after.ignored[-1].reason
            )
        reason = _sent_back_by_sales(known, after)
        if reason is not None:
            recycled = messages.lead_recycled(after.lead_key, reason, data)
            await self._publish(
                tx, self.topics.recycled, recycled, ("recycled", event.id), after.lead_key
            )

    async def _on_lead_assigned(
        self, event: CloudEvent, data: LeadAssigned, tx: Transaction, rows: Rows
    ) -> None:
        """Remember who holds the lead, so a rejection by a rep it was taken from is known."""
        stored = rows.known_lead(data.lead_key)
        if stored is None:
            return
        holding = Holding(data.assignment_id, data.rep_id, data.episode, data.attempt)
        await self._save_stage(
            event, tx, rows, stored.state, apply_assignment(stored.state, holding)
        )

    async def _on_lead_recycled(
        self, event: CloudEvent, data: LeadRecycled, tx: Transaction, rows: Rows
    ) -> None:
        """Back to nurture (from the SLA monitor or an operator); our own were applied already.

        Recycles come from the SLA monitor, which only knows leads scoring handed off, or from
        an operator: one about a lead never scored has nothing to send back to nurture.
        """
        stored = rows.known_lead(data.lead_key)
        if stored is None:
            log.info(
                "%s %s is about lead %s that scoring never saw; skipped",
                event.type,
                event.id,
                data.lead_key,
            )
            return
        after = apply_recycle(stored.state, data.reason, data.recycled_at, event.id)
        await self._save_stage(event, tx, rows, stored.state, after)

    def _claim_visitor(
        self, rows: Rows, anonymous_id: str, lead_key: str
    ) -> tuple[Activity, ...] | None:
        """Link the visitor to ``lead_key`` and hand over the activity waiting on it.

        The first link wins: on a shared device a second person's form must not take the
        first person's history, so a visitor linked elsewhere gives nothing (None).
        """
        visitor = rows.visitor(anonymous_id)
        if visitor.lead_key not in (None, lead_key):
            log.info(
                "visitor %s already linked to another lead; not merged into %s",
                anonymous_id,
                lead_key,
            )
            return None
        if visitor.lead_key is None or visitor.activities:
            rows.save_visitor(Visitor(anonymous_id, lead_key, ()))
        return visitor.activities

    def _lead_of_visitor(
        self, tx: Transaction, rows: Rows, anonymous_id: str, activity: Activity
    ) -> str | None:
        """The lead a linked visitor belongs to; an unlinked one keeps the activity (None)."""
        visitor = rows.visitor(anonymous_id)
        if visitor.lead_key is None:
            kept = remembered(self.scorecard, (*visitor.activities, activity), tx.now())
            rows.save_visitor(Visitor(anonymous_id, None, kept))
        return visitor.lead_key

    async def _conclude(
        self,
        event: CloudEvent,
        tx: Transaction,
        rows: Rows,
        stored: StoredLead,
        decision: Decision,
    ) -> None:
        """Save the decision; publish the score if it changed and the hand-off if it qualified."""
        state, score = decision.state, decision.score
        rows.save_lead(state, score)
        saved = rows.lead(state.lead_key).score  # the score as stored: dumped once per event
        self._record(event, tx, stored.state, state)
        await self._publish_stage_changes(event, tx, stored.state, state, score.grade)
        if messages.score_signature(saved) != messages.score_signature(stored.score):
            scored = messages.lead_scored(state, score)
            await self._publish(
                tx, self.topics.scores, scored, ("scored", event.id), state.lead_key
            )
        if decision.became_sales_ready and decision.qualified_by is not None:
            ready = messages.sales_ready(self.scorecard, state, score, decision.qualified_by)
            cause = ("sales_ready", state.lead_key, str(state.episode))
            await self._publish(tx, self.topics.sales_ready, ready, cause, state.lead_key)
            tx.after_commit(self.metrics.sales_ready.labels(score.grade).inc)
            log.info(
                "lead %s is sales-ready (episode %d, %s, grade %s)",
                state.lead_key,
                state.episode,
                decision.qualified_by,
                score.grade,
            )

    async def _save_stage(
        self, event: CloudEvent, tx: Transaction, rows: Rows, before: LeadState, after: LeadState
    ) -> None:
        """Save a stage-only change (the score is unchanged); nothing to do if it was a no-op."""
        self._record(event, tx, before, after)
        if after != before:
            rows.save_lead(after, None)
            await self._publish_stage_changes(event, tx, before, after, None)

    async def _publish_stage_changes(
        self,
        event: CloudEvent,
        tx: Transaction,
        before: LeadState,
        after: LeadState,
        grade: str | None,
    ) -> None:
        """Announce each transition ``after`` recorded since ``before`` on the lifecycle topic."""
        for change in after.changes_since(before):
            attributes = messages.stage_attributes(
                after, event, grade, self.segment_for(after.profile.company_size)
            )
            payload = messages.stage_changed(after, change, attributes)
            cause = ("stage_changed", after.lead_key, change.cause_event_id, change.to_stage)
            await self._publish(tx, self.topics.lifecycle, payload, cause, after.lead_key)

    async def _publish(
        self,
        tx: Transaction,
        topic: str,
        payload: EventPayload,
        cause: tuple[str, ...],
        lead_key: str,
    ) -> None:
        """Queue one event whose id derives from its cause, so a replay reproduces it."""
        event = new_event(
            payload.EVENT_TYPE,
            SOURCE,
            payload,
            id=stable_event_id(*cause),
            subject=lead_key,
            time=tx.now(),
        )
        await tx.publish(topic, event)

    def _record(
        self,
        event: CloudEvent,
        tx: Transaction,
        before: LeadState | None,
        after: LeadState | None,
    ) -> None:
        """Count the event, how long it waited since its CloudEvent time, and stage moves,
        once the transaction has committed (a rolled-back batch is applied again)."""
        waited = max(tx.now() - event.time, timedelta(0)).total_seconds()
        changes = after.changes_since(before) if before is not None and after is not None else ()

        def count() -> None:
            self.metrics.events_scored.labels(event.type).inc()
            self.metrics.latency.labels(event.type).observe(waited)
            for change in changes:
                self.metrics.stage_transitions.labels(change.from_stage, change.to_stage).inc()

        tx.after_commit(count)


CONSUMED: Final = frozenset(
    {
        EventType.WEB_ACTIVITY.value,
        EventType.FORM_SUBMITTED.value,
        EventType.SALES_ACTIVITY.value,
        EventType.LEAD_RECYCLED.value,
        EventType.LEAD_ASSIGNED.value,
    }
)
"""The event types scoring applies."""

_PAYLOADS: Final[Mapping[str, type[EventPayload]]] = {
    EventType.WEB_ACTIVITY.value: WebActivity,
    EventType.FORM_SUBMITTED.value: FormSubmitted,
    EventType.SALES_ACTIVITY.value: SalesActivity,
    EventType.LEAD_RECYCLED.value: LeadRecycled,
    EventType.LEAD_ASSIGNED.value: LeadAssigned,
}


def _parsed(event: CloudEvent) -> EventPayload | None:
    """The event's payload; None for a recycle scoring published itself (applied already)."""
    if event.type == EventType.LEAD_RECYCLED.value and event.source == SOURCE:
        return None
    return parse_as(event, _PAYLOADS[event.type])


def _lead_keys(
    facts: Sequence[tuple[CloudEvent, EventPayload | None]], visitors: Mapping[str, Visitor]
) -> tuple[set[str], set[str]]:
    """The leads a batch touches: those its events create if absent (activity, forms, sales
    reports) and those it only updates if known (assignments, recycles).

    Anonymous activity goes to the lead its visitor is linked to; one whose visitor a form in
    the same batch links goes to that form's lead, which is in the set anyway.
    """
    creating: set[str] = set()
    loading: set[str] = set()
    for _, data in facts:
        if isinstance(data, WebActivity) and data.lead_key is None:
            linked = visitors[data.anonymous_id].lead_key if data.anonymous_id else None
            if linked is not None:
                creating.add(linked)
        elif isinstance(data, WebActivity | FormSubmitted | SalesActivity):
            if data.lead_key is not None:
                creating.add(data.lead_key)
        elif isinstance(data, LeadAssigned | LeadRecycled):
            loading.add(data.lead_key)
    return creating, loading


def _merged(
    state: LeadState, pending: tuple[Activity, ...] | None, anonymous_id: str | None
) -> LeadState:
    """The lead with a claimed visitor's activity merged in (at the original times)."""
    if pending is None or anonymous_id is None:
        return state
    return merge_visitor(state, pending, anonymous_id)


def _sent_back_by_sales(before: LeadState, after: LeadState) -> str | None:
    """The recycle reason to announce when a sales outcome just moved the lead out of sales."""
    if after.stage is before.stage:
        return None
    if after.stage is Stage.RECYCLED:
        return after.recycle_reason
    return "disqualified" if after.stage is Stage.DISQUALIFIED else None
