"""The reporting service on real Kafka, on SQLite and PostgreSQL: the known history goes in
through the topics, the reports come out of ``/v1/reports`` with the numbers worked out by
hand, and a rebuild from the topics (a new consumer group on an emptied table) gives the same
table."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, func, select

from leadrelay.app.definitions import load_definitions
from leadrelay.app.registry import business_time
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.contracts.events import MarketingActivity
from leadrelay.contracts.topics import topic_for_event_type
from leadrelay.runtime.service import Runtime, ServiceSpec, open_runtime, run_services
from leadrelay.settings import load_settings
from services.reporting.api import reports_router
from services.reporting.handlers import ReportingHandlers
from services.reporting.metrics import ReportingMetrics
from services.reporting.service import CONSUMES, build_service
from services.reporting.tables import reporting_facts
from tests.integration.runtime.effects import produce, wait_until
from tests.unit.reporting import expected
from tests.unit.reporting.history import ROSTER, WINDOW, at, known_history, reports_on

TOKEN = "reporting-test-token"


class RunningReporting:
    """The service in this process, its runtime, and an HTTP client on the report routes."""

    def __init__(self, runtime: Runtime, bootstrap: str) -> None:
        self.runtime = runtime
        self.bootstrap = bootstrap
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        reports = reports_on(runtime.store)
        app = FastAPI()
        app.state.api_token = TOKEN
        app.include_router(reports_router(reports))
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://test",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip

    def start(self, spec: ServiceSpec) -> None:
        self.tasks.append(asyncio.create_task(run_services(self.runtime, [spec], self.stop)))

    async def deliver(self, events: Sequence[CloudEvent]) -> None:
        for event in events:
            await produce(
                self.bootstrap, self.runtime.topic(topic_for_event_type(event.type)), [event]
            )

    async def rows(self) -> list[dict[str, Any]]:
        async with self.runtime.store.engine.connect() as connection:
            query = select(reporting_facts).order_by(reporting_facts.c.event_id)
            return [
                {**row._asdict(), "at": row.at.replace(tzinfo=None)}
                for row in await connection.execute(query)
            ]

    async def count(self) -> int:
        async with self.runtime.store.engine.connect() as connection:
            query = select(func.count()).select_from(reporting_facts)
            return int((await connection.execute(query)).scalar_one())

    async def report(self, name: str, by: str | None = None, **headers: str) -> httpx.Response:
        params = {"from": WINDOW.start.isoformat(), "to": WINDOW.end.isoformat()}
        response = await self.http.get(
            f"/v1/reports/{name}", params=params | ({"by": by} if by else {}), headers=headers
        )
        assert response.status_code == 200, response.text
        return response


FACTS = sum(1 for _ in known_history())
"""Every event of the known history becomes one fact."""


@pytest.fixture
async def reporting(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> AsyncIterator[RunningReporting]:
    await upgrade_async(database_url)
    settings = load_settings(kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                             topic_prefix=unique_topic_prefix, topic_partitions=3)  # fmt: skip
    runtime = await open_runtime(settings)
    running = RunningReporting(runtime, kafka_bootstrap)
    running.start(build_service(runtime, business_time(load_definitions()), ROSTER))
    try:
        await running.deliver(known_history())
        await wait_until(lambda: _has(running, FACTS))
        yield running
    finally:
        running.stop.set()
        await asyncio.gather(*running.tasks)
        await running.http.aclose()
        await runtime.close()


async def _has(running: RunningReporting, count: int) -> bool:
    return await running.count() >= count


async def test_every_report_over_http_has_the_worked_out_numbers(
    reporting: RunningReporting,
) -> None:
    assert (await reporting.report("funnel")).json()["rows"] == expected.FUNNEL
    assert (await reporting.report("speed-to-lead")).json()["rows"] == [expected.SPEED]
    assert (await reporting.report("sla", "policy")).json()["rows"] == expected.SLA_BY_POLICY
    assert (await reporting.report("sla", "rep")).json()["rows"] == expected.SLA_BY_REP
    assert (await reporting.report("recycled", "reason")).json()["rows"] == expected.RECYCLED
    assert (await reporting.report("routing")).json()["rows"] == expected.ROUTING


async def test_csv_has_the_same_rows(reporting: RunningReporting) -> None:
    response = await reporting.report("sla", "rep", accept="text/csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["rep"] for r in rows] == ["rep-1", "rep-2"]
    assert [(r["met"], r["breached"], r["compliance"]) for r in rows] == [
        ("3", "0", "1.0"), ("0", "1", "0.0")
    ]  # fmt: skip


async def test_reports_refuse_without_the_token_and_with_a_bad_dimension(
    reporting: RunningReporting,
) -> None:
    anonymous = await reporting.http.get("/v1/reports/funnel", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    bad = await reporting.http.get("/v1/reports/funnel", params={"by": "colour"})
    assert bad.status_code == 422
    backwards = await reporting.http.get(
        "/v1/reports/funnel",
        params={"from": WINDOW.end.isoformat(), "to": WINDOW.start.isoformat()},
    )
    assert backwards.status_code == 422


async def test_redelivery_keeps_one_fact_per_event(reporting: RunningReporting) -> None:
    before = await reporting.rows()
    await reporting.deliver(known_history()[:5])
    processed = "leadrelay_messages_duplicate_total"
    await wait_until(lambda: _counted(reporting, processed, 5))
    assert await reporting.rows() == before


async def test_a_rebuild_from_the_topics_gives_the_same_table(reporting: RunningReporting) -> None:
    before = await reporting.rows()
    assert len(before) == FACTS
    async with reporting.runtime.store.transaction() as tx:
        await tx.connection.execute(delete(reporting_facts))
    handlers = ReportingHandlers(ReportingMetrics.create(CollectorRegistry()))
    # a new consumer group reads every topic from the start
    rebuild = ServiceSpec("reporting-rebuild", CONSUMES, handlers.handlers())
    reporting.start(rebuild)
    await wait_until(lambda: _has(reporting, FACTS))
    assert await reporting.rows() == before


async def test_the_sla_report_has_marketings_policy_row(reporting: RunningReporting) -> None:
    """Lead B, recycled Monday 12:00, enrolled in nurture by the MAP at 15:00: marketing met."""
    enrolled = MarketingActivity(
        lead_key="B", activity="nurture_enrolled", occurred_at=at("15:00"), program="recycled"
    )
    event = new_event(enrolled.EVENT_TYPE, "/tests", enrolled, subject="B")
    await reporting.deliver([event])
    await wait_until(lambda: _has(reporting, FACTS + 1))
    reports = replace(reports_on(reporting.runtime.store), marketing_sla=True)
    report = await reports.report("sla", WINDOW, "policy")
    assert list(report.rows) == [
        *expected.SLA_BY_POLICY,
        {"policy": "marketing", "clocks": 1, "met": 1, "breached": 0, "open": 0,
         "compliance": 1.0, "warnings": 0, "escalations": 0, "reassignments": 0, "recycles": 0,
         "at_risk": 0, "forecast_precision": None, "forecast_recall": None},
    ]  # fmt: skip


async def _counted(running: RunningReporting, name: str, at_least: int) -> bool:
    samples = [
        s.value
        for metric in running.runtime.registry.collect()
        for s in metric.samples
        if s.name == name
    ]
    return sum(samples) >= at_least
