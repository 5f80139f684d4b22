"""The scorecard a marketer writes: what is accepted, and where a mistake is reported."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.scoring.domain import (
    Scorecard,
    load_default_scorecard,
    load_scorecard,
)

from ..helpers import base_mapping

Mapping = dict[str, Any]


def test_durations_dump_back_to_the_text_form() -> None:
    dumped = load_scorecard(base_mapping()).model_dump(mode="json")
    assert dumped["engagement"]["half_life"] == "7d"


def test_the_test_scorecard_and_the_default_load() -> None:
    card = load_scorecard(base_mapping())
    assert card.version == "test-1"
    assert card.engagement.half_life == timedelta(days=7)
    default = load_default_scorecard()
    assert default.fast_track.rules == ("demo_request", "demo_form", "trial_signup")


def test_optional_sections_have_safe_defaults() -> None:
    mapping = base_mapping()
    del mapping["fast_track"], mapping["recycle"]
    card = load_scorecard(mapping)
    assert card.fast_track.rules == ()
    assert card.recycle.requires_fresh_engagement is True


def test_grades_are_case_insensitive_for_humans() -> None:
    mapping = base_mapping()
    mapping["sales_ready"]["min_grade"] = "b"
    assert load_scorecard(mapping).sales_ready.min_grade == "B"


def _fit_rule(**rule: Any) -> Callable[[Mapping], None]:
    def mutate(mapping: Mapping) -> None:
        mapping["fit"]["rules"] = [{"id": "r", "points": 5, **rule}]

    return mutate


def _engagement_rule(**rule: Any) -> Callable[[Mapping], None]:
    def mutate(mapping: Mapping) -> None:
        mapping["engagement"]["rules"] = [{"id": "r", "action": "page_view", "points": 5, **rule}]
        mapping["fast_track"]["rules"] = []

    return mutate


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[Mapping], None]:
    def mutate(mapping: Mapping) -> None:
        target: Any = mapping
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


BROKEN: list[tuple[str, Callable[[Mapping], None], tuple[str | int, ...], str]] = [
    (
        "fast track names a missing rule",
        _set(("fast_track", "rules"), ["demo"]),
        ("fast_track", "rules", 0),
        "unknown engagement rule 'demo'",
    ),
    (
        "rule id used twice",
        _set(("engagement", "rules", 1, "id"), "size"),
        ("engagement", "rules", 1, "id"),
        "duplicate rule id 'size' (also fit.rules[0])",
    ),
    (
        "regex does not compile",
        _fit_rule(field="job_title", regex="(vp"),
        ("fit", "rules", 0, "regex"),
        "invalid regular expression '(vp'",
    ),
    (
        "unknown named domain list",
        _fit_rule(field="email", email_domain_in="freemail"),
        ("fit", "rules", 0, "email_domain_in"),
        "unknown domain list 'freemail'",
    ),
    (
        "a list name written inside a list",
        _fit_rule(field="email", email_domain_in=["competitors"]),
        ("fit", "rules", 0, "email_domain_in", 0),
        "'competitors' is a domain list; write email_domain_in: competitors",
    ),
    (
        "not a domain",
        _fit_rule(field="email", email_domain_in=["gmail.com", "free mail"]),
        ("fit", "rules", 0, "email_domain_in", 1),
        "'free mail' is not an email domain",
    ),
    (
        "two operators",
        _fit_rule(field="industry", equals="software", contains="soft"),
        ("fit", "rules", 0),
        "exactly one operator",
    ),
    (
        "no operator",
        _fit_rule(field="industry"),
        ("fit", "rules", 0),
        "found none",
    ),
    (
        "unknown profile field",
        _fit_rule(field="titel", contains="vp"),
        ("fit", "rules", 0, "field"),
        "unknown field 'titel'",
    ),
    (
        "email_domain_in on another field",
        _fit_rule(field="company", email_domain_in=["acme.com"]),
        ("fit", "rules", 0, "field"),
        "email_domain_in needs field: email",
    ),
    (
        "bare NO read by YAML as false",
        _fit_rule(field="country", **{"in": ["SE", False]}),
        ("fit", "rules", 0, "in", 1),
        "put quotes around it",
    ),
    (
        "empty range",
        _fit_rule(field="company_size", range={}),
        ("fit", "rules", 0, "range"),
        "give min, max or both",
    ),
    (
        "range upside down",
        _fit_rule(field="company_size", range={"min": 500, "max": 100}),
        ("fit", "rules", 0, "range", "max"),
        "max (100) must be above min (500)",
    ),
    (
        "misspelt key",
        _engagement_rule(pionts=5),
        ("engagement", "rules", 0, "pionts"),
        "Extra inputs are not permitted",
    ),
    (
        "window without max_per_window",
        _engagement_rule(window="1d"),
        ("engagement", "rules", 0, "max_per_window"),
        "window and max_per_window go together",
    ),
    (
        "bad window",
        _engagement_rule(window="1 day", max_per_window=2),
        ("engagement", "rules", 0, "window"),
        "invalid duration '1 day'",
    ),
    (
        "negative cap on a positive rule",
        _engagement_rule(cap=-5),
        ("engagement", "rules", 0, "cap"),
        "cap must be >= 0",
    ),
    (
        "positive cap on a negative rule",
        _engagement_rule(points=-5, cap=10),
        ("engagement", "rules", 0, "cap"),
        "cap must be <= 0",
    ),
    (
        "half-life without unit",
        _set(("engagement", "half_life"), 14),
        ("engagement", "half_life"),
        "invalid duration 14",
    ),
    (
        "retention shorter than the half-life",
        _set(("engagement", "retention"), "3d"),
        ("engagement", "retention"),
        "retention (3d) must be at least the half-life and every rule's window (7d)",
    ),
    (
        "retention shorter than a rule's window",
        _engagement_rule(window="400d", max_per_window=1),
        ("engagement", "retention"),
        "every rule's window (400d)",
    ),
    (
        "grades not descending",
        _set(("grades",), {"A": 60, "B": 60, "C": 20}),
        ("grades", "B"),
        "B (60) must be below A (60)",
    ),
    (
        "a grade E",
        _set(("grades",), {"A": 60, "B": 40, "C": 20, "E": 0}),
        ("grades", "E"),
        "Extra inputs are not permitted",
    ),
    (
        "unknown min grade",
        _set(("sales_ready", "min_grade"), "E"),
        ("sales_ready", "min_grade"),
        "'A', 'B', 'C' or 'D'",
    ),
    (
        "negative engagement threshold",
        _set(("sales_ready", "min_engagement"), -1),
        ("sales_ready", "min_engagement"),
        "greater than or equal to 0",
    ),
    (
        "version that YAML read as a number",
        _set(("version",), 2024.06),
        ("version",),
        "write the version as quoted text",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "loc", "message"),
    [pytest.param(m, loc, msg, id=name) for name, m, loc, msg in BROKEN],
)
def test_broken_scorecards_are_refused_at_the_offending_key(
    mutate: Callable[[Mapping], None], loc: tuple[str | int, ...], message: str
) -> None:
    mapping = base_mapping()
    mutate(mapping)
    with pytest.raises(ValidationError) as caught:
        load_scorecard(mapping)
    located = {error["loc"]: error["msg"] for error in caught.value.errors()}
    assert loc in located, located
    assert message in located[loc]


def test_locations_are_prefixed_when_the_scorecard_is_nested_in_a_bigger_file() -> None:
    """``check-config`` composes the definitions file; our locations must survive nesting."""
    from pydantic import BaseModel

    class Definitions(BaseModel):
        scorecard: Scorecard

    mapping = base_mapping()
    mapping["fast_track"]["rules"] = ["demo_request", "demo"]
    with pytest.raises(ValidationError) as caught:
        Definitions.model_validate({"scorecard": mapping})
    [error] = caught.value.errors()
    assert error["loc"] == ("scorecard", "fast_track", "rules", 1)
    assert error["msg"] == "unknown engagement rule 'demo'"


def test_models_are_frozen() -> None:
    card = load_scorecard(base_mapping())
    with pytest.raises(ValidationError):
        card.version = "other"  # type: ignore[misc]


def test_domains_are_normalised() -> None:
    mapping = base_mapping()
    mapping["fit"]["domain_lists"]["free_mail"] = ["@GMail.com ", "edu"]
    card = load_scorecard(mapping)
    assert card.fit.domain_lists["free_mail"] == ("gmail.com", "edu")
