"""The scoring service on real Kafka, on SQLite and PostgreSQL: a buyer's journey end to end.

Inputs are produced as ingest produces them (keyed by lead key, or by visitor key while
anonymous); the service runs in-process with an injected clock, so decay is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from leadrelay.app.definitions import load_definitions
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.schemas import validate_event
from leadrelay.contracts.topics import Topic, topic_for_event_type
from leadrelay.runtime.service import Runtime, open_runtime, run_services
from leadrelay.settings import load_settings
from leadrelay.store.tables import outbox
from services.scoring.domain import LeadState, Stage
from services.scoring.repository import forget_idle_visitors, load_lead
from services.scoring.service import build_service
from services.scoring.tables import visitors
from tests.integration.runtime.effects import produce, read_topic, wait_until
from tests.unit.scoring.service_events import (
    ADA_COOKIE,
    ADA_FIT,
    ADA_KEY,
    DEMO_AT,
    T0,
    TWO_WEEKS_AGO,
    MovableClock,
    ada_journey,
    form,
    recycled,
    web,
)

HANDLED = ("leadrelay_messages_processed", "leadrelay_messages_duplicate",
           "leadrelay_messages_dead_lettered")  # fmt: skip
"""Runtime counters that together say every delivered message reached its end (a dead letter
ends the wait too, and then the test's assertions say what went wrong)."""


class RunningScoring:
    """The service running in this process, and what a test needs to drive and observe it."""

    def __init__(self, runtime: Runtime, clock: MovableClock, bootstrap: str) -> None:
        self.runtime = runtime
        self.clock = clock
        self.bootstrap = bootstrap
        self._delivered = 0

    async def deliver(self, *events: CloudEvent) -> None:
        """Produce each event to its topic and wait until the service has handled them all."""
        for event in events:
            topic = self.runtime.topic(topic_for_event_type(event.type))
            await produce(self.bootstrap, topic, [event])
        self._delivered += len(events)
        await wait_until(self._caught_up)

    async def outputs(self, topic: Topic, *, expected: int) -> list[CloudEvent]:
        """What reached ``topic`` (reading on briefly after ``expected``, so extras show)."""
        messages = await read_topic(self.bootstrap, self.runtime.topic(topic), expected=expected)
        return [CloudEvent.from_bytes(value) for _, value, _ in messages]

    async def queued(self, topic: Topic) -> int:
        """Events the service committed for ``topic`` (the outbox: no waiting on Kafka)."""
        async with self.runtime.store.engine.connect() as connection:
            rows = await connection.execute(
                outbox.select().where(outbox.c.topic == self.runtime.topic(topic))
            )
            return len(rows.all())

    async def state(self, lead_key: str) -> LeadState:
        async with self.runtime.store.engine.connect() as connection:
            stored = await load_lead(connection, lead_key)
        assert stored is not None
        return stored.state

    async def visitors(self) -> dict[str, str | None]:
        """Every visitor row: anonymous id -> the lead it is linked to (None while unlinked)."""
        async with self.runtime.store.engine.connect() as connection:
            rows = await connection.execute(select(visitors.c.anonymous_id, visitors.c.lead_key))
            return {row.anonymous_id: row.lead_key for row in rows}

    def counted(self, name: str) -> float:
        value = self.runtime.registry.get_sample_value(name)
        return 0.0 if value is None else value

    async def _caught_up(self) -> bool:
        handled = sum(
            sample.value
            for metric in self.runtime.registry.collect()
            if metric.name in HANDLED
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
        return handled >= self._delivered


@pytest.fixture
async def scoring(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> AsyncIterator[RunningScoring]:
    await upgrade_async(database_url)
    settings = load_settings(kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                             topic_prefix=unique_topic_prefix, topic_partitions=3,
                             retention_sweep_seconds=0.2)  # fmt: skip
    clock = MovableClock(DEMO_AT)
    runtime = await open_runtime(settings, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_services(runtime, [build_service(runtime, load_definitions().scorecard)], stop)
    )
    try:
        yield RunningScoring(runtime, clock, kafka_bootstrap)
    finally:
        stop.set()
        await task
        await runtime.close()


async def run_journey(scoring: RunningScoring) -> None:
    """Ada's journey step by step, as it happens: each step handled before the next."""
    anonymous, identify, demo = ada_journey()[:3], ada_journey()[3], ada_journey()[4]
    await scoring.deliver(*anonymous)
    await scoring.deliver(identify)
    await scoring.deliver(demo)


def points(event: CloudEvent) -> dict[str, float]:
    return {line["rule"]: line["points"] for line in event.data["breakdown"]}


async def test_a_realistic_journey_produces_exactly_one_sales_ready_event(
    scoring: RunningScoring,
) -> None:
    await run_journey(scoring)

    [ready] = await scoring.outputs(Topic.SALES_READY, expected=1)
    assert ready.subject == ADA_KEY
    assert (ready.data["episode"], ready.data["qualified_by"]) == (1, "fast_track")
    assert points(ready) == {**ADA_FIT, "page_view": 1.0, "pricing_page": 5.0,
                             "form_fill": 10.0, "demo_request": 30.0}  # fmt: skip
    # the ebook's form_fill and the demo share the default demo_intent cap of 40
    sources = {line["rule"]: line["source_event_ids"] for line in ready.data["breakdown"]}
    assert sources["page_view"] == ["pv-1", "pv-2"]
    assert sources["demo_request"] == ["demo"]
    assert ready.data["profile"]["email"] == "ada@acme.example"

    scored = await scoring.outputs(Topic.LEAD_SCORES, expected=2)
    for event in scored:
        validate_event(event)
    assert [e.data["engagement_score"] for e in scored] == [16.0, 46.0]
    assert [e.data["stage"] for e in scored] == ["lead", "mql"]


async def test_the_same_events_delivered_twice_change_nothing(scoring: RunningScoring) -> None:
    await run_journey(scoring)
    before = await scoring.state(ADA_KEY)

    scoring.clock.now = DEMO_AT + timedelta(hours=1)
    await scoring.deliver(*ada_journey())

    assert await scoring.state(ADA_KEY) == before
    assert len(await scoring.outputs(Topic.SALES_READY, expected=1)) == 1
    assert len(await scoring.outputs(Topic.LEAD_SCORES, expected=2)) == 2


async def test_a_recycled_lead_qualifies_again_only_after_fresh_engagement(
    scoring: RunningScoring,
) -> None:
    await run_journey(scoring)
    recycled_at = DEMO_AT + timedelta(days=1)
    scoring.clock.now = recycled_at + timedelta(minutes=1)
    await scoring.deliver(recycled("sla-breach", recycled_at))
    assert (await scoring.state(ADA_KEY)).stage is Stage.RECYCLED

    late_old_demo = web("old-demo", DEMO_AT + timedelta(hours=1), "demo_request", key=ADA_KEY)
    await scoring.deliver(late_old_demo, web("fresh-pv", scoring.clock.now, key=ADA_KEY))
    assert (await scoring.state(ADA_KEY)).stage is Stage.RECYCLED
    assert await scoring.queued(Topic.SALES_READY) == 1

    scoring.clock.now = recycled_at + timedelta(days=2)
    await scoring.deliver(web("new-demo", scoring.clock.now, "demo_request", key=ADA_KEY))
    ready = await scoring.outputs(Topic.SALES_READY, expected=2)
    assert [e.data["episode"] for e in ready] == [1, 2]
    assert ready[1].data["lifecycle_history"][-2]["to_stage"] == "recycled"


async def test_activity_arriving_after_the_identifying_form_counts_at_its_original_time(
    scoring: RunningScoring,
) -> None:
    scoring.clock.now = T0
    await scoring.deliver(form("ebook", T0, anonymous_id=ADA_COOKIE))
    await scoring.deliver(web("pv-early", TWO_WEEKS_AGO, anonymous_id=ADA_COOKIE))

    first, second = await scoring.outputs(Topic.LEAD_SCORES, expected=2)
    lines: Sequence[dict[str, Any]] = second.data["breakdown"]
    [page_view] = [line for line in lines if line["rule"] == "page_view"]
    assert "page_view" not in points(first)
    assert (page_view["points"], page_view["decay_factor"]) == (0.5, 0.5)
    assert page_view["source_event_ids"] == ["pv-early"]
    timeline = [a.event_id for a in (await scoring.state(ADA_KEY)).activities]
    assert timeline == ["pv-early", "ebook"]
    assert second.subject == ADA_KEY


async def test_a_visitor_who_never_identifies_is_forgotten_after_the_retention(
    scoring: RunningScoring,
) -> None:
    """The default scorecard keeps activity a year; the sweep runs in the service's background."""
    scoring.clock.now = T0
    await scoring.deliver(web("pv-lost", T0, anonymous_id="cookie-never-identified"))
    await scoring.deliver(web("pv-ada", T0, anonymous_id=ADA_COOKIE))
    await scoring.deliver(form("ebook", T0, anonymous_id=ADA_COOKIE))
    assert await scoring.visitors() == {"cookie-never-identified": None, ADA_COOKIE: ADA_KEY}

    async with scoring.runtime.store.transaction() as tx:  # idle since T0, not before it
        assert await forget_idle_visitors(tx.connection, idle_since=T0, limit=10) == 0

    scoring.clock.now = T0 + timedelta(days=366)

    async def forgotten() -> bool:
        return "cookie-never-identified" not in await scoring.visitors()

    await wait_until(forgotten)
    assert await scoring.visitors() == {ADA_COOKIE: ADA_KEY}  # the link stays
    assert scoring.counted("leadrelay_scoring_visitors_forgotten_total") == 1
