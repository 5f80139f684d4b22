"""Email addresses never appear in a log record, whether the request is accepted or refused.

Every route of the public port is driven with an email, as sent and as ingest normalises it,
while everything (the app, aiokafka, SQLAlchemy, aiosqlite's SQL with its parameters, httpx)
logs at DEBUG.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from leadrelay.identity import normalise_email
from tests.integration.ingest.conftest import API_TOKEN, BATCH_JSON, Ingest

EMAIL = "Grace.Hopper+Leads@Navy.Example"
NORMALISED = normalise_email(EMAIL)
Call = Callable[[Ingest], Awaitable[httpx.Response]]


def cloudevent(event_id: str, event_type: str, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "https://site.example/forms",
        "type": event_type,
        "data": {"occurred_at": "2026-11-24T09:00:00Z", **data},
    }


def form(event_id: str = "form-1", **data: Any) -> dict[str, Any]:
    fields = {"email": EMAIL, "form_id": "demo-request", "profile": {"first_name": "Grace"}, **data}
    return cloudevent(event_id, "leadrelay.form_submitted.v1", **fields)


def hubspot_email_change(**fields: Any) -> list[dict[str, Any]]:
    return [
        {
            "eventId": 2,
            "subscriptionId": 9,
            "portalId": 62515,
            "occurredAt": int(time.time() * 1000),
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0,
            "objectId": 123,
            "propertyName": "email",
            "propertyValue": EMAIL,
            **fields,
        }
    ]


def hubspot_workflow_record() -> dict[str, Any]:
    return {
        "vid": 123,
        "portal-id": 62515,
        "properties": {"email": {"value": EMAIL}, "firstname": {"value": "Grace"}},
        "form-submissions": [{"form-id": "demo-request", "timestamp": int(time.time() * 1000)}],
    }


def marketo_call(**fields: Any) -> dict[str, Any]:
    return {
        "id": "1001-2026-11-24 09:00:00",
        "action": "form_submitted",
        "email": EMAIL,
        "marketo_lead_id": "1001",
        "form_id": "demo-request",
        **fields,
    }


def sales_activity(**fields: Any) -> dict[str, Any]:
    return {
        "id": "task-1",
        "email": EMAIL,
        "rep_id": "rep-1",
        "outcome": "accepted",
        "occurred_at": "2026-11-24T10:00:00Z",
        **fields,
    }


def rep(email: str = EMAIL) -> dict[str, Any]:
    always = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    return {"name": "Grace", "role": "sdr", "team": "core", "email": email, "working_hours": always}


def bearer(method: str, path: str, body: Any = None) -> Call:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    return lambda i: i.client.request(method, path, json=body, headers=headers)


SCENARIOS: dict[str, list[tuple[Call, int]]] = {
    "events": [
        (lambda i: i.post_events(form()), 202),
        (lambda i: i.post_events([form("form-2")], media_type=BATCH_JSON), 202),
        (lambda i: i.post_events(form("form-3", occurred_at=EMAIL)), 422),
        (lambda i: i.post_events(form("form-4"), secret="whsec_d3Jvbmcgc2VjcmV0"), 401),
    ],
    "hubspot": [
        (lambda i: i.post_hubspot(hubspot_email_change()), 202),
        (lambda i: i.post_hubspot(hubspot_workflow_record()), 202),
        (lambda i: i.post_hubspot(hubspot_email_change(occurredAt=EMAIL)), 422),
        (lambda i: i.post_hubspot(hubspot_email_change(), secret="not-the-secret"), 401),
    ],
    "marketo": [
        (lambda i: i.post_marketo(marketo_call()), 202),
        (lambda i: i.post_marketo(marketo_call(email=None, emial=EMAIL)), 422),
        (lambda i: i.post_marketo(marketo_call(), token="guess"), 401),
    ],
    "sales-activity": [
        (lambda i: i.post_sales_activity(sales_activity()), 202),
        (lambda i: i.post_sales_activity(sales_activity(occurred_at=EMAIL)), 422),
        (lambda i: i.post_sales_activity(sales_activity(), token="guess"), 401),
    ],
    "lead view": [
        (bearer("GET", f"/v1/leads/{EMAIL}"), 404),
        (bearer("GET", f"/v1/leads/{NORMALISED}"), 404),
        (bearer("GET", "/v1/leads/lk_unknown"), 404),
    ],
    "roster": [
        (bearer("PUT", "/v1/reps/sdr-grace", rep()), 201),
        (bearer("PUT", "/v1/reps/sdr-grace", rep(EMAIL.upper())), 200),
        (bearer("PUT", "/v1/reps/sdr-grace", {**rep(), "role": EMAIL}), 422),
        (bearer("GET", "/v1/reps"), 200),
        (bearer("PUT", "/v1/accounts/navy", {"name": EMAIL, "domains": ["navy.example"]}), 201),
        (bearer("GET", "/v1/accounts"), 200),
    ],
    "operations": [
        (lambda i: i.client.get("/healthz"), 200),
        (lambda i: i.client.get("/readyz"), 200),
        (lambda i: i.client.get(f"/{EMAIL}"), 404),
    ],
}


def mentions_email(record: logging.LogRecord) -> bool:
    """The formatted record (traceback included) and every attribute, extras too."""
    text = logging.Formatter().format(record) + repr(vars(record))
    return NORMALISED in text.lower()


@pytest.mark.parametrize("route", SCENARIOS)
async def test_no_email_address_is_ever_logged(
    ingest: Ingest, caplog: pytest.LogCaptureFixture, route: str
) -> None:
    caplog.set_level(logging.DEBUG)
    for call, status in SCENARIOS[route]:
        response = await call(ingest)
        assert response.status_code == status, response.text
    assert caplog.records, "nothing was captured at DEBUG: this test would prove nothing"
    leaked = [f"{r.name} {r.levelname}: {r.msg}" for r in caplog.records if mentions_email(r)]
    assert leaked == []
