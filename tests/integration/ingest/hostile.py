"""Hostile requests for every ingest route, and the check that nothing accepted was lost.

A case starts from a valid body of its route (so that many reach the producer) and is then
mutated: a field replaced or added with a hostile value (a lone surrogate, ``1e400``, an
integer past 2^53, ``null``, a very long string, deep nesting), batches with repeated ids,
half of the cases signed correctly. Used by the bounded property run in the test suite and by
``benchmarks/ingest_fuzz.py`` (10,000 requests, run by hand).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.topics import Topic, topic_for_event_type, topic_name
from leadrelay.credentials import parse_secret
from services.ingest.domain.signatures import sign_hubspot_v3, sign_standard_webhook

ROUTES = ("/v1/events", "/v1/webhooks/hubspot", "/v1/webhooks/marketo", "/v1/sales-activity")


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is (``1e400`` has no Python float that prints as it)."""

    token: str


@dataclass(frozen=True)
class Case:
    """One request: route, JSON value, media type, whether signed correctly."""

    route: str
    body: Any
    media_type: str
    signed: bool


def dumps(value: Any) -> str:
    """JSON text of ``value``; ``Raw`` tokens verbatim, lone surrogates as ``\\uXXXX``."""
    if isinstance(value, Raw):
        return value.token
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def nested(depth: int) -> Any:
    value: Any = "deep"
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


surrogates = st.text(st.characters(categories=("Cs", "Ll", "Nd")), min_size=1, max_size=8).filter(
    lambda text: any(0xD800 <= ord(c) <= 0xDFFF for c in text)
)
hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [Raw("1e400"), Raw("-1e400"), Raw("1e-400"), Raw("NaN"), Raw("Infinity"), Raw("1" * 30)]
    ),
    surrogates,
    st.text(max_size=30),
    st.integers(min_value=1_000, max_value=300_000).map(lambda n: "x" * n),
    st.integers(min_value=10, max_value=60).map(nested),
    st.sampled_from(["Ada@Example.com", "2026-11-24T09:00:00Z", "", " ", "lk_x", "demo_request"]),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _now_ms() -> int:
    return int(time.time() * 1000)


def cloudevent(event_id: str, kind: int, email: str) -> dict[str, Any]:
    data: dict[str, Any]
    if kind == 0:
        event_type = "leadrelay.web_activity.v1"
        data = {"anonymous_id": "v-1", "action": "page_view", "occurred_at": "2026-11-24T09:00:00Z"}
    elif kind == 1:
        event_type = "leadrelay.form_submitted.v1"
        data = {"email": email, "form_id": "demo", "occurred_at": "2026-11-24T09:00:00Z"}
    else:
        event_type = "leadrelay.sales_activity.v1"
        data = {
            "email": email,
            "rep_id": "rep-1",
            "outcome": "contacted",
            "occurred_at": "2026-11-24T09:00:00Z",
        }
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/fuzz",
        "type": event_type,
        "data": data,
    }


def hubspot_item(event_id: int) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "subscriptionId": 9,
        "portalId": 62515,
        "occurredAt": _now_ms(),
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 123,
        "propertyName": "email",
        "propertyValue": "ada@example.com",
    }


def templates(draw: st.DrawFn, route: str) -> tuple[Any, str]:
    """A valid body of ``route`` (a batch where the route takes one) and its media type."""
    ids = st.sampled_from(["a", "b", "c"]) | st.uuids().map(str)
    email = draw(st.sampled_from(["ada@example.com", "bob@example.org", "Ada@Example.COM"]))
    if route == "/v1/events":
        items = draw(st.lists(st.tuples(ids, st.integers(0, 2)), min_size=1, max_size=4))
        batch = [cloudevent(i, kind, email) for i, kind in items]
        if draw(st.booleans()):
            return batch[0], "application/cloudevents+json"
        return batch, "application/cloudevents-batch+json"
    if route == "/v1/webhooks/hubspot":
        numbers = draw(st.lists(st.integers(1, 3), min_size=1, max_size=4))
        return [hubspot_item(n) for n in numbers], "application/json"
    if route == "/v1/webhooks/marketo":
        call = {"id": draw(ids), "action": "form_submitted", "email": email, "form_id": "demo"}
        return call, "application/json"
    activity = {
        "id": draw(ids),
        "email": email,
        "rep_id": "rep-1",
        "outcome": draw(st.sampled_from(["contacted", "accepted", "rejected"])),
        "occurred_at": "2026-11-24T10:00:00Z",
    }
    return activity, "application/json"


def mutate(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one place (any depth) replaced or added, or as is."""
    choice = draw(st.integers(0, 3))
    if choice == 0 or not isinstance(value, dict | list) or not value:
        return draw(hostile_values) if choice == 0 else value
    if isinstance(value, list):
        index = draw(st.integers(0, len(value) - 1))
        return [mutate(draw, v) if i == index else v for i, v in enumerate(value)]
    key = draw(st.sampled_from([*value, "extra", "\ud800", "Ada@Example.com"]))
    changed = dict(value)
    changed[key] = mutate(draw, value[key]) if key in value and choice < 3 else draw(hostile_values)
    return changed


@st.composite
def cases(draw: st.DrawFn) -> Case:
    route = draw(st.sampled_from(ROUTES))
    body, media_type = templates(draw, route)
    for _ in range(draw(st.integers(0, 2))):
        body = mutate(draw, body)
    return Case(route, body, media_type, signed=draw(st.integers(0, 3)) > 0)


def draw_cases(count: int, *, random_seed: int) -> list[Case]:
    """``count`` cases, drawn synchronously (hypothesis does not drive async tests)."""
    found: list[Case] = []

    @seed(random_seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases())
    def collect(case: Case) -> None:
        found.append(case)

    collect()
    return found[:count]


@dataclass(frozen=True)
class Credentials:
    webhook_secret: str
    hubspot_secret: str
    marketo_token: str
    api_token: str


def request_of(case: Case, credentials: Credentials, base_url: str) -> dict[str, Any]:
    """The case as httpx arguments, signed like a legitimate sender when ``case.signed``."""
    content = dumps(case.body).encode("ascii")  # json.dumps escapes everything else
    headers = {"content-type": case.media_type}
    if case.signed:
        headers |= _credentials(case.route, content, credentials, base_url)
    return {"method": "POST", "url": case.route, "content": content, "headers": headers}


def _credentials(route: str, body: bytes, c: Credentials, base_url: str) -> dict[str, str]:
    if route == "/v1/events":
        webhook_id, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
        signature = sign_standard_webhook(parse_secret(c.webhook_secret), webhook_id, stamp, body)
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature,
        }
    if route == "/v1/webhooks/marketo":
        return {"X-Marketo-Token": c.marketo_token}
    if route == "/v1/sales-activity":
        return {"Authorization": f"Bearer {c.api_token}"}
    stamp = _now_ms()
    signature = sign_hubspot_v3(c.hubspot_secret.encode(), "POST", base_url + route, body, stamp)
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(stamp)}


@dataclass
class Tally:
    """What a run saw: statuses, and every event id answered 202."""

    statuses: dict[int, int]
    accepted: set[str]

    def note(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code == 202:
            self.accepted.update(response.json()["event_ids"])

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


async def send_all(
    client: httpx.AsyncClient, found: Iterable[Case], credentials: Credentials
) -> Tally:
    tally = Tally({}, set())
    base_url = str(client.base_url).rstrip("/")
    for case in found:
        tally.note(await client.request(**request_of(case, credentials, base_url)))
    return tally


INGEST_TOPICS = (Topic.WEB_ACTIVITY, Topic.FORM_SUBMISSIONS, Topic.SALES_ACTIVITY)


async def missing_from(
    bootstrap: str, prefix: str, wanted: set[str], within: float = 60.0
) -> set[str]:
    """The ids of ``wanted`` not found, before the deadline, on the topic of their type."""
    topics = [topic_name(topic, prefix) for topic in INGEST_TOPICS]
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    missing = set(wanted)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while missing and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for messages in batches.values():
                missing -= {event.id for event in _on_their_topic(messages, prefix)}
    finally:
        await consumer.stop()
    return missing


def _on_their_topic(messages: Iterable[ConsumerRecord[Any, Any]], prefix: str) -> list[CloudEvent]:
    events = [(m.topic, CloudEvent.from_bytes(m.value)) for m in messages if m.value]
    return [e for topic, e in events if topic == topic_name(topic_for_event_type(e.type), prefix)]
