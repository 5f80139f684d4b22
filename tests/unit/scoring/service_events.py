"""Input events for the scoring service's tests (unit and integration), as ingest would send them.

A buyer's journey under the default scorecard: Ada (grade A: 500 people, software, VP, US)
browses anonymously, downloads an ebook with her email, then requests a demo.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.contracts.topics import EventType
from leadrelay.identity import lead_key
from leadrelay.settings import DEV_SECRET

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
"""The clock's start in every scoring service test (a Monday morning)."""
HALF_LIFE = timedelta(days=14)
"""The default scorecard's engagement half-life: activity this old counts exactly half."""
TWO_WEEKS_AGO = T0 - HALF_LIFE
DEMO_AT = T0 + timedelta(minutes=10)

ADA = "ada@acme.example"
ADA_KEY = lead_key(ADA, DEV_SECRET)
"""Ada's lead key under the settings' default secret (what ingest computes in tests)."""
ADA_COOKIE = "cookie-ada"
ADA_PROFILE: dict[str, Any] = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Acme",
    "job_title": "VP Marketing",
    "company_size": 500,
    "industry": "software",
    "country": "US",
    "phone": "+15550100",
}
"""Fit 70 (size_target 25, industry_target 15, title_senior 20, country_served 10): grade A."""

ADA_FIT = {"size_target": 25.0, "industry_target": 15.0, "title_senior": 20.0,
           "country_served": 10.0}  # fmt: skip


class MovableClock:
    """The store's clock in tests: fixed, moved explicitly."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def web(
    event_id: str,
    when: datetime,
    action: str = "page_view",
    *,
    anonymous_id: str | None = None,
    key: str | None = None,
    email: str | None = None,
    url: str | None = "https://www.acme-saas.example/",
) -> CloudEvent:
    """A web activity keyed like ingest keys it: the lead key if known, else the anonymous id."""
    data = {"lead_key": key, "anonymous_id": anonymous_id, "email": email, "action": action,
            "url": url, "occurred_at": when, "source": "generic"}  # fmt: skip
    subject = key or anonymous_id or ""
    return _event(EventType.WEB_ACTIVITY, event_id, when, subject, data)


def form(
    event_id: str,
    when: datetime,
    email: str = ADA,
    *,
    anonymous_id: str | None = None,
    form_id: str = "ebook-download",
    profile: dict[str, Any] | None = None,
) -> CloudEvent:
    key = lead_key(email, DEV_SECRET)
    data = {"lead_key": key, "email": email, "anonymous_id": anonymous_id, "form_id": form_id,
            "occurred_at": when, "source": "generic",
            "profile": ADA_PROFILE if profile is None else profile}  # fmt: skip
    return _event(EventType.FORM_SUBMITTED, event_id, when, key, data)


def sales(
    event_id: str, when: datetime, outcome: str, *, key: str = ADA_KEY, reason: str | None = None
) -> CloudEvent:
    data = {"lead_key": key, "rep_id": "rep-7", "outcome": outcome, "reason": reason,
            "occurred_at": when, "assignment_id": "as-1"}  # fmt: skip
    return _event(EventType.SALES_ACTIVITY, event_id, when, key, data)


def recycled(
    event_id: str,
    when: datetime,
    *,
    key: str = ADA_KEY,
    reason: str = "sla_breached",
    source: str = "/leadrelay/sla-monitor",
) -> CloudEvent:
    data = {"lead_key": key, "reason": reason, "recycled_at": when}
    return _event(EventType.LEAD_RECYCLED, event_id, when, key, data, source=source)


def anonymous_session(start: datetime) -> list[CloudEvent]:
    """Two page views and the pricing page, by cookie, all at ``start``."""
    return [
        web("pv-1", start, anonymous_id=ADA_COOKIE),
        web("pv-2", start, anonymous_id=ADA_COOKIE, url="https://www.acme-saas.example/product"),
        web("pricing-1", start, "pricing_page_view", anonymous_id=ADA_COOKIE,
            url="https://www.acme-saas.example/pricing"),
    ]  # fmt: skip


def ada_journey() -> list[CloudEvent]:
    """Browse two weeks ago (anonymously), download an ebook, request a demo ten minutes later.

    Scored at ``DEMO_AT``, the ten minutes of decay vanish in the 2-decimal rounding.
    """
    return [*anonymous_session(TWO_WEEKS_AGO), form("ebook", T0, anonymous_id=ADA_COOKIE),
            web("demo", DEMO_AT, "demo_request", key=ADA_KEY)]  # fmt: skip


def _event(
    event_type: EventType,
    event_id: str,
    when: datetime,
    subject: str,
    data: dict[str, Any],
    *,
    source: str = "tests",
) -> CloudEvent:
    """Through bytes and back, so ``data`` holds JSON values as it does after Kafka."""
    payload = {name: value for name, value in data.items() if value is not None}
    event = new_event(event_type.value, source, payload, id=event_id, subject=subject, time=when)
    return CloudEvent.from_bytes(event.to_bytes())
