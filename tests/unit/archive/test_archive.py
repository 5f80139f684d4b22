"""The archive keeps each input event once, in arrival order with its receipt time, and the
retention sweep forgets those older than the retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from leadrelay.app.tables import metadata
from leadrelay.settings import load_settings
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store
from services.archive.handlers import ArchiveHandlers
from services.archive.jobs.retention import archive_retention
from services.archive.metrics import ArchiveMetrics
from services.archive.repository import archived_since
from tests.unit import delivery
from tests.unit.scoring.service_events import T0, MovableClock, form, recycled, sales, web


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    engine = create_engine_for(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield Store(engine, clock=MovableClock())
    await engine.dispose()


def clock_of(store: Store) -> MovableClock:
    assert isinstance(store.clock, MovableClock)
    return store.clock


async def archived(store: Store, since: object = None) -> list[tuple[str, object]]:
    async with store.engine.connect() as connection:
        rows = await archived_since(connection, since)  # type: ignore[arg-type]
    return [(row.event.id, row.received_at) for row in rows]


async def test_every_input_type_is_kept_once_in_arrival_order_with_its_receipt_time(
    store: Store,
) -> None:
    handlers = ArchiveHandlers(ArchiveMetrics.create(CollectorRegistry())).handlers()
    events = [web("pv", T0 - timedelta(days=3), anonymous_id="c1"), form("f", T0),
              sales("s", T0, "accepted"), recycled("r", T0)]  # fmt: skip
    for minutes, event in enumerate(events):
        clock_of(store).now = T0 + timedelta(minutes=minutes)
        await delivery.deliver(store, "archive", handlers, event)
    await delivery.apply(store, handlers, events[0])  # an inbox lost in a restore

    rows = await archived(store)
    assert rows == [(e.id, T0 + timedelta(minutes=m)) for m, e in enumerate(events)]
    async with store.engine.connect() as connection:
        (first, *_) = await archived_since(connection)
    assert first.event == events[0]  # the bytes as they arrived, original times included
    assert [i for i, _ in await archived(store, T0 + timedelta(minutes=2))] == ["s", "r"]


async def test_a_batch_is_kept_in_its_order_with_one_receipt_time_and_counts_what_was_new(
    store: Store,
) -> None:
    metrics = ArchiveMetrics.create(CollectorRegistry())
    handlers = ArchiveHandlers(metrics).handlers()
    seen = web("pv", T0 - timedelta(days=1), anonymous_id="c1")
    await delivery.deliver(store, "archive", handlers, seen)
    batch = [form("f", T0), seen, sales("s", T0, "accepted"), recycled("r", T0)]
    clock_of(store).now = T0 + timedelta(minutes=5)
    async with store.transaction() as tx:  # the handler alone: ``seen`` is a repeat it must skip
        await handlers.apply(batch, tx)

    later = T0 + timedelta(minutes=5)
    assert [(i, at) for i, at in await archived(store)][1:] == [("f", later), ("s", later),
                                                              ("r", later)]  # fmt: skip
    archived_by_type = {
        s.labels["event_type"]: s.value
        for metric in metrics.events_archived.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    }
    assert archived_by_type == {seen.type: 1, batch[0].type: 1, batch[2].type: 1,
                                batch[3].type: 1}  # fmt: skip


async def test_the_sweep_forgets_events_older_than_the_retention_in_batches(store: Store) -> None:
    metrics = ArchiveMetrics.create(CollectorRegistry())
    handlers = ArchiveHandlers(metrics).handlers()
    for day in range(5):
        clock_of(store).now = T0 + timedelta(days=day)
        await delivery.deliver(store, "archive", handlers, web(f"pv-{day}", T0, key="k"))
    clock_of(store).now = T0 + timedelta(days=5)
    sweep = archive_retention(store, timedelta(days=2), metrics, every_seconds=60, batch=2)

    assert await sweep.sweep() == 3  # received on days 0, 1, 2: more than two days ago
    assert [i for i, _ in await archived(store)] == ["pv-3", "pv-4"]
    assert metrics.events_forgotten._value.get() == 3


def test_the_retention_defaults_to_180_days_and_reads_the_duration_grammar() -> None:
    assert load_settings().archive_retention == timedelta(days=180)
    assert load_settings(archive_retention="26w").archive_retention == timedelta(weeks=26)
    with pytest.raises(ValueError, match="business time"):
        load_settings(archive_retention="2bd")
