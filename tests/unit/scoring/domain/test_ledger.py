"""The engagement ledger gives the definition's answer (``evaluate_engagement`` over every
remembered activity) from state that stops growing with the history."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.domain import (
    Activity,
    LeadState,
    Scorecard,
    ScoreLine,
    Stage,
    apply_activity,
    apply_recycle,
    evaluate_engagement,
    load_state,
    merge_visitor,
    remembered,
    score_lead,
    state_json,
)
from services.scoring.domain.ledger import SOURCES, current_ledger, ledger_engagement
from services.scoring.domain.model import RECENT_ACTIVITIES

from ..helpers import GRADE_B, act, at, card, known_lead

_RULE = st.fixed_dictionaries(
    {"points": st.sampled_from([1, 3, 4, 10, -5])},
    optional={
        "cap": st.sampled_from([5, 10, 12, 30]),
        "window": st.sampled_from(["6h", "1d", "3d"]),
    },
)


def _walked_card(rule: dict[str, Any], per_window: int) -> Scorecard:
    rule = dict(rule)
    if "cap" not in rule and "window" not in rule:
        rule["cap"] = 30  # neither: a decayed rule, tested below
    if rule["points"] < 0 and "cap" in rule:
        rule["cap"] = -rule["cap"]
    if "window" in rule:
        rule["max_per_window"] = per_window
    return card(
        engagement={"half_life": "7d", "retention": "90d",
                    "rules": [{"id": "r", "action": "page_view", **rule}]},
        fast_track={"rules": []},
    )  # fmt: skip


_HOURS = st.lists(st.integers(min_value=0, max_value=24 * 20), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    rule=_RULE,
    per_window=st.integers(min_value=1, max_value=3),
    hours=_HOURS,
    order=st.randoms(use_true_random=False),
    read_after=st.integers(min_value=0, max_value=24 * 30),
    recycled_hour=st.integers(min_value=0, max_value=24 * 20),
)
def test_a_walked_rule_keeps_exactly_what_the_walk_can_still_reach(
    rule: dict[str, Any],
    per_window: int,
    hours: list[int],
    order: Any,
    read_after: int,
    recycled_hour: int,
) -> None:
    """Caps and windows: hits inserted in any order, pruned after each, score as the full list
    would, at any later instant, and also counting only what came after a recycle."""
    scorecard = _walked_card(rule, per_window)
    hits = [act(f"e{i:02}", "page_view", at(hours=h)) for i, h in enumerate(hours)]
    order.shuffle(hits)
    state = LeadState("lk_1", stage=Stage.LEAD)
    seen: list[Activity] = []
    for hit in hits:
        seen.append(hit)
        state = apply_activity(scorecard, state, hit, at(20)).state
        now = at(20, hours=read_after)
        ledger = current_ledger(scorecard, state, now)
        assert ledger_engagement(scorecard, ledger, now) == evaluate_engagement(
            scorecard, seen, now
        )
        recycled = at(hours=recycled_hour)
        fresh = [a for a in seen if a.occurred_at > recycled]
        assert ledger_engagement(scorecard, ledger, now, after=recycled) == evaluate_engagement(
            scorecard, fresh, now
        )


_ACTIONS = st.sampled_from(
    ["page_view", "pricing_page_view", "demo_request", "unsubscribe", "email_click"]
)
_STEP = st.tuples(
    _ACTIONS,
    st.integers(min_value=-24 * 40, max_value=6),  # when it occurred, from its arrival
    st.integers(min_value=0, max_value=24 * 3),  # hours since the previous arrival
    st.booleans(),  # a recycle just before it
)

MIXED = card(
    engagement={
        "half_life": "7d",
        "retention": "60d",
        "rules": [
            {"id": "page_view", "action": "page_view", "points": 10},
            {"id": "pricing_page_view", "action": "pricing_page_view", "points": 20, "cap": 60,
             "window": "1d", "max_per_window": 1},
            {"id": "demo_request", "action": "demo_request", "points": 5},
            {"id": "email_click", "action": "email_click", "points": 3, "cap": 15},
            {"id": "unsubscribe", "action": "unsubscribe", "points": -30, "cap": -30},
        ],
    },
    sales_ready={"min_grade": "B", "min_engagement": 100000},
    fast_track={"rules": []},
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(_STEP, min_size=1, max_size=70))
def test_the_lead_scores_as_its_whole_remembered_history_would(
    steps: list[tuple[str, int, int, bool]],
) -> None:
    """Decayed sums and walked rules together, through JSON after every event, out-of-order
    and future-dated activity, recycles (fresh engagement) and retention."""
    state = known_lead(GRADE_B)
    history: list[Activity] = []
    recorded: list[Activity] = []
    now = at(0)
    for i, (action, offset, gap, recycle) in enumerate(steps):
        now += timedelta(hours=gap)
        if recycle and state.stage is Stage.LEAD:
            state = apply_recycle(state, "manual", now, f"r{i}")
        activity = act(f"e{i:03}", action, now + timedelta(hours=offset))
        decision = apply_activity(MIXED, state, activity, now)
        if decision.state is not state:
            recorded.append(activity)
            history = list(remembered(MIXED, [*history, activity], now))
        state = load_state(json.loads(state_json(decision.state)))
        later = now + timedelta(days=3)
        forgotten = [a for a in recorded if a not in history]
        expected = evaluate_engagement(MIXED, history, later)
        score = score_lead(MIXED, state, later)
        _same_lines(score.breakdown, expected.breakdown, forgotten, later)
        assert abs(score.engagement - expected.score) <= 0.05 + _worth(forgotten, later)
        if state.stage is Stage.RECYCLED:
            fresh = [a for a in history if state.recycled_at and a.occurred_at > state.recycled_at]
            wanted = evaluate_engagement(MIXED, fresh, later).score
            assert abs(score.qualifying_engagement - wanted) <= 0.05 + _worth(forgotten, later)


_POINTS = {rule.id: rule.points for rule in MIXED.engagement.rules}
_DECAYED = {"page_view", "demo_request"}


def _same_lines(
    got: tuple[ScoreLine, ...],
    expected: tuple[ScoreLine, ...],
    forgotten: list[Activity],
    now: datetime,
) -> None:
    """Walked rules' lines are the definition's; decayed ones may still hold what the last
    slice before the retention horizon kept of the forgotten hits (see ``ledger``)."""
    mine = {line.rule: line for line in got if line.axis == "engagement"}
    theirs = {line.rule: line for line in expected}
    assert {r for r in mine if r not in _DECAYED} == {r for r in theirs if r not in _DECAYED}
    for rule in mine.keys() | theirs.keys():
        if rule not in _DECAYED:
            assert mine[rule] == theirs[rule]
            continue
        old = [a for a in forgotten if a.action == rule]
        a, b = mine.get(rule), theirs.get(rule)
        assert (a.points if a else 0) - (b.points if b else 0) <= 0.01 + _worth(old, now)
        assert abs((a.raw_points if a else 0) - (b.raw_points if b else 0)) <= _POINTS[rule] * len(
            old
        )
        if not old:
            assert a is not None
            assert b is not None
            assert abs(a.points - b.points) <= 0.01
            assert abs(a.decay_factor - b.decay_factor) <= 0.0002
            assert a.source_event_ids == b.source_event_ids[-SOURCES:]


def _worth(activities: list[Activity], now: datetime) -> float:
    """What forgotten hits of the decayed rules could still be worth, decayed to ``now``."""
    half_life = MIXED.engagement.half_life
    return float(
        sum(
            abs(_POINTS[a.action]) * 0.5 ** ((now - a.occurred_at) / half_life)
            for a in activities
            if a.action in _DECAYED
        )
    )


def test_state_stays_bounded_however_long_the_history() -> None:
    """10,000 page views and pricing visits over a year: the stored state is the same size as
    after two months (its retention)."""
    state = known_lead(GRADE_B)
    sizes = {}
    for i in range(10_000):
        when = at(hours=i * 0.8)
        action = "pricing_page_view" if i % 7 == 0 else "page_view"
        state = apply_activity(MIXED, state, act(f"e{i:05}", action, when), when).state
        if i + 1 in (2_000, 10_000):
            sizes[i + 1] = len(state_json(state))
    assert len(state.activities) == RECENT_ACTIVITIES
    assert sizes[10_000] <= sizes[2_000] * 1.1


def test_a_state_stored_before_ledgers_scores_and_upgrades_from_its_activities() -> None:
    """The old stored shape (every activity, no ledger) reads as is; the next event builds the
    ledger from the full list and trims the activities to the recent ones."""
    history = [act(f"e{i:03}", "page_view", at(hours=i)) for i in range(120)]
    old = json.loads(
        state_json(LeadState("lk_1", stage=Stage.LEAD, profile=GRADE_B, activities=tuple(history)))
    )
    for key in ("engagement", "unscored", "first_form"):
        del old[key]
    state = load_state(old)
    now = at(6)
    assert (
        score_lead(MIXED, state, now).engagement == evaluate_engagement(MIXED, history, now).score
    )
    nxt = act("e999", "demo_request", now)
    upgraded = apply_activity(MIXED, state, nxt, now).state
    assert upgraded.engagement is not None
    assert len(upgraded.activities) == RECENT_ACTIVITIES
    assert score_lead(MIXED, upgraded, now) == score_lead(
        MIXED, LeadState("lk_1", stage=Stage.LEAD, profile=GRADE_B, activities=(*history, nxt)), now
    )


def test_merged_visitor_activity_counts_from_the_next_scoring_on() -> None:
    lead = apply_activity(MIXED, known_lead(GRADE_B), act("f", "demo_request", at(1)), at(1)).state
    merged = merge_visitor(lead, [act("a1", "page_view", at(0))], "anon_1")
    assert [a.event_id for a in merged.unscored] == ["a1"]
    full = [act("f", "demo_request", at(1)), act("a1", "page_view", at(0))]
    assert (
        score_lead(MIXED, merged, at(2)).engagement == evaluate_engagement(MIXED, full, at(2)).score
    )
    after = apply_activity(MIXED, merged, act("v", "page_view", at(2)), at(2)).state
    assert after.unscored == ()
    assert (
        score_lead(MIXED, after, at(3)).engagement
        == evaluate_engagement(MIXED, [*full, act("v", "page_view", at(2))], at(3)).score
    )


def test_a_new_scorecard_rebuilds_the_ledger_from_the_recent_activities() -> None:
    state = apply_activity(MIXED, known_lead(GRADE_B), act("v", "page_view", at()), at()).state
    other = card(fast_track={"rules": []})
    assert (
        score_lead(other, state, at(1)).engagement
        == evaluate_engagement(other, state.activities, at(1)).score
    )
