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
from services.ingest.mapping import cloudevents
from tests.integration.ingest.conftest import (
    BATCH_JSON,
    CLOUDEVENT_JSON,
    Ingest,
    events_of,
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
    body = json.dumps(web_activity()).replace("v-1", "\\ud800x").encode()
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
    assert event.subject == "v-1"


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
