"""Translation between the event contracts and the scoring domain, both ways.

Incoming payloads become domain ``Activity``/``Profile`` values; decisions become the payloads
of ``lead_scored``, ``lead_sales_ready`` and ``lead_recycled``. Kept apart from the handlers so
that they read as load, decide, save, publish.
"""

from __future__ import annotations

from typing import Any, Final, cast

from leadrelay.contracts import events as contract
from leadrelay.contracts.envelope import CloudEvent
from services.scoring.domain import (
    Activity,
    LeadState,
    Profile,
    QualifiedBy,
    Score,
    Scorecard,
    ScoreLine,
    StageChange,
    engagement_rule_matches,
)

RECENT_ACTIVITY_LIMIT: Final = 20
"""How many of the latest activities a sales-ready event carries (a rep reads them, not a log)."""

HIGH_INTENT_MIN_POINTS: Final = 10.0
"""An activity is high-intent when it matches a fast-track rule, or an engagement rule worth at
least this many points per hit (with the default scorecard: pricing page, any form, webinar
attendance, demo request, trial signup; not page views, opens or downloads)."""

_PHONE: Final = "phone"
"""The domain profile has no phone field; it travels in ``extra`` (fit rules may use it too)."""


def web_activity(event_id: str, data: contract.WebActivity) -> Activity:
    return Activity(event_id, data.action, data.occurred_at, url=data.url)


def form_activity(event_id: str, data: contract.FormSubmitted) -> Activity:
    """A form fill is the activity ``form_submitted`` with its ``form_id`` (shared vocabulary)."""
    return Activity(event_id, "form_submitted", data.occurred_at, form_id=data.form_id)


def form_profile(data: contract.FormSubmitted) -> Profile:
    """What the person told us; ``phone`` goes to ``extra``."""
    given = data.profile
    extra: dict[str, object] = dict(given.extra or {})
    if given.phone is not None:
        extra[_PHONE] = given.phone
    return Profile(
        email=data.email,
        first_name=given.first_name,
        last_name=given.last_name,
        company=given.company,
        job_title=given.job_title,
        company_size=given.company_size,
        industry=given.industry,
        country=given.country,
        extra=extra,
    )


def lead_scored(state: LeadState, score: Score) -> contract.LeadScored:
    return contract.LeadScored(
        lead_key=state.lead_key,
        stage=state.stage.value,
        fit_score=score.fit,
        grade=score.grade,
        engagement_score=score.engagement,
        breakdown=breakdown(score),
        scorecard_version=score.version,
        scored_at=score.scored_at,
    )


def sales_ready(
    scorecard: Scorecard, state: LeadState, score: Score, qualified_by: QualifiedBy
) -> contract.LeadSalesReady:
    """Everything hand-off needs to route the lead and a rep needs to call it (email included)."""
    newest_first = state.activities[::-1]
    return contract.LeadSalesReady(
        lead_key=state.lead_key,
        episode=state.episode,
        grade=score.grade,
        fit_score=score.fit,
        engagement_score=score.engagement,
        qualified_by=qualified_by,
        breakdown=breakdown(score),
        profile=lead_profile(state.profile),
        recent_activity=tuple(activity_item(a) for a in newest_first[:RECENT_ACTIVITY_LIMIT]),
        high_intent=tuple(
            activity_item(a) for a in high_intent(scorecard, newest_first)[:RECENT_ACTIVITY_LIMIT]
        ),
        lifecycle_history=tuple(transition(change) for change in state.history),
        scorecard_version=score.version,
        qualified_at=state.history[-1].at,
    )


def lead_recycled(
    lead_key: str, reason: str, data: contract.SalesActivity
) -> contract.LeadRecycled:
    """Sales sent the lead back: tell marketing (and ourselves) why, in the rep's words."""
    return contract.LeadRecycled(
        lead_key=lead_key,
        reason=cast(contract.RecycleReason, reason),
        detail=data.reason,
        rep_id=data.rep_id,
        assignment_id=data.assignment_id,
        recycled_at=data.occurred_at,
    )


def stage_changed(
    state: LeadState, change: StageChange, attributes: contract.StageAttributes
) -> contract.LeadStageChanged:
    """One recorded transition as the lifecycle event CRMs, MAPs and reporting read."""
    return contract.LeadStageChanged(
        lead_key=state.lead_key,
        from_stage=change.from_stage.value,
        to_stage=change.to_stage.value,
        at=change.at,
        episode=state.episode,
        cause_event_id=change.cause_event_id,
        rule=change.rule,
        note=change.note,
        attributes=attributes,
    )


def stage_attributes(
    state: LeadState, cause: CloudEvent, grade: str | None, segment: str | None
) -> contract.StageAttributes:
    """What reports slice by: the cause's source and rep, the lead's first form, segment,
    country and grade (each left out while unknown)."""
    data = cause.data
    first_form = state.first_form_id
    return contract.StageAttributes(
        source=data.get("source"),
        channel=first_form,
        segment=segment,
        country=state.profile.country,
        grade=cast(contract.Grade | None, grade),
        rep_id=data.get("rep_id"),
    )


def high_intent(scorecard: Scorecard, activities: tuple[Activity, ...]) -> tuple[Activity, ...]:
    """The activities that signal buying intent (see ``HIGH_INTENT_MIN_POINTS``), same order."""
    fast = set(scorecard.fast_track.rules)
    rules = [
        rule
        for rule in scorecard.engagement.rules
        if rule.id in fast or rule.points >= HIGH_INTENT_MIN_POINTS
    ]
    return tuple(a for a in activities if any(engagement_rule_matches(r, a) for r in rules))


def breakdown(score: Score) -> tuple[contract.BreakdownItem, ...]:
    return tuple(breakdown_item(line) for line in score.breakdown)


def breakdown_item(line: ScoreLine) -> contract.BreakdownItem:
    """Decay and raw points are stated for engagement lines only (fit never decays)."""
    engagement = line.axis == "engagement"
    return contract.BreakdownItem(
        rule=line.rule,
        axis=line.axis,
        points=line.points,
        raw_points=line.raw_points if engagement else None,
        decay_factor=line.decay_factor if engagement else None,
        source_event_ids=line.source_event_ids,
        limited_by=line.limited_by,
    )


def activity_item(activity: Activity) -> contract.ActivityItem:
    return contract.ActivityItem(
        event_id=activity.event_id,
        action=activity.action,
        url=activity.url,
        form_id=activity.form_id,
        occurred_at=activity.occurred_at,
    )


def transition(change: StageChange) -> contract.LifecycleTransition:
    return contract.LifecycleTransition(
        from_stage=change.from_stage.value,
        to_stage=change.to_stage.value,
        at=change.at,
        cause_event_id=change.cause_event_id,
        rule=change.rule,
    )


def lead_profile(profile: Profile) -> contract.LeadProfile:
    """The contract's profile of a known lead; only scalar ``extra`` values travel."""
    assert profile.email is not None  # only an identified lead can be sales-ready
    extra = {k: v for k, v in profile.extra.items() if isinstance(v, str | int | float | bool)}
    phone = extra.pop(_PHONE, None)
    return contract.LeadProfile(
        email=profile.email,
        first_name=profile.first_name,
        last_name=profile.last_name,
        company=profile.company,
        job_title=profile.job_title,
        company_size=profile.company_size,
        industry=profile.industry,
        country=profile.country,
        phone=str(phone) if phone is not None else None,
        extra=extra or None,
    )


def score_signature(dumped_score: dict[str, Any] | None) -> object:
    """What makes a score different for ``lead_scored``: fit, grade, version and each rule's
    undecayed points and sources. Decay alone is not a change (it would be one on every event);
    a consumer that needs today's value recomputes it from the breakdown."""
    if dumped_score is None:
        return None
    lines = tuple(
        (line["rule"], line["axis"], line["raw_points"], tuple(line["source_event_ids"]))
        for line in dumped_score["breakdown"]
    )
    return (dumped_score["version"], dumped_score["fit"], dumped_score["grade"], lines)
