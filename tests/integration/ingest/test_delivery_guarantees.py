"""Replays, sender retries and broker outages: nothing accepted is lost or applied twice."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from leadrelay.contracts.topics import Topic
from tests.harness.common import free_port
from tests.harness.kafka_broker import KafkaBroker
from tests.integration.ingest.conftest import (
    BATCH_JSON,
    CLOUDEVENT_JSON,
    Ingest,
    open_ingest,
    standard_webhook_headers,
)


def web_activity(event_id: str, visitor: str = "visitor-1") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/site",
        "type": "leadrelay.web_activity.v1",
        "data": {
            "anonymous_id": visitor,
            "action": "page_view",
            "occurred_at": "2026-11-24T09:00:00Z",
        },
    }


def ids(messages: list[tuple[bytes | None, bytes, dict[str, bytes]]]) -> list[str]:
    return [json.loads(value)["id"] for _, value, _ in messages]


async def test_a_replayed_signature_is_401_and_a_senders_retry_is_an_idempotent_202(
    ingest_db: Ingest,
) -> None:
    body = json.dumps(web_activity("evt-1")).encode()
    headers = {
        "content-type": CLOUDEVENT_JSON,
        **standard_webhook_headers(body, webhook_id="msg_replay_1"),
    }
    first = await ingest_db.client.post("/v1/events", content=body, headers=headers)
    assert first.status_code == 202, first.text
    replay = await ingest_db.client.post("/v1/events", content=body, headers=headers)
    assert replay.status_code == 401
    assert "already accepted" in replay.json()["detail"]
    retry = await ingest_db.post_events(
        body, webhook_id="msg_replay_1", timestamp=int(time.time()) + 1
    )
    assert retry.status_code == 202
    assert retry.json()["duplicate"] is True
    assert retry.json()["event_ids"] == first.json()["event_ids"]
    messages = await ingest_db.read(Topic.WEB_ACTIVITY, expected=1)
    assert ids(messages) == first.json()["event_ids"]


async def test_a_reused_webhook_id_with_different_content_is_a_409_not_a_silent_drop(
    ingest_db: Ingest,
) -> None:
    first = await ingest_db.post_events(web_activity("evt-1"), webhook_id="msg_reused")
    assert first.status_code == 202, first.text
    other = await ingest_db.post_events(
        web_activity("evt-2", visitor="visitor-2"),
        webhook_id="msg_reused",
        timestamp=int(time.time()) + 1,
    )
    assert other.status_code == 409, other.text
    assert other.headers["content-type"] == "application/problem+json"
    problem = other.json()
    assert problem["status"] == 409
    assert "webhook-id" in problem["detail"]
    assert "different content" in problem["detail"]
    messages = await ingest_db.read(Topic.WEB_ACTIVITY, expected=1)
    assert ids(messages) == first.json()["event_ids"]


async def test_a_hubspot_replay_is_401(ingest_db: Ingest) -> None:
    body = json.dumps([]).encode()
    first = await ingest_db.post_hubspot([], timestamp_ms=int(time.time() * 1000))
    assert first.status_code == 202
    again = await ingest_db.client.post(
        "/v1/webhooks/hubspot", content=body, headers=dict(first.request.headers)
    )
    assert again.status_code == 401


@pytest.mark.slow  # restarts the broker: a JVM start, tens of CPU-seconds
async def test_broker_outage_is_503_then_the_retry_is_accepted_and_nothing_lost(
    kafka_broker: KafkaBroker, sqlite_url: str, unique_topic_prefix: str
) -> None:
    ingest, runtime = await open_ingest(
        kafka_broker.bootstrap, sqlite_url, unique_topic_prefix, produce_timeout_seconds=2.0
    )
    batch = [web_activity(f"evt-{n}", visitor=f"visitor-{n}") for n in range(5)]
    try:
        await asyncio.to_thread(kafka_broker.stop)
        refused = await ingest.post_events(batch, media_type=BATCH_JSON, webhook_id="msg_out")
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) > 0
        assert refused.headers["content-type"] == "application/problem+json"
        await asyncio.to_thread(kafka_broker.start)
        accepted = await _retry_until_accepted(ingest, batch)
    finally:
        await ingest.client.aclose()
        await runtime.close()
    sent_ids = accepted.json()["event_ids"]
    messages = await ingest.read(Topic.WEB_ACTIVITY, expected=len(sent_ids))
    # A send that timed out during the outage may still have landed: then the same id appears
    # twice on the topic, which consumers' inboxes drop. What must hold: every id, none extra.
    assert set(ids(messages)) == set(sent_ids)
    assert len(sent_ids) == 5


async def _retry_until_accepted(ingest: Ingest, batch: list[dict[str, Any]]) -> Any:
    """What a sender does: the same delivery again, re-signed, until it is accepted."""
    deadline = time.monotonic() + 60
    while True:
        response = await ingest.post_events(batch, media_type=BATCH_JSON, webhook_id="msg_out")
        if response.status_code == 202 or time.monotonic() > deadline:
            assert response.status_code == 202, response.text
            return response
        assert response.status_code == 503


async def test_with_postgresql_down_webhooks_are_still_accepted_and_on_their_topic(
    kafka_bootstrap: str, unique_topic_prefix: str
) -> None:
    """The documented choice: Kafka up, PostgreSQL down -> 202, judged by what this process
    accepted itself (its own replays and retries are still recognised), and counted."""
    down = f"postgresql+asyncpg://leadrelay:x@127.0.0.1:{free_port()}/leadrelay"
    ingest, runtime = await open_ingest(kafka_bootstrap, down, unique_topic_prefix, migrated=True)
    try:
        body = json.dumps(web_activity("while-pg-down")).encode()
        signed_at = int(time.time())
        first = await ingest.post_events(body, webhook_id="msg_pg_down", timestamp=signed_at)
        replay = await ingest.post_events(body, webhook_id="msg_pg_down", timestamp=signed_at)
        retry = await ingest.post_events(body, webhook_id="msg_pg_down", timestamp=signed_at + 1)
        assert (first.status_code, replay.status_code, retry.status_code) == (202, 401, 202)
        assert retry.json() == {**first.json(), "duplicate": True}
        assert ids(await ingest.read(Topic.WEB_ACTIVITY, expected=1)) == first.json()["event_ids"]
        assert 'leadrelay_ingest_history_unavailable_total{route="/v1/events"} 2.0' in (
            await ingest.metrics()
        )
    finally:
        await ingest.client.aclose()
        await runtime.close()
