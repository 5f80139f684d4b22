"""Translation of the consumed events into reporting's facts (pure; no I/O)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.events import (
    LeadAssigned,
    LeadReassignmentRequested,
    LeadRecycled,
    LeadScored,
    LeadStageChanged,
    MarketingActivity,
    SalesActivity,
    SlaAtRisk,
    SlaBreached,
    SlaClockEvent,
    SlaEscalated,
    SlaWarning,
    parse_as,
)
from leadrelay.contracts.topics import EventType
from services.reporting.domain import (
    Acknowledgement,
    Assignment,
    Engagement,
    Recycle,
    SlaSignal,
    StageChange,
    Touch,
)

Fact = StageChange | Assignment | Touch | SlaSignal | Recycle | Engagement | Acknowledgement


def stage_change(event: CloudEvent) -> StageChange:
    data = parse_as(event, LeadStageChanged)
    attributes = data.attributes.model_dump(exclude_none=True)
    return StageChange(
        event.id, data.lead_key, data.from_stage, data.to_stage, data.at, data.episode,
        data.rule, attributes,
    )  # fmt: skip


def assignment(event: CloudEvent) -> Assignment:
    """The assignment; its qualifying moment is the lead's latest move to ``mql`` in the
    context's history (the assignment time when the history does not say)."""
    data = parse_as(event, LeadAssigned)
    to_mql = [t.at for t in data.context.lifecycle_history if t.to_stage == "mql"]
    return Assignment(
        assignment_id=data.assignment_id,
        lead_key=data.lead_key,
        episode=data.episode,
        attempt=data.attempt,
        rep_id=data.rep_id,
        team=data.team,
        route=data.route,
        qualified_at=to_mql[-1] if to_mql else data.assigned_at,
        assigned_at=data.assigned_at,
        policy=data.sla.policy,
        first_touch_due=data.sla.first_touch_due,
        acceptance_due=data.sla.acceptance_due,
        skipped=tuple((s.rep_id, s.reason) for s in data.trace.skipped),
        reason=data.trace.chosen.reason,
    )


def touch(event: CloudEvent) -> Touch:
    data = parse_as(event, SalesActivity)
    return Touch(
        event.id, data.lead_key, data.rep_id, data.outcome, data.occurred_at, data.assignment_id
    )


def reassignment_requested(event: CloudEvent) -> SlaSignal | None:
    """A reassignment counts against the assignment it replaces (None when it names none)."""
    data = parse_as(event, LeadReassignmentRequested)
    if data.previous_assignment_id is None:
        return None
    return SlaSignal(
        event.id, "reassignment_requested", data.lead_key, data.previous_assignment_id, None,
        data.requested_at,
    )  # fmt: skip


def _sla_signal(kind: str, model: type[SlaClockEvent]) -> Callable[[CloudEvent], SlaSignal]:
    def convert(event: CloudEvent) -> SlaSignal:
        data = parse_as(event, model)
        return SlaSignal(
            event.id, kind, data.lead_key, data.assignment_id, data.clock, data.fired_at
        )

    return convert


def recycle(event: CloudEvent) -> Recycle:
    data = parse_as(event, LeadRecycled)
    return Recycle(
        event.id, data.lead_key, data.reason, data.rep_id, data.assignment_id, data.recycled_at
    )


def acknowledgement(event: CloudEvent) -> Acknowledgement:
    data = parse_as(event, MarketingActivity)
    return Acknowledgement(event.id, data.lead_key, data.activity, data.occurred_at)


def engagement(event: CloudEvent) -> Engagement:
    data = parse_as(event, LeadScored)
    return Engagement(event.id, data.lead_key, data.engagement_score, data.scored_at)


CONVERTERS: Mapping[str, Callable[[CloudEvent], Fact | None]] = {
    EventType.LEAD_STAGE_CHANGED.value: stage_change,
    EventType.LEAD_ASSIGNED.value: assignment,
    EventType.LEAD_REASSIGNMENT_REQUESTED.value: reassignment_requested,
    EventType.SALES_ACTIVITY.value: touch,
    EventType.SLA_WARNING.value: _sla_signal("warning", SlaWarning),
    EventType.SLA_BREACHED.value: _sla_signal("breached", SlaBreached),
    EventType.SLA_ESCALATED.value: _sla_signal("escalated", SlaEscalated),
    EventType.SLA_AT_RISK.value: _sla_signal("at_risk", SlaAtRisk),
    EventType.LEAD_RECYCLED.value: recycle,
    EventType.LEAD_SCORED.value: engagement,
    EventType.MARKETING_ACTIVITY.value: acknowledgement,
}
"""Event type -> the fact it becomes (None: nothing to keep)."""


def fact_of(event: CloudEvent) -> Fact | None:
    """The fact an event of a consumed type becomes."""
    return CONVERTERS[event.type](event)


FACT_KINDS: Mapping[str, type[Fact]] = {
    cls.__name__: cls
    for cls in (StageChange, Assignment, Touch, SlaSignal, Recycle, Engagement, Acknowledgement)
}
"""The ``kind`` column's values: the fact class names."""


def fact_time(fact: Fact) -> datetime:
    """When the fact happened (what reports window on)."""
    if isinstance(fact, Assignment):
        return fact.assigned_at
    if isinstance(fact, Touch):
        return fact.occurred_at
    return fact.at


def fact_id(fact: Fact) -> str:
    return fact.assignment_id if isinstance(fact, Assignment) else fact.event_id


def dump_fact(fact: Fact) -> dict[str, Any]:
    """The fact as JSON-ready values (instants as ISO 8601 in UTC)."""
    return {f.name: _dump_value(getattr(fact, f.name)) for f in dataclasses.fields(fact)}


def load_fact(kind: str, document: Mapping[str, Any]) -> Fact:
    """The inverse of :func:`dump_fact` for a fact of ``kind``."""
    cls = FACT_KINDS[kind]
    values = {}
    for f in dataclasses.fields(cls):
        value = document[f.name]
        if "datetime" in str(f.type) and value is not None:
            value = datetime.fromisoformat(value)
        elif f.name == "skipped":
            value = tuple(tuple(pair) for pair in value)
        values[f.name] = value
    return cls(**values)


def _dump_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, tuple):
        return [_dump_value(v) for v in value]
    if isinstance(value, Mapping):
        return dict(value)
    return value
