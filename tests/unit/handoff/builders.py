"""Small builders so each test states only the facts it is about."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.handoff.domain import LeadFacts, Rep, RoutingConfig

AROUND_THE_CLOCK = {
    day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}
NOW = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)
"""A Wednesday, midday UTC."""

REGIONS = {"emea": ["DE", "FR", "GB"], "amer": ["US", "CA"], "apac": ["JP", "AU"]}


def make_rep(rep_id: str, **fields: Any) -> Rep:
    """An SDR of team ``core`` in UTC who works around the clock, unless told otherwise."""
    data: dict[str, Any] = {
        "id": rep_id,
        "name": rep_id.title(),
        "role": "sdr",
        "team": "core",
        "time_zone": "UTC",
        "working_hours": AROUND_THE_CLOCK,
    }
    return Rep.model_validate(data | fields)


def make_routing(**fields: Any) -> RoutingConfig:
    return RoutingConfig.model_validate({"regions": REGIONS} | fields)


def make_facts(**fields: Any) -> LeadFacts:
    return LeadFacts.model_validate({"lead_key": "lk_test", "episode": 1} | fields)


def utc(text: str) -> datetime:
    """An instant written with its offset, e.g. ``2025-03-30T09:00+02:00``."""
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, "write the offset so the test says which instant it means"
    return moment.astimezone(UTC)
