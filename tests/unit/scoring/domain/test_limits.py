"""Scoring limits as HubSpot has them: rule groups with a group cap and a total cap per axis, so
one action matching overlapping rules counts once unless the scorecard says otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.scoring.domain import Profile, Scorecard, evaluate_engagement, evaluate_fit

from ..helpers import act, at, base_mapping, card

DEMO_RULES = [
    {"id": "form_fill", "action": "form_submitted", "points": 10},
    {"id": "demo_form", "action": "form_submitted", "form_id": "demo*", "points": 40},
    {"id": "demo_request", "action": "demo_request", "points": 40},
    {"id": "unsubscribe", "action": "unsubscribe", "points": -30},
]
ONE_DEMO = [
    act("f1", "form_submitted", at(), form_id="demo-request"),
    act("d1", "demo_request", at()),
]


def demo_card(
    groups: dict[str, Any] | None = None, total_cap: float | None = None, **member: str
) -> Scorecard:
    """The three overlapping demo rules; ``member`` puts rules in groups (rule id -> group)."""
    rules = [dict(rule, group=member[rule["id"]]) if rule["id"] in member else rule
             for rule in DEMO_RULES]  # fmt: skip
    mapping = base_mapping()
    mapping["engagement"]["rules"] = rules
    mapping["fast_track"] = {"rules": ["demo_request"], "min_grade": "C"}
    mapping["engagement"]["limits"] = {"groups": groups or {}, "total_cap": total_cap}
    return card(**{k: v for k, v in mapping.items() if k != "version"})


def points(scorecard: Scorecard, activities: list[Any]) -> dict[str, tuple[float, str | None]]:
    result = evaluate_engagement(scorecard, activities, at())
    return {line.rule: (line.points, line.limited_by) for line in result.breakdown}


def test_without_groups_one_demo_counts_three_overlapping_rules() -> None:
    result = evaluate_engagement(demo_card(), ONE_DEMO, at())
    assert result.score == 90


def test_a_group_cap_counts_one_demo_once_filled_in_rule_order() -> None:
    scorecard = demo_card({"demo_intent": {"cap": 40}}, form_fill="demo_intent",
                          demo_form="demo_intent", demo_request="demo_intent")  # fmt: skip
    assert points(scorecard, ONE_DEMO) == {
        "form_fill": (10.0, None),
        "demo_form": (30.0, "group:demo_intent"),
        "demo_request": (0.0, "group:demo_intent"),
    }
    assert evaluate_engagement(scorecard, ONE_DEMO, at()).score == 40


def test_a_total_cap_bounds_the_axis_and_negative_points_still_count() -> None:
    scorecard = demo_card(total_cap=60)
    activities = [*ONE_DEMO, act("u1", "unsubscribe", at())]
    assert points(scorecard, activities) == {
        "form_fill": (10.0, None),
        "demo_form": (40.0, None),
        "demo_request": (10.0, "total"),
        "unsubscribe": (-30.0, None),
    }
    assert evaluate_engagement(scorecard, activities, at()).score == 30


def test_caps_bound_undecayed_points_so_a_half_life_still_halves_the_score() -> None:
    scorecard = demo_card({"demo_intent": {"cap": 40}}, demo_form="demo_intent",
                          demo_request="demo_intent")  # fmt: skip
    week_later = evaluate_engagement(scorecard, ONE_DEMO, at(7))  # half-life 7d
    assert week_later.score == 25  # (10 + 40) / 2, not (10 + 20 + 20)


def test_fit_rules_can_share_a_group_cap_too() -> None:
    mapping = base_mapping()
    for rule in mapping["fit"]["rules"][:2]:
        rule["group"] = "firmographics"
    mapping["fit"]["limits"] = {"groups": {"firmographics": {"cap": 35}}}
    scorecard = card(**{k: v for k, v in mapping.items() if k != "version"})

    fit = evaluate_fit(scorecard, Profile(company_size=500, industry="software"))

    assert fit.score == 35
    assert [(line.rule, line.points, line.limited_by) for line in fit.breakdown] == [
        ("size", 30, None),
        ("software", 5, "group:firmographics"),
    ]


def test_a_rule_naming_an_undefined_group_is_refused_at_its_key() -> None:
    with pytest.raises(ValidationError, match=r"rules\.0\.group[\s\S]*unknown group 'nope'"):
        demo_card(form_fill="nope")
