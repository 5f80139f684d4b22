"""Shared builders: fixed instants and a small scorecard whose arithmetic is easy to follow."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from services.scoring.domain import (
    Activity,
    LeadState,
    Profile,
    Scorecard,
    Stage,
    load_scorecard,
)

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
"""A Monday morning; every test instant is an offset from it."""

_BASE: dict[str, Any] = {
    "version": "test-1",
    "fit": {
        "domain_lists": {"free_mail": ["gmail.com"], "competitors": ["rival.example"]},
        "rules": [
            {"id": "size", "field": "company_size", "range": {"min": 100}, "points": 30},
            {"id": "software", "field": "industry", "equals": "software", "points": 20},
            {"id": "vp", "field": "job_title", "regex": r"\bvp\b", "points": 20},
            {"id": "free_mail", "field": "email", "email_domain_in": "free_mail", "points": -15},
        ],
    },
    "engagement": {
        "half_life": "7d",
        "rules": [
            {"id": "page_view", "action": "page_view", "points": 10},
            {"id": "pricing", "action": "pricing_page_view", "points": 20},
            {"id": "demo_request", "action": "demo_request", "points": 5},
            {"id": "unsubscribe", "action": "unsubscribe", "points": -30},
        ],
    },
    "grades": {"A": 60, "B": 40, "C": 20},
    "sales_ready": {"min_grade": "B", "min_engagement": 50},
    "fast_track": {"rules": ["demo_request"], "min_grade": "C"},
    "recycle": {"requires_fresh_engagement": True},
}


def at(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


def base_mapping() -> dict[str, Any]:
    """A fresh deep copy of the test scorecard, for tests that break or extend it."""
    return copy.deepcopy(_BASE)


def card(
    *,
    fit_rules: list[dict[str, Any]] | None = None,
    engagement_rules: list[dict[str, Any]] | None = None,
    **sections: Any,
) -> Scorecard:
    mapping = base_mapping()
    if fit_rules is not None:
        mapping["fit"]["rules"] = fit_rules
    if engagement_rules is not None:
        mapping["engagement"]["rules"] = engagement_rules
    mapping.update(sections)
    return load_scorecard(mapping)


def act(event_id: str, action: str, when: datetime, **fields: str) -> Activity:
    return Activity(event_id=event_id, action=action, occurred_at=when, **fields)


GRADE_B = Profile(email="ann@acme.example", company_size=150, industry="Software")
"""Fit 50: grade B under the test scorecard."""
GRADE_C = Profile(email="bob@acme.example", job_title="VP Sales")
"""Fit 20: grade C."""
GRADE_D = Profile(email="cy@gmail.com", job_title="Student")
"""Fit -15: grade D."""


def known_lead(profile: Profile = GRADE_B, key: str = "lk_1") -> LeadState:
    """A lead already identified by email, no activity yet."""
    return LeadState(lead_key=key, stage=Stage.LEAD, profile=profile)
