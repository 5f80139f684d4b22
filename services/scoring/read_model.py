"""Scoring's part of ``GET /v1/leads/{lead_id}``: stage, grade, scores explained, and timeline.

The profile includes the email. The route is bearer-protected and serves sales and marketing
operations, whose first question about a lead is who it is; the lead key alone cannot answer
it. (Logs never carry the email; this response is not a log.)

Scores: by default the score stored at the lead's latest scoring, decayed up to its
``scored_at``. Given the scorecard, the view rescores the stored facts at ``now`` instead, so
the engagement shown has decayed to the moment of the request; the API mounts
:func:`lead_view_at_request`, which does that on the runtime's clock (the one
``LEADRELAY_CLOCK_SPEED`` accelerates, so the decay shown matches the SLA clocks beside it).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.store.read_model import LeadViewPart
from leadrelay.store.unit_of_work import Clock
from services.scoring.domain import (
    LeadState,
    Profile,
    Scorecard,
    dump_score,
    score_lead,
)
from services.scoring.repository import load_lead


async def lead_view(
    connection: AsyncConnection,
    lead_key: str,
    *,
    scorecard: Scorecard | None = None,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """The lead as scoring knows it, JSON-ready; None when scoring never saw the key."""
    stored = await load_lead(connection, lead_key)
    if stored is None:
        return None
    state = stored.state
    score = stored.score
    if scorecard is not None:
        score = dump_score(score_lead(scorecard, state, now or datetime.now(UTC)))
    return {
        "lead_key": state.lead_key,
        "stage": state.stage.value,
        "episode": state.episode,
        "recycled_at": _iso(state.recycled_at),
        "recycle_reason": state.recycle_reason,
        "profile": _profile(state.profile),
        "anonymous_ids": list(state.anonymous_ids),
        **_scores(score),
        "timeline": timeline(state),
    }


def lead_view_at_request(scorecard: Scorecard, clock: Clock) -> LeadViewPart:
    """The view as the API serves it: scores as of the request, not as of the last event.

    A lead that went quiet keeps its stored engagement until its next event; sales reading it
    weeks later must see what it is worth now.
    """

    async def view(connection: AsyncConnection, lead_key: str) -> dict[str, Any] | None:
        return await lead_view(connection, lead_key, scorecard=scorecard, now=clock())

    return view


def timeline(state: LeadState) -> list[dict[str, Any]]:
    """Activities, stage changes and ignored sales facts merged by time (an activity first when
    they tie, since a stage change is caused by what happened).

    Stage changes keep the order the lifecycle went through them: each is placed no earlier
    than the one before it, so a cause stamped by a clock running behind (a CRM's) cannot show
    ``mql -> sal`` before ``lead -> mql``. Its ``at`` still says what the cause said.
    """
    entries: list[tuple[datetime, int, dict[str, Any]]] = [
        (a.occurred_at, 0, {"kind": "activity", "at": _iso(a.occurred_at),
                            "event_id": a.event_id, "action": a.action, "url": a.url,
                            "form_id": a.form_id})
        for a in state.activities
    ]  # fmt: skip
    entries += [
        (placed, 1, {"kind": "stage_change", "at": _iso(c.at), "from_stage": c.from_stage.value,
                     "to_stage": c.to_stage.value, "cause_event_id": c.cause_event_id,
                     "rule": c.rule, "note": c.note})
        for c, placed in zip(state.history, _in_lifecycle_order(state), strict=True)
    ]  # fmt: skip
    entries += [
        (i.at, 1, {"kind": "ignored", "at": _iso(i.at), "cause_event_id": i.cause_event_id,
                   "fact": i.fact, "reason": i.reason})
        for i in state.ignored
    ]  # fmt: skip
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return [entry for _, _, entry in entries]


def _in_lifecycle_order(state: LeadState) -> list[datetime]:
    """Where each stage change sits on the timeline: its time, or its predecessor's if later."""
    placed: list[datetime] = []
    for change in state.history:
        placed.append(max(change.at, placed[-1]) if placed else change.at)
    return placed


def _scores(score: dict[str, Any] | None) -> dict[str, Any]:
    """The score fields; null before the lead's first scoring (e.g. only sales facts known)."""
    if score is None:
        return {
            "grade": None,
            "fit_score": None,
            "engagement_score": None,
            "qualifying_engagement": None,
            "breakdown": [],
            "scorecard_version": None,
            "scored_at": None,
        }
    return {
        "grade": score["grade"],
        "fit_score": score["fit"],
        "engagement_score": score["engagement"],
        "qualifying_engagement": score["qualifying_engagement"],
        "breakdown": score["breakdown"],
        "scorecard_version": score["version"],
        "scored_at": score["scored_at"],
    }


def _profile(profile: Profile) -> dict[str, Any]:
    fields = asdict(profile)
    fields["extra"] = dict(profile.extra)
    return fields


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
