"""Reporting's batch handler keeps each stated fact once, whatever batches the events come in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from leadrelay.app.schema import upgrade_async
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store
from services.reporting.handlers import ReportingHandlers
from services.reporting.messages import fact_of
from services.reporting.metrics import ReportingMetrics
from tests.unit import delivery
from tests.unit.reporting import expected
from tests.unit.reporting.history import MONDAY, WINDOW, known_history, reports_on


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    await upgrade_async(database_url)
    store = Store(create_engine_for(database_url), clock=lambda: MONDAY + timedelta(days=3))
    yield store
    await store.dispose()


async def test_batches_of_the_history_give_its_reports_and_count_each_fact_once(
    store: Store,
) -> None:
    registry = CollectorRegistry()
    handlers = ReportingHandlers(ReportingMetrics.create(registry)).handlers()
    history = known_history()
    await delivery.deliver_batch(store, "reporting", handlers, *history[:7])
    await delivery.deliver_batch(store, "reporting", handlers, *history[3:])  # 3-6 are repeats
    counted = sum(
        sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "leadrelay_reporting_facts_total"
    )
    assert counted == sum(1 for event in history if fact_of(event))
    async with store.transaction() as tx:  # the handler alone, as after an inbox lost in a restore
        await handlers.apply(history[:5], tx)

    funnel = await reports_on(store).report("funnel", WINDOW)
    assert list(funnel.rows) == expected.FUNNEL
