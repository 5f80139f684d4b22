"""Retention: a lead forgets activity older than ``engagement.retention``, and nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.domain import (
    Activity,
    Stage,
    apply_activity,
    evaluate_engagement,
    remembered,
)

from ..helpers import GRADE_B, GRADE_C, act, at, card, known_lead

RETAINED = card(
    engagement={
        "half_life": "7d",
        "retention": "90d",
        "rules": [
            {
                "id": "page_view",
                "action": "page_view",
                "points": 10,
                "cap": 30,
                "window": "1d",
                "max_per_window": 2,
            },
            {"id": "demo_request", "action": "demo_request", "points": 5},
            {"id": "unsubscribe", "action": "unsubscribe", "points": -30, "cap": -30},
        ],
    }
)


def test_the_default_retention_is_a_year() -> None:
    assert card().engagement.retention == timedelta(days=365)


def test_remembered_keeps_the_retention_and_its_first_instant() -> None:
    activities = [
        act("old", "page_view", at(0)),
        act("edge", "page_view", at(10)),
        act("new", "page_view", at(95)),
    ]
    kept = remembered(RETAINED, reversed(activities), at(100))
    assert [a.event_id for a in kept] == ["edge", "new"]


def test_recording_an_activity_forgets_what_fell_out_of_the_retention() -> None:
    lead = apply_activity(RETAINED, known_lead(GRADE_C), act("a", "page_view", at(0)), at(0)).state
    later = apply_activity(RETAINED, lead, act("b", "page_view", at(120)), at(120)).state
    assert [a.event_id for a in later.activities] == ["b"]
    assert later.stage is Stage.LEAD


def test_activity_older_than_the_retention_changes_nothing_not_even_a_demo_request() -> None:
    lead = known_lead(GRADE_B)
    late = apply_activity(RETAINED, lead, act("d", "demo_request", at(0)), at(91))
    assert late.state is lead
    assert (late.became_sales_ready, late.qualified_by) == (False, None)
    fresh = apply_activity(RETAINED, lead, act("d", "demo_request", at(89)), at(91))
    assert fresh.became_sales_ready


_ACTIONS = st.sampled_from(["page_view", "demo_request", "unsubscribe"])
_HISTORY = st.lists(st.tuples(_ACTIONS, st.integers(min_value=0, max_value=200 * 24)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(history=_HISTORY)
def test_forgetting_only_drops_the_decayed_worth_of_the_forgotten_hits(
    history: list[tuple[str, int]],
) -> None:
    """Caps and windows fill from the newest hit, so old hits never change how new ones count."""
    now = at(200)
    activities = [act(f"e{i}", action, at(hours=hour)) for i, (action, hour) in enumerate(history)]
    kept = remembered(RETAINED, activities, now)
    forgotten = [a for a in activities if a not in kept]
    full = evaluate_engagement(RETAINED, activities, now).score
    trimmed = evaluate_engagement(RETAINED, kept, now).score
    assert abs(full - trimmed) <= _worth_at_most(forgotten, now) + 0.01 * 3  # 2 dp per line


def _worth_at_most(activities: list[Activity], now: datetime) -> float:
    """What the hits could still be worth after decay (rule ids here are their actions)."""
    points = {rule.id: abs(rule.points) for rule in RETAINED.engagement.rules}
    half_life = RETAINED.engagement.half_life
    return float(
        sum(points[a.action] * 0.5 ** ((now - a.occurred_at) / half_life) for a in activities)
    )
