"""Inauthentic or bad requests are refused with the right status and nothing is produced."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from leadrelay.contracts.topics import Topic
from tests.integration.ingest.conftest import (
    BATCH_JSON,
    CLOUDEVENT_JSON,
    Ingest,
    standard_webhook_headers,
)

PROBLEM = "application/problem+json"


def web_activity(event_id: str = "evt-1", **data: Any) -> dict[str, Any]:
    payload = {
        "anonymous_id": "visitor-1",
        "action": "page_view",
        "occurred_at": "2026-11-24T09:00:00Z",
        **data,
    }
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/site",
        "type": "leadrelay.web_activity.v1",
        "data": payload,
    }


BODY = json.dumps(web_activity()).encode()


async def tampered_body(ingest: Ingest) -> httpx.Response:
    headers = standard_webhook_headers(BODY)
    tampered = BODY.replace(b"page_view", b"demo_request")
    return await ingest.client.post(
        "/v1/events", content=tampered, headers={"content-type": CLOUDEVENT_JSON, **headers}
    )


async def wrong_secret(ingest: Ingest) -> httpx.Response:
    return await ingest.post_events(BODY, secret="whsec_d3Jvbmcgc2VjcmV0IGtleSBoZXJlIQ==")


async def stale_timestamp(ingest: Ingest) -> httpx.Response:
    return await ingest.post_events(BODY, timestamp=int(time.time()) - 301)


async def missing_headers(ingest: Ingest) -> httpx.Response:
    return await ingest.client.post(
        "/v1/events", content=BODY, headers={"content-type": CLOUDEVENT_JSON}
    )


def hubspot_delivery() -> list[dict[str, Any]]:
    """A delivery that, were it accepted, would put one event on the web-activity topic."""
    return [
        {
            "eventId": 1,
            "subscriptionId": 9,
            "portalId": 62515,
            "occurredAt": int(time.time() * 1000),
            "subscriptionType": "contact.creation",
            "attemptNumber": 0,
            "objectId": 123,
        }
    ]


async def hubspot_wrong_secret(ingest: Ingest) -> httpx.Response:
    return await ingest.post_hubspot(hubspot_delivery(), secret="not-the-client-secret")


async def hubspot_stale(ingest: Ingest) -> httpx.Response:
    return await ingest.post_hubspot(
        hubspot_delivery(), timestamp_ms=int(time.time() * 1000) - 301_000
    )


async def hubspot_missing_headers(ingest: Ingest) -> httpx.Response:
    return await ingest.client.post("/v1/webhooks/hubspot", json=hubspot_delivery())


async def marketo_wrong_token(ingest: Ingest) -> httpx.Response:
    return await ingest.post_marketo(
        {"id": "1", "action": "page_view", "marketo_lead_id": "1"}, token="guess"
    )


async def marketo_missing_token(ingest: Ingest) -> httpx.Response:
    return await ingest.client.post(
        "/v1/webhooks/marketo", json={"id": "1", "action": "page_view", "marketo_lead_id": "1"}
    )


async def sales_wrong_token(ingest: Ingest) -> httpx.Response:
    return await ingest.post_sales_activity(
        {
            "lead_key": "lk_1",
            "rep_id": "r",
            "outcome": "won",
            "occurred_at": "2026-11-24T09:00:00Z",
        },
        token="guess",
    )


Attempt = Callable[[Ingest], Awaitable[httpx.Response]]


@pytest.mark.parametrize(
    ("attempt", "topic"),
    [
        pytest.param(tampered_body, Topic.WEB_ACTIVITY, id="tampered-body"),
        pytest.param(wrong_secret, Topic.WEB_ACTIVITY, id="wrong-secret"),
        pytest.param(stale_timestamp, Topic.WEB_ACTIVITY, id="stale-timestamp"),
        pytest.param(missing_headers, Topic.WEB_ACTIVITY, id="missing-headers"),
        pytest.param(hubspot_wrong_secret, Topic.WEB_ACTIVITY, id="hubspot-wrong-secret"),
        pytest.param(hubspot_stale, Topic.WEB_ACTIVITY, id="hubspot-stale-timestamp"),
        pytest.param(hubspot_missing_headers, Topic.WEB_ACTIVITY, id="hubspot-missing-headers"),
        pytest.param(marketo_wrong_token, Topic.WEB_ACTIVITY, id="marketo-wrong-token"),
        pytest.param(marketo_missing_token, Topic.WEB_ACTIVITY, id="marketo-missing-token"),
        pytest.param(sales_wrong_token, Topic.SALES_ACTIVITY, id="sales-wrong-bearer"),
    ],
)
async def test_inauthentic_requests_get_401_and_produce_nothing(
    ingest: Ingest, attempt: Attempt, topic: Topic
) -> None:
    response = await attempt(ingest)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 401
    await ingest.assert_nothing_produced(topic)


async def test_the_hubspot_delivery_refused_above_is_accepted_when_signed(ingest: Ingest) -> None:
    """The refusals above prove something only if the same delivery, signed, is produced."""
    response = await ingest.post_hubspot(hubspot_delivery())
    assert response.status_code == 202, response.text
    assert len(await ingest.read(Topic.WEB_ACTIVITY, expected=1)) == 1


async def oversized_chunks() -> AsyncIterator[bytes]:
    """A body sent chunked, without Content-Length: only counting the stream catches it."""
    for _ in range(40):
        yield b" " * 32_768
    yield BODY


async def test_malformed_json_is_400(ingest: Ingest) -> None:
    response = await ingest.post_events(b'{"specversion": "1.0", ')
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert "not valid JSON" in response.json()["detail"]
    await ingest.assert_nothing_produced(Topic.WEB_ACTIVITY)


async def test_schema_violations_are_422_naming_each_field_of_each_item(ingest: Ingest) -> None:
    batch = [
        web_activity("ok-1"),
        web_activity("bad-1", email="ADA at example"),
        web_activity("bad-2", action="Page View", occurred_at="yesterday"),
    ]
    response = await ingest.post_events(batch, media_type=BATCH_JSON)
    assert response.status_code == 422
    problem = response.json()
    assert sorted(e["pointer"] for e in problem["errors"]) == [
        "/1/data/email",
        "/2/data/action",
        "/2/data/occurred_at",
    ]
    assert "ADA at example" not in response.text
    await ingest.assert_nothing_produced(Topic.WEB_ACTIVITY)


async def test_unknown_event_types_are_422_on_type(ingest: Ingest) -> None:
    for event_type in ("com.example.signup", "leadrelay.lead_assigned.v1"):
        response = await ingest.post_events({**web_activity(), "type": event_type})
        assert response.status_code == 422
        assert [e["pointer"] for e in response.json()["errors"]] == ["/type"]
    await ingest.assert_nothing_produced(Topic.WEB_ACTIVITY)


async def test_oversized_bodies_are_413_whether_declared_or_streamed(ingest: Ingest) -> None:
    big = json.dumps(web_activity(properties={"padding": "x" * 1_100_000})).encode()
    declared = await ingest.post_events(big)
    assert declared.status_code == 413
    assert declared.headers["content-type"] == PROBLEM
    streamed = await ingest.client.post(
        "/v1/events", content=oversized_chunks(), headers={"content-type": CLOUDEVENT_JSON}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    await ingest.assert_nothing_produced(Topic.WEB_ACTIVITY)


@pytest.mark.parametrize("media_type", ["application/json", "text/plain", ""])
async def test_wrong_content_types_are_415_naming_the_accepted_ones(
    ingest: Ingest, media_type: str
) -> None:
    response = await ingest.post_events(web_activity(), media_type=media_type)
    assert response.status_code == 415
    assert "application/cloudevents+json" in response.json()["detail"]
    marketo = await ingest.client.post(
        "/v1/webhooks/marketo",
        content=b"id=1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert marketo.status_code == 415
    await ingest.assert_nothing_produced(Topic.WEB_ACTIVITY)


async def test_marketo_template_mistakes_are_422_naming_the_key(ingest: Ingest) -> None:
    response = await ingest.post_marketo(
        {"id": "1", "action": "form_submitted", "emial": "ada@example.com", "form_id": "f"}
    )
    assert response.status_code == 422
    assert sorted(e["pointer"] for e in response.json()["errors"]) == ["/emial"]
    await ingest.assert_nothing_produced(Topic.FORM_SUBMISSIONS)


async def test_bearer_failures_are_problem_documents_with_a_challenge(ingest: Ingest) -> None:
    response = await ingest.client.post("/v1/sales-activity", json={})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
