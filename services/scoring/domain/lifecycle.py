"""Lifecycle transitions as pure functions: (state, fact, now) -> new state (+ decision).

How the service drives it, per consumed event (after its inbox dedupe):

- web activity: ``apply_activity``; form submission: ``apply_form_submission`` (profile merged
  first, so the fit it reveals counts for the same decision). When a visitor identifies, call
  ``merge_visitor`` with the visitor's activities first; ``reassess`` re-checks thresholds when
  a state changed without a new activity.
- sales activity: ``reported_by_sales`` then ``apply_sales_outcome``; ``leadrelay.recycled``:
  ``apply_recycle``.
- Emit ``lead_scored`` with ``Decision.score`` and ``lead_sales_ready`` exactly when
  ``Decision.became_sales_ready``; emit ``lead_recycled`` when a sales outcome moved the lead
  to ``recycled`` (``state.recycle_reason`` says why) or to ``disqualified``.

Policy for facts that do not fit the lead's stage: stale or repeated facts (redelivery, a sales
outcome behind the lead's stage, a recycle of a recycled lead, a recycle older than the lead's
latest stage change) are IGNORED, returning the state unchanged. A sales outcome that
contradicts the stage (``accepted`` for a disqualified lead, ``lost`` for a customer) is what a
CRM reports, not a bug to retry: it is RECORDED as ignored on the lead (``LeadState.ignored``,
shown on its timeline with the reason) and changes nothing else. A recycle that contradicts the
stage (of an anonymous visitor or a customer) raises ``InvalidTransition``, which the service
dead-letters for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any, Final

from leadrelay.calendar import require_aware
from services.scoring.domain.config import RecycleCooldown, Scorecard
from services.scoring.domain.ledger import record, score_lead
from services.scoring.domain.model import (
    Activity,
    Decision,
    Holding,
    IgnoredFact,
    InvalidTransition,
    LeadState,
    Profile,
    QualifiedBy,
    Score,
    ScoringError,
    Stage,
    StageChange,
    UnknownOutcome,
    in_time_order,
)
from services.scoring.domain.scoring import (
    engagement_rule_matches,
    fresh_engagement_only,
    grade_at_least,
    is_after_recycle,
    remembered,
)

RECYCLE_REASONS: Final = frozenset(
    {"sla_breached", "rejected_by_sales", "disqualified", "lost", "manual"}
)


@dataclass(frozen=True)
class _Move:
    """Where a sales outcome takes a lead, from which stages, and from which it is stale."""

    target: Stage
    allowed_from: frozenset[Stage]
    ignored_from: frozenset[Stage]
    recycle_reason: str | None = None


def _table(target: str, allowed: str, ignored: str, recycle_reason: str | None = None) -> _Move:
    def stages(names: str) -> frozenset[Stage]:
        return frozenset(Stage(name) for name in names.split())

    return _Move(Stage(target), stages(allowed), stages(ignored), recycle_reason)


# outcome: target stage, stages it moves from, stages where it is stale (ignored);
# from any other stage the outcome contradicts the lead and is refused.
_SALES_MOVES: Final[dict[str, _Move | None]] = {
    "contact_attempted": None,
    "contacted": None,
    "accepted": _table("sal", "lead mql recycled", "sal sql opportunity customer"),
    "qualified": _table("sql", "lead mql sal recycled", "sql opportunity customer"),
    "opportunity_created": _table(
        "opportunity", "lead mql sal sql recycled", "opportunity customer"
    ),
    "won": _table("customer", "lead mql sal sql opportunity recycled", "customer"),
    "lost": _table("recycled", "lead mql sal sql opportunity", "recycled disqualified", "lost"),
    "rejected": _table("recycled", "lead mql sal", "recycled disqualified", "rejected_by_sales"),
    "disqualified": _table("disqualified", "lead mql sal sql opportunity recycled", "disqualified"),
}
SALES_OUTCOMES: Final = frozenset(_SALES_MOVES)


def apply_activity(
    scorecard: Scorecard,
    state: LeadState,
    activity: Activity,
    now: datetime,
    *,
    cooldown: RecycleCooldown | None = None,
) -> Decision:
    """Record one activity and decide whether the lead becomes sales-ready.

    A known event id changes nothing (redelivery), nor does activity older than
    ``engagement.retention`` (it would be forgotten at once). Recording forgets the lead's
    activity that fell out of the retention. A lead (or recycled lead) becomes ``mql`` when
    a fast-track rule matches this activity and grade >= ``fast_track.min_grade``, or when
    grade >= ``sales_ready.min_grade`` and engagement >= ``sales_ready.min_engagement``
    (fast track is reported when both hold). Only a ``lead`` or ``recycled`` lead can qualify, so
    sales-ready fires once per episode. Recycle guard (``recycle.requires_fresh_engagement``): a
    recycled lead qualifies only on an activity that occurred after ``recycled_at``, and only
    engagement from activities after ``recycled_at`` counts, against
    ``recycle.min_engagement_after_recycle`` when set. Recycle cooldown (``cooldown``, the
    lifecycle's ``recycle_cooldown``; None: none): within its duration after ``recycled_at``
    only an activity matching one of its ``unless`` rules can qualify a recycled lead.
    """
    if state.knows_event(activity.event_id) or not remembered(scorecard, [activity], now):
        return _unchanged(scorecard, state, now)
    identified = _identify(record(scorecard, state, activity, now), activity.event_id, now)
    return _assess(
        scorecard, state, identified, now, activity.event_id, activity, cooldown=cooldown
    )


def apply_form_submission(
    scorecard: Scorecard,
    state: LeadState,
    profile_update: Profile,
    activity: Activity,
    now: datetime,
    *,
    cooldown: RecycleCooldown | None = None,
) -> Decision:
    """A form fill: merge what the person told us, then score the ``form_submitted`` activity."""
    if state.knows_event(activity.event_id):
        return _unchanged(scorecard, state, now)
    profiled = apply_profile(state, profile_update, activity.event_id, activity.occurred_at)
    decision = apply_activity(scorecard, profiled, activity, now, cooldown=cooldown)
    return replace(decision, stage_changes=decision.state.changes_since(state))


def reassess(
    scorecard: Scorecard,
    state: LeadState,
    now: datetime,
    cause_event_id: str,
    *,
    cooldown: RecycleCooldown | None = None,
) -> Decision:
    """Re-check sales-readiness after a change without a new activity (e.g. ``merge_visitor``).

    No activity means no fast track, and a guarded recycled lead waits for fresh activity.
    """
    identified = _identify(state, cause_event_id, now)
    return _assess(scorecard, state, identified, now, cause_event_id, None, cooldown=cooldown)


def apply_profile(
    state: LeadState, profile_update: Profile, event_id: str, at: datetime
) -> LeadState:
    """Merge a profile update (``None``/blank = not provided); a known email makes it a ``lead``.

    The email is identity (the lead key comes from it), so a known email is never replaced. An
    update older than the last applied one only fills empty fields, so a late form cannot
    overwrite newer answers.
    """
    require_aware(at, "at")
    newer = state.profile_updated_at is None or at >= state.profile_updated_at
    latest = at if newer or state.profile_updated_at is None else state.profile_updated_at
    profile = _merged_profile(state.profile, profile_update, overwrite=newer)
    return _identify(replace(state, profile=profile, profile_updated_at=latest), event_id, at)


def merge_visitor(
    state: LeadState, visitor_activities: Iterable[Activity], anonymous_id: str
) -> LeadState:
    """Make an identified visitor's anonymous activity the lead's, at the original times.

    Deduplicated by event id, so merging the same visitor twice changes nothing. The merged
    activities wait in ``unscored`` for the next scoring to take them into the ledger.
    """
    pending = {a.event_id for a in state.unscored}
    new = [
        a
        for a in in_time_order(visitor_activities)
        if a.event_id not in pending and not state.knows_event(a.event_id)
    ]
    known = anonymous_id in state.anonymous_ids
    if known and not new:
        return state
    ids = state.anonymous_ids if known else (*state.anonymous_ids, anonymous_id)
    return replace(
        state,
        activities=in_time_order((*state.activities, *new)),
        unscored=in_time_order((*state.unscored, *new)),
        anonymous_ids=ids,
    )


def apply_sales_outcome(
    state: LeadState,
    outcome: str,
    event_id: str,
    at: datetime,
    reason: str | None = None,
    *,
    rep_id: str | None = None,
    assignment_id: str | None = None,
) -> LeadState:
    """Move the lead as sales reports: accepted->sal, qualified->sql, opportunity_created->
    opportunity, won->customer, lost->recycled (lost), rejected->recycled (rejected_by_sales),
    disqualified->disqualified; contact_attempted/contacted change no stage.

    Skipping ahead is allowed (CRMs report ``won`` without every step); an outcome at or behind
    the lead's stage is ignored. ``reason`` (the rep's words) is kept as the change's note. A
    rejection by a rep the lead was taken from (``rep_id``/``assignment_id`` name an earlier
    attempt than the latest one in ``holdings``) is ignored: the rep who has it now decides. An
    outcome the stage rules out is recorded in ``ignored`` (once per event), nothing else.
    """
    require_aware(at, "at")
    if outcome not in _SALES_MOVES:
        raise UnknownOutcome(
            f"unknown sales outcome {outcome!r}; expected one of {sorted(_SALES_MOVES)}"
        )
    move = _SALES_MOVES[outcome]
    if move is None or state.stage in move.ignored_from:
        return state
    if outcome == "rejected" and taken_from(state, rep_id, assignment_id):
        return state
    if state.stage not in move.allowed_from:
        why = f"sales outcome {outcome!r} cannot apply to a lead in stage {state.stage}"
        return _ignore(state, IgnoredFact(at, event_id, f"sales_outcome:{outcome}", why))
    moved = _move(state, move.target, at, event_id, f"sales_outcome:{outcome}", reason)
    if move.recycle_reason is None:
        return moved
    return replace(moved, recycled_at=at, recycle_reason=move.recycle_reason)


def _ignore(state: LeadState, fact: IgnoredFact) -> LeadState:
    """``state`` with ``fact`` recorded as ignored (a redelivery adds nothing)."""
    if any(known.cause_event_id == fact.cause_event_id for known in state.ignored):
        return state
    return replace(state, ignored=(*state.ignored, fact))


def apply_assignment(state: LeadState, holding: Holding) -> LeadState:
    """Remember who holds the lead; a new episode forgets the earlier one's holders."""
    if state.holdings and state.holdings[-1].episode > holding.episode:
        return state  # a late assignment of an episode already over
    kept = [h for h in state.holdings if h.episode == holding.episode and h != holding]
    holdings = tuple(sorted((*kept, holding), key=lambda h: h.attempt))
    return state if holdings == state.holdings else replace(state, holdings=holdings)


def taken_from(state: LeadState, rep_id: str | None, assignment_id: str | None) -> bool:
    """Whether the lead was reassigned away from this rep (or this assignment).

    Only an assignment scoring has seen superseded counts: an id it does not know may be a
    newer attempt whose announcement is still on its way, so it is taken to be the current one.
    """
    if not state.holdings:
        return False
    current = state.holdings[-1]
    if assignment_id is not None:
        earlier = {h.assignment_id for h in state.holdings[:-1]}
        return assignment_id != current.assignment_id and assignment_id in earlier
    earlier_reps = {h.rep_id for h in state.holdings[:-1]}
    return rep_id is not None and rep_id != current.rep_id and rep_id in earlier_reps


def apply_recycle(state: LeadState, reason: str, at: datetime, event_id: str) -> LeadState:
    """Send the lead back to nurture: stage ``recycled``, ``recycled_at = at``.

    Ignored when already recycled (scoring also consumes its own ``lead_recycled``), when ``at``
    is older than the lead's latest stage change (the lead moved on since, e.g. a rep accepted it
    just as its SLA ran out), and for a disqualified lead unless the reason is ``manual``.
    """
    require_aware(at, "at")
    if reason not in RECYCLE_REASONS:
        raise ScoringError(
            f"unknown recycle reason {reason!r}; expected one of {sorted(RECYCLE_REASONS)}"
        )
    if state.stage in (Stage.ANONYMOUS, Stage.CUSTOMER):
        raise InvalidTransition(f"a lead in stage {state.stage} cannot be recycled")
    stale = bool(state.history) and at < state.history[-1].at
    disqualified_stays = state.stage is Stage.DISQUALIFIED and reason != "manual"
    if state.stage is Stage.RECYCLED or stale or disqualified_stays:
        return state
    moved = _move(state, Stage.RECYCLED, at, event_id, f"recycle:{reason}")
    return replace(moved, recycled_at=at, recycle_reason=reason)


def _assess(
    scorecard: Scorecard,
    before: LeadState,
    state: LeadState,
    now: datetime,
    cause_event_id: str,
    trigger: Activity | None,
    *,
    cooldown: RecycleCooldown | None,
) -> Decision:
    score = score_lead(scorecard, state, now)
    qualification = None
    if not _cooling_down(scorecard, state, now, trigger, cooldown):
        qualification = _qualification(scorecard, state, score, trigger)
    if qualification is None:
        return Decision(state, score, False, None, state.changes_since(before))
    qualified_by, rule, note = qualification
    mql = _move(state, Stage.MQL, now, cause_event_id, rule, note)
    mql = replace(mql, episode=state.episode + 1)
    return Decision(mql, score, True, qualified_by, mql.changes_since(before))


def _qualification(
    scorecard: Scorecard, state: LeadState, score: Score, trigger: Activity | None
) -> tuple[QualifiedBy, str, str] | None:
    """Why the lead is sales-ready now (kind, rule, human note), or None."""
    if state.stage not in (Stage.LEAD, Stage.RECYCLED):
        return None
    if fresh_engagement_only(scorecard, state) and (
        trigger is None or not is_after_recycle(state, trigger)
    ):
        return None
    fast = _fast_track_rule(scorecard, trigger)
    if fast is not None and grade_at_least(score.grade, scorecard.fast_track.min_grade):
        note = f"grade {score.grade} (min {scorecard.fast_track.min_grade})"
        return "fast_track", f"fast_track:{fast}", note
    threshold = _engagement_threshold(scorecard, state)
    minimum = scorecard.sales_ready.min_grade
    if grade_at_least(score.grade, minimum) and score.qualifying_engagement >= threshold:
        note = (
            f"grade {score.grade} (min {minimum}),"
            f" engagement {score.qualifying_engagement:g} (min {threshold:g})"
        )
        return "thresholds", "sales_ready", note
    return None


def _cooling_down(
    scorecard: Scorecard,
    state: LeadState,
    now: datetime,
    trigger: Activity | None,
    cooldown: RecycleCooldown | None,
) -> bool:
    """Whether a recycled lead is still within its cooldown for this activity (or none)."""
    if cooldown is None or state.stage is not Stage.RECYCLED:
        return False
    at = trigger.occurred_at if trigger is not None else now
    matched = [] if trigger is None else _matching_rules(scorecard, trigger, cooldown.unless)
    return cooldown.holds_back(state.recycled_at, at, matched)


def _matching_rules(scorecard: Scorecard, trigger: Activity, rule_ids: Iterable[str]) -> list[str]:
    return [
        rule_id
        for rule_id in rule_ids
        if engagement_rule_matches(scorecard.engagement_rule(rule_id), trigger)
    ]


def _fast_track_rule(scorecard: Scorecard, trigger: Activity | None) -> str | None:
    if trigger is None:
        return None
    return next(iter(_matching_rules(scorecard, trigger, scorecard.fast_track.rules)), None)


def _engagement_threshold(scorecard: Scorecard, state: LeadState) -> float:
    after_recycle = scorecard.recycle.min_engagement_after_recycle
    if state.stage is Stage.RECYCLED and after_recycle is not None:
        return after_recycle
    return scorecard.sales_ready.min_engagement


def reported_by_sales(state: LeadState, event_id: str, at: datetime) -> LeadState:
    """anonymous -> lead: sales reporting on a person makes them known.

    CRMs report on people marketing has not seen (yet): an existing contact who wins a deal and
    fills a form next week must stay a customer, not be scored and handed off again as new.
    """
    if state.stage is Stage.ANONYMOUS:
        return _move(state, Stage.LEAD, at, event_id, "reported_by_sales")
    return state


def _identify(state: LeadState, event_id: str, at: datetime) -> LeadState:
    """anonymous -> lead once an email is known."""
    if state.stage is Stage.ANONYMOUS and state.profile.email:
        return _move(state, Stage.LEAD, at, event_id, "identified")
    return state


def _move(
    state: LeadState, to: Stage, at: datetime, event_id: str, rule: str, note: str | None = None
) -> LeadState:
    change = StageChange(state.stage, to, at, event_id, rule, note)
    return replace(state, stage=to, history=(*state.history, change))


def _unchanged(scorecard: Scorecard, state: LeadState, now: datetime) -> Decision:
    return Decision(state, score_lead(scorecard, state, now), False, None, ())


def _merged_profile(current: Profile, update: Profile, *, overwrite: bool) -> Profile:
    changes: dict[str, Any] = {}
    for spec in fields(Profile):
        new, old = getattr(update, spec.name), getattr(current, spec.name)
        if spec.name == "extra" or _blank(new) or (spec.name == "email" and not _blank(old)):
            continue
        if overwrite or _blank(old):
            changes[spec.name] = new
    extra = dict(current.extra)
    for key, value in update.extra.items():
        if not _blank(value) and (overwrite or _blank(extra.get(key))):
            extra[key] = value
    return replace(current, **changes, extra=extra)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
