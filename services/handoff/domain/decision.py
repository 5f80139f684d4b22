"""The routing decision: which rep gets a sales-ready lead, and the reasons, as one pure function.

``decide`` reads no clock, database or broker: the caller passes the roster, the accounts, the
round-robin state and the reps' load, stores the returned state and publishes the decision.
Order: (1) the owner of the lead's account, if available; (2) the first matching rule (or the
default) picks a role/team pool, narrowed by territory and segment; (3) weighted round robin among
the eligible reps; (4) nobody eligible: the fallback queue. Every step leaves a line in the trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadrelay.calendar import calendar_status, require_aware
from services.handoff.domain.config import (
    Account,
    AssignTo,
    Rep,
    Role,
    RoutingConfig,
    Rule,
    Segment,
)
from services.handoff.domain.round_robin import RoutingState, pick, pool_key

Route = Literal["account", "rule", "round_robin", "fallback"]
"""``rule``: a routing rule chose the pool; ``round_robin``: no rule matched, the default pool."""

SkipReason = Literal[
    "role_mismatch",
    "team_mismatch",
    "territory_mismatch",
    "segment_mismatch",
    "inactive",
    "excluded_reassignment",
    "out_of_office",
    "holiday",
    "outside_working_hours",
    "daily_capacity_reached",
    "open_capacity_reached",
]
"""Why a rep was passed over; a rep gets the first reason that applies, in this order."""

StepName = Literal["account_match", "rule_match", "eligibility", "round_robin", "fallback"]


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LeadFacts(_Value):
    """What routing needs to know about the lead; the email address itself is not among it."""

    lead_key: str = Field(min_length=1)
    email_domain: str | None = None
    country: str | None = None
    """ISO 3166 alpha-2; unknown means territories cannot narrow the pool."""
    company_size: int | None = Field(default=None, ge=0)
    """Employees; unknown means segments cannot narrow the pool."""
    grade: str | None = None
    qualified_by: str | None = None
    high_intent_actions: frozenset[str] = frozenset()
    episode: int = Field(ge=1)
    """The sales-ready episode this decision is for."""
    excluded_rep_ids: frozenset[str] = frozenset()
    """Reps who already had the lead in this episode (a reassignment never returns it to them)."""

    @field_validator("email_domain")
    @classmethod
    def _lower_domain(cls, value: str | None) -> str | None:
        return value.strip().lower().lstrip("@").rstrip(".") or None if value else None

    @field_validator("country", "grade")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.strip().upper() or None if value else None


class RepLoad(_Value):
    """A rep's load as the caller counts it: assignments on one local day, and open leads.

    ``day`` is the rep's local date the count belongs to; a count for an earlier day is treated as
    zero, so daily capacity resets at the rep's own midnight however late the caller updates it.
    """

    rep_id: str
    day: date | None = None
    assigned_on_day: int = Field(default=0, ge=0)
    open_leads: int = Field(default=0, ge=0)

    def assigned_today(self, rep: Rep, now: datetime) -> int:
        return self.assigned_on_day if self.day == rep.calendar.local_date(now) else 0


def record_assignment(load: RepLoad | None, rep: Rep, now: datetime) -> RepLoad:
    """The rep's load after one more assignment at ``now`` (for the caller to store)."""
    current = load or RepLoad(rep_id=rep.id)
    return current.model_copy(
        update={
            "day": rep.calendar.local_date(now),
            "assigned_on_day": current.assigned_today(rep, now) + 1,
            "open_leads": current.open_leads + 1,
        }
    )


class TraceStep(_Value):
    step: StepName
    outcome: str
    detail: str


class SkippedRep(_Value):
    rep_id: str
    reason: SkipReason


class DecisionTrace(_Value):
    """Why the lead went where it went; published with the assignment for reps and sales ops."""

    steps: tuple[TraceStep, ...]
    skipped: tuple[SkippedRep, ...] = ()
    chosen_reason: str


class RoutingDecision(_Value):
    rep_id: str | None
    """None only for a fallback without an owner: the lead waits in ``fallback_queue``."""
    role: Role
    team: str | None
    route: Route
    fallback_queue: str | None = None
    rule_id: str | None = None
    account_id: str | None = None
    segment: Segment | None = None
    trace: DecisionTrace
    new_state: RoutingState
    """Store this in place of the state passed in (unchanged unless round robin picked)."""


@dataclass(frozen=True)
class _Lead:
    facts: LeadFacts
    segment: Segment | None
    regions: tuple[str, ...]


def decide(
    routing: RoutingConfig,
    roster: Sequence[Rep],
    accounts: Sequence[Account],
    facts: LeadFacts,
    state: RoutingState,
    loads: Mapping[str, RepLoad],
    now: datetime,
) -> RoutingDecision:
    """Route one sales-ready lead; the same inputs always give the same decision."""
    require_aware(now)
    lead = _Lead(facts, routing.segment_for(facts.company_size), routing.regions_of(facts.country))
    reps = {rep.id: rep for rep in sorted(roster, key=lambda rep: rep.id)}
    steps: list[TraceStep] = []
    owned = _account_owner(routing, reps, accounts, lead, loads, now, steps)
    if owned is not None:
        account, owner = owned
        return RoutingDecision(
            rep_id=owner.id,
            role=owner.role,
            team=owner.team,
            route="account",
            account_id=account.id,
            segment=lead.segment,
            trace=DecisionTrace(
                steps=tuple(steps),
                chosen_reason=f"owner of account {account.name} ({account.id})",
            ),
            new_state=state,
        )
    rule, target = _match_rule(routing, lead, steps)
    return _round_robin(routing, reps, lead, rule, target, state, loads, now, steps)


def _account_owner(
    routing: RoutingConfig,
    reps: Mapping[str, Rep],
    accounts: Sequence[Account],
    lead: _Lead,
    loads: Mapping[str, RepLoad],
    now: datetime,
    steps: list[TraceStep],
) -> tuple[Account, Rep] | None:
    """Step 1: the account's owner, if the account has one and they can take the lead now."""
    account = _find_account(accounts, lead.facts.email_domain)
    if account is None:
        detail = _no_account(lead)
        steps.append(TraceStep(step="account_match", outcome="no_account", detail=detail))
        return None
    owner = reps.get(account.owner_rep_id or "")
    if owner is None:
        outcome = "no_owner" if account.owner_rep_id is None else "owner_unknown"
        detail = f"account {account.id} matched, owner {account.owner_rep_id or 'not set'}"
        steps.append(TraceStep(step="account_match", outcome=outcome, detail=detail))
        return None
    ignore_hours = routing.account_owner_ignores_working_hours or not routing.respect_working_hours
    reason = _unavailable(owner, lead, loads.get(owner.id), now, ignore_hours=ignore_hours)
    if reason is not None:
        detail = f"account {account.id} owner {owner.id} skipped: {reason}; routing by rules"
        steps.append(TraceStep(step="account_match", outcome="owner_unavailable", detail=detail))
        return None
    detail = f"account {account.id} ({account.name}) owner {owner.id} is available"
    steps.append(TraceStep(step="account_match", outcome="assigned", detail=detail))
    return account, owner


def _no_account(lead: _Lead) -> str:
    domain = lead.facts.email_domain
    return f"no account for domain {domain}" if domain else "lead has no email domain"


def _find_account(accounts: Sequence[Account], domain: str | None) -> Account | None:
    """The account of the domain or its closest parent (``uk.acme.com`` belongs to ``acme.com``)."""
    if not domain:
        return None
    labels = domain.split(".")
    for start in range(len(labels) - 1):
        candidate = ".".join(labels[start:])
        owners = sorted((a for a in accounts if candidate in a.domains), key=lambda a: a.id)
        if owners:
            return owners[0]
    return None


def _match_rule(
    routing: RoutingConfig, lead: _Lead, steps: list[TraceStep]
) -> tuple[Rule | None, AssignTo]:
    """Step 2: the first rule whose conditions all hold; otherwise the default pool."""
    for rule in routing.rules:
        if _rule_holds(rule, lead):
            about = f": {rule.description}" if rule.description else ""
            detail = f"rule {rule.id}{about} -> {_pool_text(rule.assign_to)}"
            steps.append(TraceStep(step="rule_match", outcome="matched", detail=detail))
            return rule, rule.assign_to
    detail = f"no rule matched -> default {_pool_text(routing.default)}"
    steps.append(TraceStep(step="rule_match", outcome="default", detail=detail))
    return None, routing.default


def _rule_holds(rule: Rule, lead: _Lead) -> bool:
    when, facts = rule.when, lead.facts
    checks = (
        when.grade_in is None or (facts.grade or "") in {g.upper() for g in when.grade_in},
        when.qualified_by is None or facts.qualified_by in when.qualified_by,
        when.high_intent_actions_any is None
        or not facts.high_intent_actions.isdisjoint(when.high_intent_actions_any),
        when.segment_in is None or lead.segment in when.segment_in,
        when.country_in is None or facts.country in when.country_in,
        when.region_in is None or not set(lead.regions).isdisjoint(when.region_in),
    )
    return all(checks)


def _round_robin(
    routing: RoutingConfig,
    reps: Mapping[str, Rep],
    lead: _Lead,
    rule: Rule | None,
    target: AssignTo,
    state: RoutingState,
    loads: Mapping[str, RepLoad],
    now: datetime,
    steps: list[TraceStep],
) -> RoutingDecision:
    """Steps 3 and 4: weighted round robin among the eligible reps, else the fallback."""
    skipped, eligible = _screen(routing, reps.values(), lead, target, loads, now)
    pool = pool_key(target.role, target.team)
    steps.append(_eligibility_step(pool, lead, skipped, eligible))
    rule_id = rule.id if rule else None
    rep_id: str | None
    if eligible:
        members = {r.id: r.weight for r in reps.values() if _in_pool(r, target)}
        rep_id, new_state = pick(state, pool, members, eligible)
        detail = (
            f"{rep_id} (weight {members[rep_id]}) had the most round-robin credit in pool {pool}"
            f" among {len(eligible)} eligible"
        )
        steps.append(TraceStep(step="round_robin", outcome="chosen", detail=detail))
        because = f"rule {rule_id}" if rule_id else "no rule matched, default pool"
        reason = f"{because}; weighted round robin in {pool} chose {rep_id}"
        route: Route = "rule" if rule else "round_robin"
        queue = None
    else:
        rep_id, note = _fallback_owner(routing, lead)
        queue = routing.fallback.queue
        steps.append(TraceStep(step="fallback", outcome="queued", detail=f"{queue}{note}"))
        reason = f"no eligible rep; fallback queue {queue}{note}"
        route, new_state = "fallback", state
    return RoutingDecision(
        rep_id=rep_id,
        role=target.role,
        team=target.team,
        route=route,
        fallback_queue=queue,
        rule_id=rule_id,
        segment=lead.segment,
        trace=DecisionTrace(
            steps=tuple(steps),
            skipped=tuple(SkippedRep(rep_id=rep, reason=why) for rep, why in skipped),
            chosen_reason=reason,
        ),
        new_state=new_state,
    )


def _fallback_owner(routing: RoutingConfig, lead: _Lead) -> tuple[str | None, str]:
    """Step 4: the queue's owner takes the lead unless they already had it in this episode."""
    owner = routing.fallback.owner_rep_id
    if owner is None:
        return None, "; no owner, left unassigned"
    if owner in lead.facts.excluded_rep_ids:
        return None, f"; owner {owner} already had this lead, left unassigned"
    return owner, f"; owner {owner}"


def _screen(
    routing: RoutingConfig,
    reps: Iterable[Rep],
    lead: _Lead,
    target: AssignTo,
    loads: Mapping[str, RepLoad],
    now: datetime,
) -> tuple[list[tuple[str, SkipReason]], list[str]]:
    skipped: list[tuple[str, SkipReason]] = []
    eligible: list[str] = []
    for rep in reps:
        reason = _skip_reason(routing, rep, lead, target, loads.get(rep.id), now)
        if reason is None:
            eligible.append(rep.id)
        else:
            skipped.append((rep.id, reason))
    return skipped, eligible


def _skip_reason(
    routing: RoutingConfig,
    rep: Rep,
    lead: _Lead,
    target: AssignTo,
    load: RepLoad | None,
    now: datetime,
) -> SkipReason | None:
    """Structural reasons first (they hold whatever the hour), then availability."""
    if rep.role != target.role:
        return "role_mismatch"
    if target.team is not None and rep.team != target.team:
        return "team_mismatch"
    if not _covers_territory(rep, lead):
        return "territory_mismatch"
    if rep.segments and lead.segment is not None and lead.segment not in rep.segments:
        return "segment_mismatch"
    return _unavailable(rep, lead, load, now, ignore_hours=not routing.respect_working_hours)


def _unavailable(
    rep: Rep, lead: _Lead, load: RepLoad | None, now: datetime, *, ignore_hours: bool
) -> SkipReason | None:
    """Whether the rep can take a lead right now; shared by the account owner and the pool."""
    if not rep.active:
        return "inactive"
    if rep.id in lead.facts.excluded_rep_ids:
        return "excluded_reassignment"
    if any(absence.covers(now, rep.time_zone) for absence in rep.out_of_office):
        return "out_of_office"
    status = calendar_status(rep.calendar, now)
    if status == "holiday" and (not ignore_hours or rep.calendar.local_date(now) in rep.holidays):
        return "holiday"
    if status == "outside_working_hours" and not ignore_hours:
        return "outside_working_hours"
    daily, open_cap = rep.capacity.daily, rep.capacity.open
    if daily is not None and load is not None and load.assigned_today(rep, now) >= daily:
        return "daily_capacity_reached"
    if open_cap is not None and load is not None and load.open_leads >= open_cap:
        return "open_capacity_reached"
    return None


def _covers_territory(rep: Rep, lead: _Lead) -> bool:
    """No territories means everywhere; an unknown country cannot rule a rep out."""
    country = lead.facts.country
    if not rep.territories or country is None:
        return True
    return country in rep.territories or not set(lead.regions).isdisjoint(rep.territories)


def _in_pool(rep: Rep, target: AssignTo) -> bool:
    return rep.role == target.role and (target.team is None or rep.team == target.team)


def _pool_text(target: AssignTo) -> str:
    return f"{target.role} pool" + (f" of team {target.team}" if target.team else "")


def _eligibility_step(
    pool: str, lead: _Lead, skipped: Sequence[tuple[str, str]], eligible: Sequence[str]
) -> TraceStep:
    country = lead.facts.country or "unknown (not narrowed)"
    segment = lead.segment or "unknown (not narrowed)"
    names = ", ".join(eligible) or "nobody"
    return TraceStep(
        step="eligibility",
        outcome="eligible" if eligible else "none_eligible",
        detail=f"pool {pool}, country {country}, segment {segment}: {names} eligible,"
        f" {len(skipped)} skipped",
    )
