"""Each route's happy path ends with schema-valid events on the right topic, keyed right."""

from __future__ import annotations

import time
from typing import Any

from leadrelay.contracts.envelope import stable_event_id
from leadrelay.contracts.schemas import validate_event
from leadrelay.contracts.topics import Topic
from leadrelay.identity import lead_key
from tests.integration.ingest.conftest import (
    BATCH_JSON,
    LEAD_KEY_SECRET,
    ROTATED_OUT_SECRET,
    Ingest,
    events_of,
)

ADA = lead_key("ada@example.com", LEAD_KEY_SECRET)


def cloudevent(event_id: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "https://site.example/tracker",
        "type": event_type,
        "data": data,
    }


def web_activity(event_id: str = "evt-1", **data: Any) -> dict[str, Any]:
    return cloudevent(
        event_id,
        "leadrelay.web_activity.v1",
        {"action": "pricing_page_view", "occurred_at": "2026-11-24T09:00:00Z", **data},
    )


async def test_a_signed_cloudevent_lands_on_its_topic_keyed_by_the_lead(ingest: Ingest) -> None:
    response = await ingest.post_events(web_activity(email="Ada@Example.COM"))
    assert response.status_code == 202, response.text
    expected_id = stable_event_id("generic", "https://site.example/tracker", "evt-1")
    assert response.json() == {"accepted": 1, "event_ids": [expected_id], "duplicate": False}
    [(key, value, _)] = await ingest.read(Topic.WEB_ACTIVITY, expected=1)
    [event] = events_of([(key, value, {})])
    validate_event(event)
    assert key == ADA.encode()
    assert event.id == expected_id
    assert event.data["email"] == "ada@example.com"


async def test_a_batch_goes_to_each_types_topic(ingest: Ingest) -> None:
    batch = [
        web_activity("evt-1", anonymous_id="visitor-7"),
        cloudevent(
            "evt-2",
            "leadrelay.form_submitted.v1",
            {
                "email": "ada@example.com",
                "anonymous_id": "visitor-7",
                "form_id": "demo-request",
                "occurred_at": "2026-11-24T09:01:00Z",
                "profile": {"company": "Engines Ltd"},
            },
        ),
        cloudevent(
            "evt-3",
            "leadrelay.sales_activity.v1",
            {
                "email": "ada@example.com",
                "rep_id": "rep-1",
                "outcome": "contacted",
                "occurred_at": "2026-11-24T10:00:00Z",
            },
        ),
    ]
    response = await ingest.post_events(batch, media_type=BATCH_JSON)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3
    [web] = await ingest.read(Topic.WEB_ACTIVITY, expected=1)
    [form] = await ingest.read(Topic.FORM_SUBMISSIONS, expected=1)
    [sales] = await ingest.read(Topic.SALES_ACTIVITY, expected=1)
    assert [web[0], form[0], sales[0]] == [b"visitor-7", ADA.encode(), ADA.encode()]
    for event in events_of([web, form, sales]):
        validate_event(event)


async def test_a_request_signed_with_a_secret_being_rotated_out_is_accepted(
    ingest: Ingest,
) -> None:
    response = await ingest.post_events(web_activity(anonymous_id="v"), secret=ROTATED_OUT_SECRET)
    assert response.status_code == 202, response.text


async def test_hubspot_webhook_events_and_workflow_form_submissions(ingest: Ingest) -> None:
    occurred = int(time.time() * 1000)
    events = [
        {
            "eventId": 1,
            "subscriptionId": 9,
            "portalId": 62515,
            "occurredAt": occurred,
            "subscriptionType": "contact.creation",
            "attemptNumber": 0,
            "objectId": 123,
        },
        {
            "eventId": 2,
            "subscriptionId": 9,
            "portalId": 62515,
            "occurredAt": occurred,
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0,
            "objectId": 123,
            "propertyName": "email",
            "propertyValue": "ada@example.com",
        },
        {
            "eventId": 3,
            "subscriptionId": 9,
            "portalId": 62515,
            "occurredAt": occurred,
            "subscriptionType": "deal.creation",
            "attemptNumber": 0,
            "objectId": 999,
        },
    ]
    response = await ingest.post_hubspot(events)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 2
    record = {
        "vid": 123,
        "portal-id": 62515,
        "properties": {"email": {"value": "ada@example.com"}, "firstname": {"value": "Ada"}},
        "form-submissions": [
            {"form-id": "demo-request", "timestamp": occurred, "conversion-id": "conv-1"}
        ],
    }
    assert (await ingest.post_hubspot(record)).status_code == 202
    activity = await ingest.read(Topic.WEB_ACTIVITY, expected=2)
    assert sorted(key or b"" for key, _, _ in activity) == sorted(
        [b"hubspot-contact:62515:123", ADA.encode()]
    )
    [form] = await ingest.read(Topic.FORM_SUBMISSIONS, expected=1)
    [event] = events_of([form])
    validate_event(event)
    assert form[0] == ADA.encode()
    assert event.data["profile"] == {"first_name": "Ada"}


async def test_marketo_template_call_becomes_a_form_submission(ingest: Ingest) -> None:
    response = await ingest.post_marketo(
        {
            "id": "1001-2026-11-24 09:00:00",
            "action": "form_submitted",
            "email": "ada@example.com",
            "marketo_lead_id": "1001",
            "form_id": "demo-request",
            "first_name": "Ada",
            "company_size": "250",
            "country": "",
            "phone": "",
        }
    )
    assert response.status_code == 202, response.text
    [message] = await ingest.read(Topic.FORM_SUBMISSIONS, expected=1)
    [event] = events_of([message])
    validate_event(event)
    assert message[0] == ADA.encode()
    assert event.data["profile"] == {"first_name": "Ada", "company_size": 250}


async def test_crm_sales_activity_with_the_bearer_token(ingest: Ingest) -> None:
    response = await ingest.post_sales_activity(
        {
            "id": "task-9",
            "lead_key": ADA,
            "rep_id": "rep-1",
            "outcome": "accepted",
            "occurred_at": "2026-11-24T10:00:00Z",
            "crm": "salesforce",
        }
    )
    assert response.status_code == 202, response.text
    [message] = await ingest.read(Topic.SALES_ACTIVITY, expected=1)
    [event] = events_of([message])
    validate_event(event)
    assert message[0] == ADA.encode()
    assert event.id == stable_event_id("sales-activity", "salesforce", "task-9")


async def test_metrics_count_requests_and_accepted_events(ingest: Ingest) -> None:
    await ingest.post_events(web_activity(anonymous_id="v"))
    await ingest.post_events(web_activity(anonymous_id="v"), secret="wrong")
    text = await ingest.metrics()
    assert 'leadrelay_ingest_requests_total{route="/v1/events",status="202"} 1.0' in text
    assert 'leadrelay_ingest_requests_total{route="/v1/events",status="401"} 1.0' in text
    assert 'leadrelay_ingest_events_accepted_total{type="leadrelay.web_activity.v1"} 1.0' in text
    assert (
        'leadrelay_ingest_signature_failures_total{reason="bad_signature",'
        'route="/v1/events"} 1.0' in text
    )
    assert 'leadrelay_ingest_request_seconds_count{route="/v1/events"} 2.0' in text


async def test_the_public_port_serves_no_metrics(ingest: Ingest) -> None:
    await ingest.post_events(web_activity(anonymous_id="v"))
    response = await ingest.client.get("/metrics")
    assert response.status_code == 404
    assert "leadrelay_" not in response.text
    assert "leadrelay_ingest_requests_total" in await ingest.metrics()
