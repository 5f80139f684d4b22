"""Between the contracts and the domain: routing facts from a sales-ready lead, and the assignment.

Pure functions (no I/O, time passed in). The assignment carries the lead's whole context as
scoring sent it, the decision trace, a snapshot of the chosen rep (calendar, team, manager: what
the SLA monitor needs, never the email) and the SLA deadlines, counted by the SLA rules handed in
through the :class:`~services.handoff.domain.ports.SlaDeadlines` port. A roster change becomes
``rep_updated``: the same snapshot plus the rep's out-of-office periods and active flag.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from leadrelay.calendar import to_utc
from leadrelay.contracts import events as contract
from leadrelay.contracts.envelope import stable_event_id
from leadrelay.identity import email_domain
from services.handoff.domain import LeadFacts, Rep, RoutingDecision
from services.handoff.domain.ports import SlaDeadlines

SOURCE: Final = "/leadrelay/handoff"
"""CloudEvent ``source`` of what hand-off publishes."""

FORM_ACTION: Final = "form_submitted"
_TEXT_LIMIT: Final = 1000
"""Longest trace detail or reason the contract allows."""


def lead_facts(
    ready: contract.LeadSalesReady, excluded: Iterable[str] = (), rejected_by: Iterable[str] = ()
) -> LeadFacts:
    """What routing may know about the lead: never the email address, only its domain."""
    profile = ready.profile
    return LeadFacts(
        lead_key=ready.lead_key,
        email_domain=email_domain(profile.email),
        company=profile.company,
        country=profile.country,
        company_size=profile.company_size,
        grade=ready.grade,
        qualified_by=ready.qualified_by,
        high_intent_actions=high_intent_actions(ready.high_intent),
        episode=ready.episode,
        excluded_rep_ids=frozenset(excluded),
        rejected_by_rep_ids=frozenset(rejected_by),
    )


def high_intent_actions(items: Iterable[contract.ActivityItem]) -> frozenset[str]:
    """Each high-intent moment's action; a form also as ``form_submitted:<form_id>``.

    So a rule can name a web action (``demo_request``) or one form
    (``form_submitted:demo-request``) in ``high_intent_actions_any``.
    """
    actions: set[str] = set()
    for item in items:
        actions.add(item.action)
        if item.action == FORM_ACTION and item.form_id:
            actions.add(f"{FORM_ACTION}:{item.form_id}")
    return frozenset(actions)


def assignment_id_for(lead_key: str, episode: int, attempt: int) -> str:
    """Stable for the lead, episode and attempt, so a replayed decision keeps its id."""
    return stable_event_id("assignment", lead_key, str(episode), str(attempt))


def assigned_event_id(lead_key: str, episode: int, attempt: int) -> str:
    """The CloudEvent id of the assignment: one fact per lead, episode and attempt."""
    return stable_event_id("assigned", lead_key, str(episode), str(attempt))


def assignee(decision: RoutingDecision) -> str:
    """The contract's ``rep_id``: the rep, or the fallback queue when nobody owns the lead."""
    chosen = decision.rep_id or decision.fallback_queue
    if chosen is None:
        raise ValueError("a routing decision without a rep names its fallback queue")
    return chosen


def lead_assigned(
    ready: contract.LeadSalesReady,
    decision: RoutingDecision,
    rep: Rep | None,
    *,
    attempt: int,
    deadlines: SlaDeadlines,
    assigned_at: datetime,
) -> contract.LeadAssigned:
    """The assignment event's payload: who, why, the whole lead, the rep and the deadlines."""
    # The contract describes the chosen rep's role and team; the pool's when nobody was chosen.
    role = rep.role if rep is not None else decision.role
    team = decision.team or (rep.team if rep is not None else None)
    snapshot = rep_snapshot(rep) if rep is not None else None
    return contract.LeadAssigned(
        assignment_id=assignment_id_for(ready.lead_key, ready.episode, attempt),
        lead_key=ready.lead_key,
        episode=ready.episode,
        attempt=attempt,
        rep_id=assignee(decision),
        role=role,
        route=decision.route,
        team=team,
        context=assignment_context(ready),
        trace=decision_trace(decision),
        sla=deadlines(
            role=role, route=decision.route, team=team, rep=snapshot, assigned_at=assigned_at
        ),
        rep=snapshot,
        assigned_at=assigned_at,
    )


def rep_snapshot(rep: Rep) -> contract.RepSnapshot:
    """The rep as the SLA monitor needs them: calendar, team, manager (shifts as written)."""
    return contract.RepSnapshot(
        time_zone=rep.time_zone,
        working_hours={
            day: tuple(str(shift) for shift in shifts) for day, shifts in rep.working_hours.items()
        },
        holidays=rep.holidays,
        team=rep.team,
        manager=rep.manager,
    )


def rep_updated(rep: Rep, updated_at: datetime) -> contract.RepUpdated:
    """The roster change as the SLA monitor keeps it: the snapshot, absences in UTC, active."""
    return contract.RepUpdated(
        rep_id=rep.id,
        rep=rep_snapshot(rep),
        out_of_office=tuple(
            contract.Absence(start=to_utc(start), end=to_utc(end))
            for start, end in (period.period(rep.time_zone) for period in rep.out_of_office)
        ),
        active=rep.active,
        updated_at=updated_at,
    )


def rep_updated_event_id(rep_id: str, updated_at: datetime) -> str:
    """One fact per rep and change time, so a replayed change keeps its id."""
    return stable_event_id("rep_updated", rep_id, to_utc(updated_at).isoformat())


def assignment_context(ready: contract.LeadSalesReady) -> contract.AssignmentContext:
    return contract.AssignmentContext(
        profile=ready.profile,
        grade=ready.grade,
        fit_score=ready.fit_score,
        engagement_score=ready.engagement_score,
        breakdown=ready.breakdown,
        recent_activity=ready.recent_activity,
        high_intent=ready.high_intent,
        lifecycle_history=ready.lifecycle_history,
        scorecard_version=ready.scorecard_version,
    )


def decision_trace(decision: RoutingDecision) -> contract.DecisionTrace:
    trace = decision.trace
    return contract.DecisionTrace(
        steps=tuple(
            contract.TraceStep(
                step=s.step,
                outcome=s.outcome,
                detail=_clip(s.detail),
                method=s.method,
                confidence=s.confidence,
            )
            for s in trace.steps
        ),
        skipped=tuple(contract.SkippedRep(rep_id=s.rep_id, reason=s.reason) for s in trace.skipped),
        chosen=contract.ChosenRep(rep_id=assignee(decision), reason=_clip(trace.chosen_reason)),
    )


def _clip(text: str) -> str:
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"
