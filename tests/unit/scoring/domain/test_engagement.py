"""Engagement: what the lead did, fading with time, bounded by caps and windows."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from services.scoring.domain import Activity, evaluate_engagement

from ..helpers import act, at, card


def one_rule(**rule: Any) -> Any:
    """The test scorecard with a single engagement rule ``r`` on page views, 10 points."""
    return card(
        engagement_rules=[{"id": "r", "action": "page_view", "points": 10, **rule}],
        fast_track={"rules": []},
    )


def views(*days: float) -> list[Activity]:
    return [act(f"e{i}", "page_view", at(days=d)) for i, d in enumerate(days)]


@pytest.mark.parametrize(
    ("age_days", "points"),
    [(0, 10.0), (3.5, 7.07), (7, 5.0), (14, 2.5), (21, 1.25), (70, 0.01)],
)
def test_decay_halves_per_half_life(age_days: float, points: float) -> None:
    """10 points with a 7-day half-life: 5.0 after 7 days, 2.5 after 14 (exact)."""
    result = evaluate_engagement(one_rule(), views(0), now=at(days=age_days))
    assert result.score == points


def test_decay_counts_from_when_it_happened_not_when_it_arrived() -> None:
    [line] = evaluate_engagement(one_rule(), views(0, 7), now=at(days=14)).breakdown
    assert (line.raw_points, line.points, line.decay_factor) == (20, 7.5, 0.375)
    assert line.source_event_ids == ("e0", "e1")


def test_future_dated_activity_is_not_worth_more_than_its_points() -> None:
    assert evaluate_engagement(one_rule(), views(1), now=at()).score == 10


def test_cap_bounds_undecayed_points_and_the_crossing_hit_gets_the_remainder() -> None:
    result = evaluate_engagement(one_rule(points=4, cap=10), views(0, 0.1, 0.2, 0.3), now=at(1))
    [line] = result.breakdown
    assert line.raw_points == 10  # 4 + 4 + 2, the oldest view earns nothing
    assert line.source_event_ids == ("e1", "e2", "e3")


def test_a_repeated_action_never_exceeds_its_cap() -> None:
    burst = views(*[i / 1000 for i in range(1000)])
    assert evaluate_engagement(one_rule(points=1, cap=10), burst, now=at(1)).score <= 10


def test_the_cap_is_filled_by_the_most_recent_hits() -> None:
    """An old burst does not lock the rule out: this month's views still count."""
    old_burst = views(0, 0.1, 0.2)
    recent = [act("new", "page_view", at(days=60))]
    [line] = evaluate_engagement(one_rule(cap=10), old_burst + recent, now=at(60)).breakdown
    assert (line.points, line.source_event_ids) == (10, ("new",))


def test_negative_points_and_a_negative_cap_is_a_floor() -> None:
    scorecard = one_rule(points=-10, cap=-25)
    result = evaluate_engagement(scorecard, views(0, 0, 0, 0), now=at())
    assert result.score == -25


def test_window_counts_at_most_n_hits_in_any_rolling_window() -> None:
    """Two per day: of hits at 0h, 1h, 2h, 23h, 25h, 26h, at most two in any 24h span count."""
    scorecard = one_rule(window="1d", max_per_window=2)
    hours = [0, 1, 2, 23, 25, 26]
    hits = [act(f"h{h}", "page_view", at(hours=h)) for h in hours]
    [line] = evaluate_engagement(scorecard, hits, now=at(hours=26)).breakdown
    counted = sorted(int(e[1:]) for e in line.source_event_ids)
    for start in range(27):
        assert sum(start <= h < start + 24 for h in counted) <= 2
    assert counted == [1, 2, 25, 26]


def test_window_and_cap_together() -> None:
    scorecard = one_rule(window="1d", max_per_window=1, cap=20)
    hits = views(0, 0.5, 1, 1.5, 2, 2.5, 3)
    [line] = evaluate_engagement(scorecard, hits, now=at(3)).breakdown
    assert line.raw_points == 20
    assert line.source_event_ids == ("e4", "e6")


def test_globs_on_url_and_form_id_ignore_case() -> None:
    scorecard = card(
        engagement_rules=[
            {"id": "pricing", "action": "page_view", "url": "*/pricing*", "points": 10},
            {"id": "demo", "action": "form_*", "form_id": "demo*", "points": 40},
            {"id": "any_view", "action": "page_view", "points": 1},
        ],
        fast_track={"rules": []},
    )
    activities = [
        act("p", "page_view", at(), url="https://x.example/PRICING/annual"),
        act("b", "page_view", at(), url="https://x.example/blog"),
        act("n", "page_view", at()),
        act("d", "form_submitted", at(), form_id="Demo-Request"),
        act("c", "form_submitted", at(), form_id="contact-us"),
    ]
    result = evaluate_engagement(scorecard, activities, now=at())
    assert {line.rule: line.source_event_ids for line in result.breakdown} == {
        "pricing": ("p",),
        "demo": ("d",),
        "any_view": ("b", "n", "p"),
    }
    assert result.score == 53


def test_arrival_order_and_duplicates_do_not_change_the_score() -> None:
    scorecard = one_rule(window="1d", max_per_window=2, cap=40)
    hits = views(0, 0.2, 0.4, 1.5, 3, 3.1, 6)
    expected = evaluate_engagement(scorecard, hits, now=at(8))
    for order in itertools.islice(itertools.permutations(hits), 0, 5040, 97):
        assert evaluate_engagement(scorecard, [*order, order[0]], now=at(8)) == expected


def test_score_is_the_sum_of_the_rounded_lines() -> None:
    scorecard = card(fast_track={"rules": []})
    activities = [
        act("v", "page_view", at()),
        act("p", "pricing_page_view", at(1)),
        act("u", "unsubscribe", at(2)),
    ]
    result = evaluate_engagement(scorecard, activities, now=at(5))
    assert result.score == round(sum(line.points for line in result.breakdown), 2)
    assert {line.rule for line in result.breakdown} == {"page_view", "pricing", "unsubscribe"}
    assert result.score < 0
