"""The public API (ingest and the routes mounted beside it) on a real broker and database,
driven in-process through ASGI."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from leadrelay.app.api import create_api
from leadrelay.app.definitions import load_definitions
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.contracts.topics import Topic
from leadrelay.credentials import parse_secret
from leadrelay.ops import ops_app
from leadrelay.runtime.service import Runtime, open_runtime
from leadrelay.settings import load_settings
from services.ingest.domain.signatures import sign_hubspot_v3, sign_standard_webhook
from tests.integration.runtime.effects import produce, read_topic

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"integration-test-webhook-key!!").decode()
ROTATED_OUT_SECRET = "an old raw secret"
HUBSPOT_SECRET = "hubspot-client-secret"
MARKETO_TOKEN = "marketo-shared-token"
API_TOKEN = "api-token-for-tests"
LEAD_KEY_SECRET = "lead-key-secret"
BASE_URL = "http://ingest.test"
CLOUDEVENT_JSON = "application/cloudevents+json"
BATCH_JSON = "application/cloudevents-batch+json"
Message = tuple[bytes | None, bytes, dict[str, bytes]]


@dataclass
class Ingest:
    """The app under test, its runtime, and how a well-behaved sender talks to it."""

    runtime: Runtime
    client: httpx.AsyncClient
    bootstrap: str

    def topic(self, topic: Topic) -> str:
        return self.runtime.topic(topic)

    async def metrics(self) -> str:
        """The Prometheus text of the metrics listener (not the public app, which has none)."""
        listener = ops_app(self.runtime.registry, self.runtime.readiness_checks())
        transport = httpx.ASGITransport(app=listener)
        async with httpx.AsyncClient(transport=transport, base_url="http://metrics.test") as http:
            return (await http.get("/metrics")).text

    async def post_events(
        self,
        body: Any,
        *,
        media_type: str = CLOUDEVENT_JSON,
        webhook_id: str | None = None,
        timestamp: int | None = None,
        secret: str = WEBHOOK_SECRET,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A Standard Webhooks delivery, signed as the spec says (bytes as given if bytes)."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        signed = standard_webhook_headers(
            content, webhook_id=webhook_id, timestamp=timestamp, secret=secret
        )
        return await self.client.post(
            "/v1/events",
            content=content,
            headers={"content-type": media_type, **signed, **(headers or {})},
        )

    async def post_hubspot(
        self, body: Any, *, secret: str = HUBSPOT_SECRET, timestamp_ms: int | None = None
    ) -> httpx.Response:
        content = json.dumps(body).encode()
        timestamp_ms = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        signature = sign_hubspot_v3(
            secret.encode(), "POST", f"{BASE_URL}/v1/webhooks/hubspot", content, timestamp_ms
        )
        return await self.client.post(
            "/v1/webhooks/hubspot",
            content=content,
            headers={
                "content-type": "application/json",
                "X-HubSpot-Signature-v3": signature,
                "X-HubSpot-Request-Timestamp": str(timestamp_ms),
            },
        )

    async def post_marketo(self, body: Any, *, token: str = MARKETO_TOKEN) -> httpx.Response:
        return await self.client.post(
            "/v1/webhooks/marketo", json=body, headers={"X-Marketo-Token": token}
        )

    async def post_sales_activity(self, body: Any, *, token: str = API_TOKEN) -> httpx.Response:
        return await self.client.post(
            "/v1/sales-activity", json=body, headers={"Authorization": f"Bearer {token}"}
        )

    async def read(self, topic: Topic, expected: int) -> list[Message]:
        return await read_topic(self.bootstrap, self.topic(topic), expected=expected, within=30.0)

    async def assert_nothing_produced(self, topic: Topic) -> None:
        """Produce a sentinel and read up to it: anything before it was produced by the test."""
        sentinel = new_event(
            "leadrelay.web_activity.v1",
            source="/tests/sentinel",
            subject="sentinel",
            id=f"sentinel-{uuid.uuid4()}",
            data={
                "anonymous_id": "sentinel",
                "action": "page_view",
                "occurred_at": "2026-11-24T09:00:00Z",
                "source": "generic",
            },
        )
        await produce(self.bootstrap, self.topic(topic), [sentinel])
        messages = await self.read(topic, expected=1)
        assert [json.loads(value)["id"] for _, value, _ in messages] == [sentinel.id]


def standard_webhook_headers(
    content: bytes,
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
    secret: str = WEBHOOK_SECRET,
) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp if timestamp is not None else int(time.time())
    signature = sign_standard_webhook(parse_secret(secret), webhook_id, timestamp, content)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def events_of(messages: list[Message]) -> list[CloudEvent]:
    return [CloudEvent.from_bytes(value) for _, value, _ in messages]


async def open_ingest(
    kafka_bootstrap: str,
    database_url: str,
    prefix: str,
    *,
    migrated: bool = False,
    **overrides: Any,
) -> tuple[Ingest, Runtime]:
    """Ingest on ``database_url``, migrated first unless ``migrated`` (a server that is down)."""
    if not migrated:
        await upgrade_async(database_url)
    settings = load_settings(
        **{
            "kafka_bootstrap": kafka_bootstrap,
            "database_url": database_url,
            "topic_prefix": prefix,
            "topic_partitions": 2,
            "webhook_secrets": [WEBHOOK_SECRET, ROTATED_OUT_SECRET],
            "hubspot_client_secret": HUBSPOT_SECRET,
            "marketo_token": MARKETO_TOKEN,
            "api_token": API_TOKEN,
            "lead_key_secret": LEAD_KEY_SECRET,
            "produce_timeout_seconds": 3.0,
            **overrides,
        }
    )
    runtime = await open_runtime(settings)
    app = create_api(runtime, load_definitions(None))  # every route of the public port
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
    return Ingest(runtime, client, kafka_bootstrap), runtime


@pytest.fixture
async def ingest(
    kafka_bootstrap: str, sqlite_url: str, unique_topic_prefix: str
) -> AsyncIterator[Ingest]:
    """Ingest on SQLite (the database matters only for replay history; see ``ingest_db``)."""
    app, runtime = await open_ingest(kafka_bootstrap, sqlite_url, unique_topic_prefix)
    try:
        yield app
    finally:
        await app.client.aclose()
        await runtime.close()


@pytest.fixture
async def ingest_db(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> AsyncIterator[Ingest]:
    """Ingest on each backend (SQLite and PostgreSQL)."""
    app, runtime = await open_ingest(kafka_bootstrap, database_url, unique_topic_prefix)
    try:
        yield app
    finally:
        await app.client.aclose()
        await runtime.close()
