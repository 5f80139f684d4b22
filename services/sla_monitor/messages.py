"""Turning the domain's SLA actions into the events of the public contract.

Event ids derive from the action id (stable for the same fact), so a replayed decision carries
the same id and consumers recognise it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from leadrelay.contracts.envelope import CloudEvent, new_event, stable_event_id
from leadrelay.contracts.events import (
    EventPayload,
    LeadReassignmentRequested,
    LeadRecycled,
    SlaAtRisk,
    SlaBreached,
    SlaClockEvent,
    SlaEscalated,
    SlaWarning,
)
from leadrelay.contracts.topics import Topic
from leadrelay.store.unit_of_work import Transaction
from services.sla_monitor.domain import (
    Breach,
    Escalate,
    Recycle,
    RequestReassignment,
    SlaAction,
    Warn,
)
from services.sla_monitor.domain.at_risk import AtRisk
from services.sla_monitor.domain.rep import escalation_target

SOURCE = "/leadrelay/sla-monitor"
C = TypeVar("C", bound=SlaClockEvent)


@dataclass(frozen=True)
class Emission:
    """One event to publish and the contract topic it goes to."""

    topic: Topic
    event: CloudEvent


def emission_for(action: SlaAction, escalated_to: str | None = None) -> Emission:
    """The event announcing ``action``; ``escalated_to`` names whom an escalation reaches."""
    topic, payload = _payload(action, escalated_to)
    event = new_event(
        payload.EVENT_TYPE,
        SOURCE,
        payload,
        subject=action.lead_key,
        id=stable_event_id(action.action_id),
        time=action.fired_at,
    )
    return Emission(topic, event)


def _payload(action: SlaAction, escalated_to: str | None) -> tuple[Topic, EventPayload]:
    if isinstance(action, Recycle):
        return Topic.RECYCLED, LeadRecycled(
            lead_key=action.lead_key,
            reason=action.reason,
            detail=action.detail,
            rep_id=action.rep_id,
            assignment_id=action.assignment_id,
            recycled_at=action.fired_at,
        )
    if isinstance(action, RequestReassignment):
        return Topic.ASSIGNMENTS, LeadReassignmentRequested(
            lead_key=action.lead_key,
            episode=action.episode,
            attempt=action.attempt,
            exclude_rep_ids=action.exclude_rep_ids,
            reason=action.reason,
            requested_at=action.fired_at,
            previous_assignment_id=action.assignment_id,
        )
    if isinstance(action, Escalate):
        target = escalated_to or action.escalated_to
        return Topic.SLA_EVENTS, _clock_event(SlaEscalated, action, escalated_to=target)
    if isinstance(action, Breach):
        return Topic.SLA_EVENTS, _clock_event(SlaBreached, action)
    assert isinstance(action, Warn)
    return Topic.SLA_EVENTS, _clock_event(SlaWarning, action)


def _clock_event(model: type[C], action: Warn | Breach | Escalate, **extra: str | None) -> C:
    return model(
        **extra,
        clock_id=action.clock_id,
        lead_key=action.lead_key,
        assignment_id=action.assignment_id,
        rep_id=action.rep_id,
        clock=action.clock.value,
        policy=action.policy,
        deadline=action.deadline,
        fired_at=action.fired_at,
        step=action.step,
    )


def at_risk_payload(risk: AtRisk) -> SlaAtRisk:
    """``leadrelay.sla_at_risk.v1`` for a clock forecast not to be met."""
    clock = risk.clock
    return SlaAtRisk(
        clock_id=clock.clock_id,
        lead_key=clock.lead_key,
        assignment_id=clock.assignment_id,
        rep_id=clock.rep_id,
        clock=clock.kind.value,
        policy=clock.policy_id,
        deadline=clock.due_at,
        fired_at=risk.at,
        step="forecast",
        expected_at=risk.forecast.expected_at,
        reasons=risk.forecast.reasons,
        reassignment_requested=risk.reassign,
    )


@dataclass(frozen=True)
class ActionPublisher:
    """Queues the events of SLA actions in the current transaction's outbox."""

    topic_name: Callable[[Topic], str]

    async def publish(
        self, tx: Transaction, actions: Iterable[tuple[SlaAction, str | None]]
    ) -> None:
        """Queue each (action, assignment team); an escalation goes to whom the domain says."""
        for action, team in actions:
            target = None
            if isinstance(action, Escalate):
                target = escalation_target(action.escalated_to, action.manager, team)
            emission = emission_for(action, target)
            await tx.publish(self.topic_name(emission.topic), emission.event)

    async def publish_at_risk(self, tx: Transaction, payload: SlaAtRisk) -> None:
        """Queue ``sla_at_risk`` (its id stable for the clock: announced once)."""
        event = new_event(
            payload.EVENT_TYPE,
            SOURCE,
            payload,
            subject=payload.lead_key,
            id=stable_event_id(f"{payload.clock_id}/at-risk"),
            time=payload.fired_at,
        )
        await tx.publish(self.topic_name(Topic.SLA_EVENTS), event)
