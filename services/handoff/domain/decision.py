"""The routing decision: which rep gets a sales-ready lead, and the reasons, as one pure function.

``decide`` reads no clock, database or broker: the caller passes the roster, the accounts, the
round-robin state and the reps' load, stores the returned state and publishes the decision.
Order: (1) the owner of the lead's account, if available; (2) the first matching rule (or the
default) picks a role/team pool, narrowed by territory and segment; (3) weighted round robin among
the eligible reps; (4) nobody eligible: the fallback queue. Every step leaves a line in the trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadrelay.calendar import calendar_status, require_aware
from services.handoff.domain.accounts import AccountMatch, Ambiguous, match_account
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
    "rejected_lead",
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
    company: str | None = None
    """The company the lead named (a form's answer), for matching accounts by name."""
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
    rejected_by_rep_ids: frozenset[str] = frozenset()
    """Reps who rejected the lead in a recent episode (``routing.rejections``): not again."""

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
    method: str | None = None
    """How the account was matched (``domain``, ``domain_variant``, ``company_name``, ``fuzzy``)."""
    confidence: float | None = None
    """How sure the account match is, 0-1."""


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
    pool: str | None = None
    """The rotation pool the rep took a turn in (None: account owner or fallback)."""
    trace: DecisionTrace
    new_state: RoutingState
    """Store this in place of the state passed in (unchanged unless round robin picked)."""


@dataclass(frozen=True)
class _Lead:
    facts: LeadFacts
    segment: Segment | None
    regions: tuple[str, ...]


@dataclass(frozen=True)
class _Context:
    """What every step of one decision reads, and nothing it changes."""

    routing: RoutingConfig
    reps: Mapping[str, Rep]
    lead: _Lead
    loads: Mapping[str, RepLoad]
    now: datetime

    def unavailable(self, rep: Rep, *, ignore_hours: bool) -> SkipReason | None:
        return _unavailable(rep, self.lead, self.loads.get(rep.id), self.now, ignore_hours)


@dataclass(frozen=True)
class _Pool:
    """Step 2's outcome: the pool a rule (or the default) chose."""

    rule: Rule | None
    target: AssignTo

    @property
    def key(self) -> str:
        return pool_key(self.target.role, self.target.team)


@dataclass(frozen=True)
class _Choice:
    """Step 3 or 4's outcome: who gets the lead from the pool, or which queue."""

    rep_id: str | None
    route: Route
    step: TraceStep
    reason: str
    new_state: RoutingState
    queue: str | None = None


@dataclass(frozen=True)
class Footprint:
    """What one decision may read or change besides the lead's own rows: the rotation pool its
    rule chooses, and the reps whose loads it may read or charge (the pool's members, the owner
    of the lead's account, the fallback queue's owner). A caller locks these and only these,
    so decisions whose pools share no rep never wait for each other."""

    pool: str
    rep_ids: frozenset[str]
    account: AccountMatch | Ambiguous | None = None
    """The lead's account match, found once: :func:`decide` given this footprint reuses it."""


def footprint(
    routing: RoutingConfig, roster: Sequence[Rep], accounts: Sequence[Account], facts: LeadFacts
) -> Footprint:
    """The footprint of ``decide`` for this lead on this roster, whatever the state and loads."""
    lead = _lead(routing, facts)
    pool, _ = _match_rule(routing, lead)
    reps = {rep.id for rep in roster if pool.target.includes(rep)}
    found = _match(routing, accounts, facts)
    if isinstance(found, AccountMatch) and found.account.owner_rep_id is not None:
        reps.add(found.account.owner_rep_id)
    if routing.fallback.owner_rep_id is not None:
        reps.add(routing.fallback.owner_rep_id)
    return Footprint(pool.key, frozenset(reps), found)


def decide(
    routing: RoutingConfig,
    roster: Sequence[Rep],
    accounts: Sequence[Account],
    facts: LeadFacts,
    state: RoutingState,
    loads: Mapping[str, RepLoad],
    now: datetime,
    *,
    known: Footprint | None = None,
) -> RoutingDecision:
    """Route one sales-ready lead; the same inputs always give the same decision.

    ``known``: this lead's :func:`footprint` on the same routing and accounts, if the caller
    has it already (it locked by it); its account match is reused instead of found again."""
    require_aware(now)
    lead = _lead(routing, facts)
    reps = {rep.id: rep for rep in sorted(roster, key=lambda rep: rep.id)}
    context = _Context(routing, reps, lead, loads, now)
    found = known.account if known is not None else _match(routing, accounts, facts)
    account_step, owned = _account_owner(context, found)
    if isinstance(owned, Ambiguous) and routing.account_matching.tie_break == "fallback":
        pool = _Pool(None, routing.default)
        return _decision(context, pool, (account_step,), _fallback(routing, lead, state))
    if isinstance(owned, tuple):
        return _owner_decision(context, owned, account_step, state)
    pool, rule_step = _match_rule(routing, lead)
    return _pool_decision(context, pool, (account_step, rule_step), state)


def _match(
    routing: RoutingConfig, accounts: Sequence[Account], facts: LeadFacts
) -> AccountMatch | Ambiguous | None:
    return match_account(accounts, facts.email_domain, facts.company, routing.account_matching)


def _lead(routing: RoutingConfig, facts: LeadFacts) -> _Lead:
    return _Lead(facts, routing.segment_for(facts.company_size), routing.regions_of(facts.country))


def _owner_decision(
    context: _Context, owned: tuple[Account, Rep], step: TraceStep, state: RoutingState
) -> RoutingDecision:
    """Step 1 decided: the account's owner takes the lead; the rotation is untouched."""
    account, owner = owned
    return RoutingDecision(
        rep_id=owner.id,
        role=owner.role,
        team=owner.team,
        route="account",
        account_id=account.id,
        segment=context.lead.segment,
        trace=DecisionTrace(
            steps=(step,), chosen_reason=f"owner of account {account.name} ({account.id})"
        ),
        new_state=state,
    )


def _pool_decision(
    context: _Context, pool: _Pool, steps: tuple[TraceStep, ...], state: RoutingState
) -> RoutingDecision:
    """Steps 3 and 4: weighted round robin among the pool's eligible reps, else the fallback."""
    skipped, eligible = _screen(context, pool.target)
    eligibility = _eligibility_step(pool.key, context.lead, skipped, eligible)
    if eligible:
        choice = _rotate(context, pool, eligible, state)
    else:
        choice = _fallback(context.routing, context.lead, state)
    return _decision(context, pool, (*steps, eligibility), choice, skipped)


def _decision(
    context: _Context,
    pool: _Pool,
    steps: tuple[TraceStep, ...],
    choice: _Choice,
    skipped: Sequence[tuple[str, SkipReason]] = (),
) -> RoutingDecision:
    """The decision for ``choice`` out of ``pool``, its trace ending with the choice's step."""
    return RoutingDecision(
        rep_id=choice.rep_id,
        role=pool.target.role,
        team=pool.target.team,
        route=choice.route,
        fallback_queue=choice.queue,
        rule_id=pool.rule.id if pool.rule else None,
        segment=context.lead.segment,
        pool=pool.key if choice.route != "fallback" else None,
        trace=DecisionTrace(
            steps=(*steps, choice.step),
            skipped=tuple(SkippedRep(rep_id=rep, reason=why) for rep, why in skipped),
            chosen_reason=choice.reason,
        ),
        new_state=choice.new_state,
    )


def _rotate(
    context: _Context, pool: _Pool, eligible: Sequence[str], state: RoutingState
) -> _Choice:
    """Step 3: the eligible rep with the most round-robin credit in the pool."""
    members = {r.id: r.weight for r in context.reps.values() if pool.target.includes(r)}
    rep_id, new_state = pick(state, pool.key, members, eligible)
    detail = (
        f"{rep_id} (weight {members[rep_id]}) had the most round-robin credit in pool {pool.key}"
        f" among {len(eligible)} eligible"
    )
    because = f"rule {pool.rule.id}" if pool.rule else "no rule matched, default pool"
    return _Choice(
        rep_id=rep_id,
        route="rule" if pool.rule else "round_robin",
        step=TraceStep(step="round_robin", outcome="chosen", detail=detail),
        reason=f"{because}; weighted round robin in {pool.key} chose {rep_id}",
        new_state=new_state,
    )


def _fallback(routing: RoutingConfig, lead: _Lead, state: RoutingState) -> _Choice:
    """Step 4: the fallback queue; its owner takes the lead unless they already had it in this
    episode."""
    queue, owner = routing.fallback.queue, routing.fallback.owner_rep_id
    rep_id: str | None = None
    if owner is None:
        note = "; no owner, left unassigned"
    elif owner in lead.facts.excluded_rep_ids:
        note = f"; owner {owner} already had this lead, left unassigned"
    else:
        rep_id, note = owner, f"; owner {owner}"
    return _Choice(
        rep_id=rep_id,
        route="fallback",
        step=TraceStep(step="fallback", outcome="queued", detail=f"{queue}{note}"),
        reason=f"no eligible rep; fallback queue {queue}{note}",
        new_state=state,
        queue=queue,
    )


def _account_owner(
    context: _Context, found: AccountMatch | Ambiguous | None
) -> tuple[TraceStep, tuple[Account, Rep] | Ambiguous | None]:
    """Step 1: the account's owner, if the lead matches (``found``) one account that has an
    owner who can take the lead now; an ambiguous match is returned for the tie-break."""
    lead, routing = context.lead, context.routing
    if found is None:
        return TraceStep(step="account_match", outcome="no_account", detail=_no_account(lead)), None
    if isinstance(found, Ambiguous):
        return _ambiguous_step(found, routing.account_matching.tie_break), found
    account = found.account
    how = {"method": found.method, "confidence": found.confidence}
    matched = f"account {account.id} matched by {found.method} ({found.confidence:.2f})"
    owner = context.reps.get(account.owner_rep_id or "")
    if owner is None:
        outcome = "no_owner" if account.owner_rep_id is None else "owner_unknown"
        detail = f"{matched}, owner {account.owner_rep_id or 'not set'}"
        return TraceStep(step="account_match", outcome=outcome, detail=detail, **how), None
    ignore_hours = routing.account_owner_ignores_working_hours or not routing.respect_working_hours
    reason = context.unavailable(owner, ignore_hours=ignore_hours)
    if reason is not None:
        detail = f"{matched}; owner {owner.id} skipped: {reason}; routing by rules"
        step = TraceStep(step="account_match", outcome="owner_unavailable", detail=detail, **how)
        return step, None
    detail = f"{matched} ({account.name}); owner {owner.id} is available"
    step = TraceStep(step="account_match", outcome="assigned", detail=detail, **how)
    return step, (account, owner)


def _ambiguous_step(found: Ambiguous, tie_break: str) -> TraceStep:
    ids = ", ".join(a.id for a in found.accounts)
    then = "fallback queue" if tie_break == "fallback" else "routing by rules"
    detail = f"accounts {ids} match equally by {found.method} ({found.confidence:.2f}); {then}"
    return TraceStep(
        step="account_match",
        outcome="ambiguous",
        detail=detail,
        method=found.method,
        confidence=found.confidence,
    )


def _no_account(lead: _Lead) -> str:
    domain = lead.facts.email_domain
    return f"no account for domain {domain}" if domain else "lead has no email domain"


def _match_rule(routing: RoutingConfig, lead: _Lead) -> tuple[_Pool, TraceStep]:
    """Step 2: the first rule whose conditions all hold; otherwise the default pool."""
    for rule in routing.rules:
        if _rule_holds(rule, lead):
            about = f": {rule.description}" if rule.description else ""
            detail = f"rule {rule.id}{about} -> {_pool_text(rule.assign_to)}"
            step = TraceStep(step="rule_match", outcome="matched", detail=detail)
            return _Pool(rule, rule.assign_to), step
    detail = f"no rule matched -> default {_pool_text(routing.default)}"
    return _Pool(None, routing.default), TraceStep(
        step="rule_match", outcome="default", detail=detail
    )


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


def _screen(context: _Context, target: AssignTo) -> tuple[list[tuple[str, SkipReason]], list[str]]:
    """Every rep of the roster, eligible for the pool ``target`` or skipped with a reason."""
    skipped: list[tuple[str, SkipReason]] = []
    eligible: list[str] = []
    for rep in context.reps.values():
        reason = _skip_reason(context, rep, target)
        if reason is None:
            eligible.append(rep.id)
        else:
            skipped.append((rep.id, reason))
    return skipped, eligible


def _skip_reason(context: _Context, rep: Rep, target: AssignTo) -> SkipReason | None:
    """Structural reasons first (they hold whatever the hour), then availability."""
    lead = context.lead
    if rep.role != target.role:
        return "role_mismatch"
    if target.team is not None and rep.team != target.team:
        return "team_mismatch"
    if not _covers_territory(rep, lead):
        return "territory_mismatch"
    if rep.segments and lead.segment is not None and lead.segment not in rep.segments:
        return "segment_mismatch"
    return context.unavailable(rep, ignore_hours=not context.routing.respect_working_hours)


def _unavailable(
    rep: Rep, lead: _Lead, load: RepLoad | None, now: datetime, ignore_hours: bool
) -> SkipReason | None:
    """Whether the rep can take a lead right now; shared by the account owner and the pool."""
    if not rep.active:
        return "inactive"
    if rep.id in lead.facts.excluded_rep_ids:
        return "excluded_reassignment"
    if rep.id in lead.facts.rejected_by_rep_ids:
        return "rejected_lead"
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


def claimed(rep: Rep, queue: str, state: RoutingState) -> RoutingDecision:
    """A rep took a lead out of fallback ``queue`` by hand: theirs now, no rotation turn used."""
    detail = f"{rep.id} claimed the lead from queue {queue}"
    return RoutingDecision(
        rep_id=rep.id,
        role=rep.role,
        team=rep.team,
        route="fallback",
        fallback_queue=queue,
        trace=DecisionTrace(
            steps=(TraceStep(step="fallback", outcome="claimed", detail=detail),),
            chosen_reason=f"claimed from fallback queue {queue} by {rep.id}",
        ),
        new_state=state,
    )
