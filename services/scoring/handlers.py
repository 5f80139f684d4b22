"""One handler per consumed event type: parse, load (locked), decide in the domain, save, publish.

The consume loop has already deduplicated the event and opened the transaction; everything a
handler writes or publishes commits with the inbox row or not at all. Domain refusals
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
from collections.abc import Callable, Mapping
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
from leadrelay.runtime.consumer import Handler
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
    dump_score,
    merge_visitor,
    remembered,
    reported_by_sales,
)
from services.scoring.domain.config import RecycleCooldown
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import (
    StoredLead,
    Visitor,
    load_lead,
    lock_or_create_lead,
    lock_or_create_visitor,
    save_lead,
    save_visitor,
)

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

    def table(self) -> Mapping[str, Handler]:
        """Event type -> handler, for the ``ServiceSpec``."""
        return {
            EventType.WEB_ACTIVITY.value: self.on_web_activity,
            EventType.FORM_SUBMITTED.value: self.on_form_submitted,
            EventType.SALES_ACTIVITY.value: self.on_sales_activity,
            EventType.LEAD_RECYCLED.value: self.on_lead_recycled,
            EventType.LEAD_ASSIGNED.value: self.on_lead_assigned,
        }

    async def on_web_activity(self, event: CloudEvent, tx: Transaction) -> None:
        """Score the activity on its lead, or park it on the visitor until one is known."""
        data = parse_as(event, WebActivity)
        activity = messages.web_activity(event.id, data)
        lead_key, pending = data.lead_key, None
        if data.anonymous_id is not None and lead_key is not None:
            pending = await self._claim_visitor(tx, data.anonymous_id, lead_key)
        elif data.anonymous_id is not None:
            lead_key = await self._lead_of_visitor(tx, data.anonymous_id, activity)
        if lead_key is None:
            self._record(event, tx, None, None)
            return
        stored = await lock_or_create_lead(tx.connection, lead_key, tx.now())
        state = _merged(stored.state, pending, data.anonymous_id)
        if data.email is not None:
            state = apply_profile(state, Profile(email=data.email), event.id, data.occurred_at)
        await self._conclude(
            event,
            tx,
            stored,
            apply_activity(self.scorecard, state, activity, tx.now(), cooldown=self.cooldown),
        )

    async def on_form_submitted(self, event: CloudEvent, tx: Transaction) -> None:
        """Link the visitor, merge its earlier activity, then apply what the form told us."""
        data = parse_as(event, FormSubmitted)
        pending = None
        if data.anonymous_id is not None:
            pending = await self._claim_visitor(tx, data.anonymous_id, data.lead_key)
        stored = await lock_or_create_lead(tx.connection, data.lead_key, tx.now())
        state = _merged(stored.state, pending, data.anonymous_id)
        decision = apply_form_submission(
            self.scorecard, state, messages.form_profile(data),
            messages.form_activity(event.id, data), tx.now(), cooldown=self.cooldown,
        )  # fmt: skip
        await self._conclude(event, tx, stored, decision)

    async def on_sales_activity(self, event: CloudEvent, tx: Transaction) -> None:
        """Move the stage as sales reports, and tell marketing when sales sends a lead back.

        A rejection or a loss recycles the lead; a disqualification ends it. Either way marketing
        hears of it here, once, with the rep's reason: scoring sees every sales outcome (the SLA
        monitor, which only announces what its own ladder decides, may not know the lead).
        """
        data = parse_as(event, SalesActivity)
        stored = await lock_or_create_lead(tx.connection, data.lead_key, tx.now())
        before = stored.state
        known = reported_by_sales(before, event.id, data.occurred_at)
        after = apply_sales_outcome(
            known, data.outcome, event.id, data.occurred_at, data.reason,
            rep_id=data.rep_id, assignment_id=data.assignment_id,
        )  # fmt: skip
        await self._save_stage(event, tx, before, after)
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

    def _note_ignored(self, tx: Transaction, outcome: str, lead: LeadState) -> None:
        """Count and log a sales outcome the lead's stage ruled out (it is on the timeline)."""
        counter = self.metrics.sales_outcomes_ignored.labels(outcome, lead.stage.value)
        tx.after_commit(counter.inc)
        log.info("ignored a sales outcome for lead %s: %s", lead.lead_key, lead.ignored[-1].reason)

    async def on_lead_assigned(self, event: CloudEvent, tx: Transaction) -> None:
        """Remember who holds the lead, so a rejection by a rep it was taken from is known."""
        data = parse_as(event, LeadAssigned)
        stored = await load_lead(tx.connection, data.lead_key)
        if stored is None:
            return
        holding = Holding(data.assignment_id, data.rep_id, data.episode, data.attempt)
        await self._save_stage(event, tx, stored.state, apply_assignment(stored.state, holding))

    async def on_lead_recycled(self, event: CloudEvent, tx: Transaction) -> None:
        """Back to nurture (from the SLA monitor or an operator); our own were applied already."""
        if event.source == SOURCE:
            return
        data = parse_as(event, LeadRecycled)
        stored = await self._known_lead(event, tx, data)
        if stored is not None:
            after = apply_recycle(stored.state, data.reason, data.recycled_at, event.id)
            await self._save_stage(event, tx, stored.state, after)

    async def _claim_visitor(
        self, tx: Transaction, anonymous_id: str, lead_key: str
    ) -> tuple[Activity, ...] | None:
        """Link the visitor to ``lead_key`` and hand over the activity waiting on it.

        The first link wins: on a shared device a second person's form must not take the
        first person's history, so a visitor linked elsewhere gives nothing (None).
        """
        visitor = await lock_or_create_visitor(tx.connection, anonymous_id, tx.now())
        if visitor.lead_key not in (None, lead_key):
            log.info(
                "visitor %s already linked to another lead; not merged into %s",
                anonymous_id,
                lead_key,
            )
            return None
        if visitor.lead_key is None or visitor.activities:
            await save_visitor(tx.connection, Visitor(anonymous_id, lead_key, ()), tx.now())
        return visitor.activities

    async def _lead_of_visitor(
        self, tx: Transaction, anonymous_id: str, activity: Activity
    ) -> str | None:
        """The lead a linked visitor belongs to; an unlinked one keeps the activity (None)."""
        visitor = await lock_or_create_visitor(tx.connection, anonymous_id, tx.now())
        if visitor.lead_key is None:
            kept = remembered(self.scorecard, (*visitor.activities, activity), tx.now())
            await save_visitor(tx.connection, Visitor(anonymous_id, None, kept), tx.now())
        return visitor.lead_key

    async def _known_lead(
        self, event: CloudEvent, tx: Transaction, data: LeadRecycled
    ) -> StoredLead | None:
        """The lead, locked; None (and the recycle skipped) when scoring never saw it.

        Recycles come from the SLA monitor, which only knows leads scoring handed off, or from an
        operator: one about a lead never scored has nothing to send back to nurture.
        """
        stored = await load_lead(tx.connection, data.lead_key)
        if stored is None:
            log.info(
                "%s %s is about lead %s that scoring never saw; skipped",
                event.type,
                event.id,
                data.lead_key,
            )
        return stored

    async def _conclude(
        self, event: CloudEvent, tx: Transaction, stored: StoredLead, decision: Decision
    ) -> None:
        """Save the decision; publish the score if it changed and the hand-off if it qualified."""
        state, score = decision.state, decision.score
        await save_lead(tx.connection, state, score, tx.now())
        self._record(event, tx, stored.state, state)
        await self._publish_stage_changes(event, tx, stored.state, state, score.grade)
        if messages.score_signature(dump_score(score)) != messages.score_signature(stored.score):
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
        self, event: CloudEvent, tx: Transaction, before: LeadState, after: LeadState
    ) -> None:
        """Save a stage-only change (the score is unchanged); nothing to do if it was a no-op."""
        self._record(event, tx, before, after)
        if after != before:
            await save_lead(tx.connection, after, None, tx.now())
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
