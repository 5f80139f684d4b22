"""The topic table of DESIGN.md section 1 as code: the single source of truth for topic names.

Runtime, ingest and the AsyncAPI test all read this table, so a topic or event type cannot be
renamed in one place and forgotten in another.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

DEFAULT_TOPIC_PREFIX = "leadrelay."


class Topic(enum.StrEnum):
    """Logical topic names; the real name is the configured prefix plus this value."""

    WEB_ACTIVITY = "web-activity"
    FORM_SUBMISSIONS = "form-submissions"
    SALES_ACTIVITY = "sales-activity"
    LEAD_SCORES = "lead-scores"
    SALES_READY = "sales-ready"
    ASSIGNMENTS = "assignments"
    SLA_EVENTS = "sla-events"
    LIFECYCLE = "lifecycle"
    RECYCLED = "recycled"
    ROSTER = "roster"
    DEAD_LETTER = "dead-letter"


class EventType(enum.StrEnum):
    """Every CloudEvent ``type`` LeadRelay publishes; each names ``schemas/<type>.json``."""

    WEB_ACTIVITY = "leadrelay.web_activity.v1"
    FORM_SUBMITTED = "leadrelay.form_submitted.v1"
    SALES_ACTIVITY = "leadrelay.sales_activity.v1"
    LEAD_SCORED = "leadrelay.lead_scored.v1"
    LEAD_SALES_READY = "leadrelay.lead_sales_ready.v1"
    LEAD_ASSIGNED = "leadrelay.lead_assigned.v1"
    LEAD_REASSIGNMENT_REQUESTED = "leadrelay.lead_reassignment_requested.v1"
    SLA_WARNING = "leadrelay.sla_warning.v1"
    SLA_BREACHED = "leadrelay.sla_breached.v1"
    SLA_ESCALATED = "leadrelay.sla_escalated.v1"
    SLA_AT_RISK = "leadrelay.sla_at_risk.v1"
    LEAD_STAGE_CHANGED = "leadrelay.lead_stage_changed.v1"
    LEAD_RECYCLED = "leadrelay.lead_recycled.v1"
    REP_UPDATED = "leadrelay.rep_updated.v1"
    MARKETING_ACTIVITY = "leadrelay.marketing_activity.v1"


TOPIC_EVENT_TYPES: Mapping[Topic, tuple[EventType, ...]] = MappingProxyType(
    {
        Topic.WEB_ACTIVITY: (EventType.WEB_ACTIVITY,),
        Topic.FORM_SUBMISSIONS: (EventType.FORM_SUBMITTED,),
        Topic.SALES_ACTIVITY: (EventType.SALES_ACTIVITY,),
        Topic.LEAD_SCORES: (EventType.LEAD_SCORED,),
        Topic.SALES_READY: (EventType.LEAD_SALES_READY,),
        Topic.ASSIGNMENTS: (EventType.LEAD_ASSIGNED, EventType.LEAD_REASSIGNMENT_REQUESTED),
        Topic.SLA_EVENTS: (
            EventType.SLA_WARNING,
            EventType.SLA_BREACHED,
            EventType.SLA_ESCALATED,
            EventType.SLA_AT_RISK,
        ),
        Topic.LIFECYCLE: (EventType.LEAD_STAGE_CHANGED,),
        Topic.RECYCLED: (EventType.LEAD_RECYCLED, EventType.MARKETING_ACTIVITY),
        Topic.ROSTER: (EventType.REP_UPDATED,),  # keyed by rep id, not by lead key
        Topic.DEAD_LETTER: (),  # the original bytes of any message, not an event type of its own
    }
)
"""Which event types travel on which topic."""

KNOWN_EVENT_TYPES: frozenset[str] = frozenset(event_type.value for event_type in EventType)

_TOPIC_OF_TYPE: Mapping[str, Topic] = MappingProxyType(
    {event_type.value: topic for topic, types in TOPIC_EVENT_TYPES.items() for event_type in types}
)


def topic_name(topic: Topic, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """The real Kafka topic name, e.g. ``leadrelay.web-activity``."""
    return f"{prefix}{topic.value}"


def topic_for_event_type(event_type: str) -> Topic:
    """The topic an event type is published on; ``LookupError`` for an unknown type."""
    try:
        return _TOPIC_OF_TYPE[event_type]
    except KeyError:
        raise LookupError(f"unknown event type {event_type!r}") from None
