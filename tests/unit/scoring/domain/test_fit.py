"""Fit: who the lead is, scored by rules a marketer can read."""

from __future__ import annotations

from typing import Any

import pytest

from services.scoring.domain import Profile, evaluate_fit

from ..helpers import card


def fit_points(rule: dict[str, Any], profile: Profile) -> float:
    """Fit score of ``profile`` under a scorecard holding only ``rule``, worth 5 points."""
    scorecard = card(fit_rules=[{"id": "rule", "points": 5, **rule}])
    return evaluate_fit(scorecard, profile).score


@pytest.mark.parametrize(
    ("rule", "profile", "matches"),
    [
        ({"field": "industry", "equals": "software"}, Profile(industry=" Software "), True),
        ({"field": "industry", "equals": "software"}, Profile(industry="Hardware"), False),
        ({"field": "company_size", "equals": 200}, Profile(company_size=200), True),
        ({"field": "country", "in": ["US", "CA"]}, Profile(country="us"), True),
        ({"field": "country", "in": ["US", "CA"]}, Profile(country="DE"), False),
        (
            {"field": "company_size", "range": {"min": 50, "max": 200}},
            Profile(company_size=50),
            True,
        ),
        (
            {"field": "company_size", "range": {"min": 50, "max": 200}},
            Profile(company_size=199),
            True,
        ),
        (
            {"field": "company_size", "range": {"min": 50, "max": 200}},
            Profile(company_size=200),
            False,
        ),
        (
            {"field": "company_size", "range": {"min": 50, "max": 200}},
            Profile(company_size=49),
            False,
        ),
        ({"field": "company_size", "range": {"min": 1000}}, Profile(company_size=10**6), True),
        ({"field": "company_size", "range": {"max": 10}}, Profile(company_size=3), True),
        ({"field": "job_title", "contains": "student"}, Profile(job_title="PhD STUDENT"), True),
        ({"field": "job_title", "contains": "student"}, Profile(job_title="Studio lead"), False),
        ({"field": "job_title", "regex": r"\b(vp|chief)\b"}, Profile(job_title="VP Sales"), True),
        ({"field": "job_title", "regex": r"\b(vp|chief)\b"}, Profile(job_title="MVP owner"), False),
        ({"field": "email", "email_domain_in": ["acme.com"]}, Profile(email="a@ACME.com"), True),
        ({"field": "email", "email_domain_in": ["acme.com"]}, Profile(email="a@eu.acme.com"), True),
        (
            {"field": "email", "email_domain_in": ["acme.com"]},
            Profile(email="a@notacme.com"),
            False,
        ),
        ({"field": "email", "email_domain_in": ["edu"]}, Profile(email="s@cs.stanford.edu"), True),
        ({"field": "email", "email_domain_in": "free_mail"}, Profile(email="x@gmail.com"), True),
        ({"field": "email", "email_domain_in": "free_mail"}, Profile(email="x@acme.com"), False),
        (
            {"field": "extra.plan", "equals": "enterprise"},
            Profile(extra={"plan": "Enterprise"}),
            True,
        ),
        ({"field": "extra.uses_crm", "equals": True}, Profile(extra={"uses_crm": True}), True),
        ({"field": "extra.uses_crm", "equals": True}, Profile(extra={"uses_crm": False}), False),
        ({"field": "extra.seats", "range": {"min": 10}}, Profile(extra={"seats": "1,200"}), True),
        ({"field": "extra.seats", "range": {"min": 10}}, Profile(extra={"seats": "many"}), False),
    ],
)
def test_each_operator(rule: dict[str, Any], profile: Profile, matches: bool) -> None:
    assert fit_points(rule, profile) == (5 if matches else 0)


@pytest.mark.parametrize(
    "rule",
    [
        {"field": "industry", "equals": "software"},
        {"field": "company_size", "range": {"min": 0}},
        {"field": "job_title", "contains": "a"},
        {"field": "job_title", "regex": ".*"},
        {"field": "email", "email_domain_in": ["gmail.com"]},
        {"field": "extra.plan", "in": ["x"]},
    ],
)
def test_a_missing_value_never_matches(rule: dict[str, Any]) -> None:
    assert fit_points(rule, Profile()) == 0


def test_rules_add_up_and_negative_points_subtract() -> None:
    scorecard = card(
        fit_rules=[
            {"id": "country", "field": "country", "equals": "US", "points": 10},
            {"id": "student", "field": "job_title", "contains": "student", "points": -30},
            {"id": "free_mail", "field": "email", "email_domain_in": "free_mail", "points": -15},
            {
                "id": "competitor",
                "field": "email",
                "email_domain_in": "competitors",
                "points": -100,
            },
        ]
    )
    student = Profile(email="kim@gmail.com", job_title="Student", country="US")
    result = evaluate_fit(scorecard, student)
    assert result.score == -35
    assert [(line.rule, line.points) for line in result.breakdown] == [
        ("country", 10),
        ("student", -30),
        ("free_mail", -15),
    ]
    assert all(line.axis == "fit" and line.source_event_ids == () for line in result.breakdown)
    assert evaluate_fit(scorecard, Profile(email="spy@rival.example")).score == -100


@pytest.mark.parametrize(
    ("size", "grade"),
    [(60, "A"), (59.99, "B"), (40, "B"), (39.5, "C"), (20, "C"), (19, "D"), (-50, "D")],
)
def test_grade_bands(size: float, grade: str) -> None:
    """Fit equal to a band's floor earns that band; anything below C is D."""
    scorecard = card(
        fit_rules=[{"id": "size", "field": "company_size", "range": {"min": 0}, "points": size}]
    )
    result = evaluate_fit(scorecard, Profile(company_size=1))
    assert (result.score, result.grade) == (size, grade)


def test_a_remembered_fit_is_the_fit_of_the_profile_at_hand() -> None:
    """Fit is remembered per scorecard by the values its rules read: profiles that differ in
    any of them (a bool is not a number, a list in ``extra`` cannot be a key) still score as
    evaluated afresh, in any order and however often they come back."""
    rules: list[dict[str, Any]] = [
        {"id": "size", "field": "company_size", "range": {"min": 1}, "points": 10},
        {"id": "seats", "field": "extra.seats", "equals": 1, "points": 5},
        {"id": "crm", "field": "extra.crm", "contains": "hub", "points": 3},
        {"id": "corp", "field": "email", "email_domain_in": ["corp.example"], "points": 7},
    ]
    profiles = [
        Profile(company_size=1, extra={"seats": 1}),
        Profile(company_size=1, extra={"seats": True}),
        Profile(email="a@corp.example", extra={"seats": 1.0, "crm": ["hubspot"]}),
        Profile(email="b@corp.example", company_size=3, extra={"crm": "HubSpot"}),
        Profile(email="c@other.example", company_size=3, extra={"crm": "HubSpot"}),
    ]
    remembering = card(fit_rules=rules)
    for profile in [*profiles, *reversed(profiles), *profiles]:
        afresh = evaluate_fit(card(fit_rules=rules), profile)
        assert evaluate_fit(remembering, profile) == afresh
    scores = [evaluate_fit(remembering, p).score for p in profiles]
    assert scores == [15, 10, 15, 20, 13]
