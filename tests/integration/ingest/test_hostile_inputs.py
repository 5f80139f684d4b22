"""Inputs that once became a 500, a silent loss or an endless retry (issue 14), on real Kafka.

Each is answered with a 4xx problem naming what is wrong (nothing produced), or accepted with
every event on its topic; a sender is never told to retry something that can never succeed.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
import pytest

from leadrelay.contracts.topics import Topic
from services.ingest.domain.mapping import cloudevents
from services.ingest.domain.signatures import sign_hubspot_v3
from tests.integration.ingest.conftest import (
    API_TOKEN,
    BATCH_JSON,
    CLOUDEVENT_JSON,
    HUBSPOT_SECRET,
    Ingest,
    events_of,
    open_ingest,
    standard_webhook_headers,
)

PROBLEM = "application/problem+json"


def web_activity(event_id: str = "evt-1", **attributes: Any) -> dict[str, Any]:
    data = {
        "anonymous_id": "visitor-1",
        "action": "page_view",
        "occurred_at": "2026-11-24T09:00:00Z",
    }
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/site",
        "type": "leadrelay.web_activity.v1",
        "data": data,
        **attributes,
    }


def pointers(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == PROBLEM, response.text
    return [error["pointer"] for error in response.json().get("errors", [])]


async def test_a_lone_surrogate_is_a_422_naming_the_field(ingest: Ingest) -> None:
    body = json.dumps(web_activity()).replace("visitor-1", "\\ud800x").encode()
    response = await ingest.post_events(body)
    assert response.status_code == 422
    assert pointers(response) == ["/data/anonymous_id"]
    await ingest.assert_nothing_produced(Topic.WEB_ACTIVITY)


async def test_a_lone_surrogate_in_a_hubspot_property_is_a_422_naming_it(ingest: Ingest) -> None:
    record = {
        "vid": 123,
        "portal-id": 62515,
        "properties": {"email": {"value": "ada@example.com"}, "firstname": {"value": "\ud83dA"}},
        "form-submissions": [{"form-id": "demo", "timestamp": int(time.time() * 1000)}],
    }
    response = await ingest.post_hubspot(record)
    assert response.status_code == 422
    assert pointers(response) == ["/properties/firstname/value"]


async def test_a_number_that_overflows_a_double_is_a_422_naming_the_field(ingest: Ingest) -> None:
    event = web_activity()
    event["data"]["properties"] = {"n": 1}
    body = json.dumps(event).replace('"n": 1', '"n": 1e400').encode()
    response = await ingest.post_events(body)
    assert response.status_code == 422
    assert pointers(response) == ["/data/properties/n"]


async def test_an_event_too_large_for_the_broker_is_a_413_not_a_retry_for_days(
    ingest: Ingest,
) -> None:
    event = web_activity(padding="x")
    room = 1_048_400 - len(json.dumps(event))
    body = json.dumps(web_activity(padding="x" * (room + 1))).encode()
    assert len(body) == 1_048_400 < ingest.runtime.settings.max_body_bytes
    response = await ingest.post_events(body)
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM
    await ingest.assert_nothing_produced(Topic.WEB_ACTIVITY)


async def test_two_different_events_under_one_id_refuse_the_batch_naming_both(
    ingest: Ingest,
) -> None:
    first, second = web_activity("same"), web_activity("same")
    second["data"]["action"] = "pricing_view"
    response = await ingest.post_events([first, second], media_type=BATCH_JSON)
    assert response.status_code == 422
    assert pointers(response) == ["/0", "/1"]
    await ingest.assert_nothing_produced(Topic.WEB_ACTIVITY)


async def test_a_batch_above_the_documented_cap_is_a_413(ingest: Ingest) -> None:
    cap = ingest.runtime.settings.max_batch_events
    batch = [web_activity(f"evt-{i}") for i in range(3191)]
    assert len(batch) > cap
    response = await ingest.post_events(batch, media_type=BATCH_JSON)
    assert response.status_code == 413
    assert str(cap) in response.json()["detail"]
    await ingest.assert_nothing_produced(Topic.WEB_ACTIVITY)


async def test_a_batch_at_the_cap_is_accepted_whole(ingest: Ingest) -> None:
    cap = ingest.runtime.settings.max_batch_events
    batch = [web_activity(f"evt-{i}") for i in range(cap)]
    response = await ingest.post_events(batch, media_type=BATCH_JSON)
    assert response.status_code == 202, response.text
    landed = events_of(await ingest.read(Topic.WEB_ACTIVITY, expected=cap))
    assert {e.id for e in landed} == set(response.json()["event_ids"])


async def test_null_attributes_are_absent_attributes(ingest: Ingest) -> None:
    response = await ingest.post_events(web_activity(subject=None, time=None))
    assert response.status_code == 202, response.text
    [event] = events_of(await ingest.read(Topic.WEB_ACTIVITY, expected=1))
    assert event.subject == "visitor-1"


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp"])
async def test_a_signed_header_repeated_with_another_value_is_a_401(
    ingest: Ingest, header: str
) -> None:
    body = json.dumps(web_activity()).encode()
    signed = standard_webhook_headers(body)
    other = {"webhook-id": "msg_other", "webhook-timestamp": str(int(time.time()) - 1)}[header]
    headers = [("content-type", CLOUDEVENT_JSON), *signed.items(), (header, other)]
    response = await ingest.client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    await ingest.assert_nothing_produced(Topic.WEB_ACTIVITY)


async def test_a_webhook_id_with_a_dot_is_a_401(ingest: Ingest) -> None:
    response = await ingest.post_events(web_activity(), webhook_id="msg_1.2")
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/events/"), ("GET", "/metrics/")])
async def test_no_redirects_a_trailing_slash_is_a_404_problem(
    ingest: Ingest, method: str, path: str
) -> None:
    response = await ingest.client.request(method, path)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_an_unhandled_exception_is_a_problem_500_with_a_logged_correlation_id(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def bug(raw: object, context: object) -> None:
        raise RuntimeError("a bug quoting ada@example.com")

    monkeypatch.setattr(cloudevents, "map_event", bug)
    response = await ingest.post_events(web_activity())
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    correlation_id = response.headers["x-correlation-id"]
    assert correlation_id in response.json()["detail"]
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(correlation_id in line and "RuntimeError" in line for line in logged)
    assert not any("ada@example.com" in line for line in logged)
    monkeypatch.undo()
    assert (await ingest.post_events(web_activity("evt-after"))).status_code == 202


async def test_a_marketo_key_that_is_an_email_is_not_echoed(ingest: Ingest) -> None:
    call = {"id": "1", "action": "page_view", "marketo_lead_id": "1", "Ada@Example.com": "x"}
    response = await ingest.post_marketo(call)
    assert response.status_code == 422
    assert pointers(response) == ["/*"]
    assert "example.com" not in response.text.lower()


async def test_an_unknown_lead_asked_for_by_email_is_not_echoed(ingest: Ingest) -> None:
    response = await ingest.client.get(
        "/v1/leads/ada@example.com", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert "ada@example.com" not in response.text


PUBLIC = "https://hooks.example.com"
FORWARDED = {"X-Forwarded-Host": "hooks.example.com", "X-Forwarded-Proto": "https"}


async def hubspot_signed_for_public_url(ingest: Ingest, headers: dict[str, str]) -> int:
    """A HubSpot delivery signed, as HubSpot does, for the public URL it was configured with."""
    body = json.dumps(
        [
            {
                "eventId": 1,
                "portalId": 1,
                "objectId": 1,
                "occurredAt": int(time.time() * 1000),
                "subscriptionType": "contact.creation",
                "subscriptionId": 1,
                "attemptNumber": 0,
            }
        ]
    ).encode()
    stamp = int(time.time() * 1000)
    signature = sign_hubspot_v3(
        HUBSPOT_SECRET.encode(), "POST", f"{PUBLIC}/v1/webhooks/hubspot", body, stamp
    )
    response = await ingest.client.post(
        "/v1/webhooks/hubspot",
        content=body,
        headers={
            "content-type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": str(stamp),
            **headers,
        },
    )
    return response.status_code


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(ingest: Ingest) -> None:
    assert await hubspot_signed_for_public_url(ingest, FORWARDED) == 401


@pytest.mark.parametrize(
    ("overrides", "headers"),
    [
        pytest.param({"trusted_proxies": "127.0.0.1/32"}, FORWARDED, id="trusted-proxy"),
        pytest.param({"public_url": PUBLIC}, {}, id="configured-public-url"),
    ],
)
async def test_hubspot_signs_the_public_url_known_from_a_trusted_proxy_or_the_settings(
    kafka_bootstrap: str,
    sqlite_url: str,
    unique_topic_prefix: str,
    overrides: dict[str, Any],
    headers: dict[str, str],
) -> None:
    ingest, runtime = await open_ingest(
        kafka_bootstrap, sqlite_url, unique_topic_prefix, **overrides
    )
    try:
        assert await hubspot_signed_for_public_url(ingest, headers) == 202
    finally:
        await ingest.client.aclose()
        await runtime.close()
