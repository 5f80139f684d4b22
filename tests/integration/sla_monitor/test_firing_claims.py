"""How the firing loop claims its work: siblings held elsewhere defer an assignment, batches share
the due clocks, and the loop wakes for the next due time instead of waiting out its poll.

On SQLite and PostgreSQL, except the row-lock case, which only PostgreSQL has.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select, text

from leadrelay.app.definitions import load_definitions
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.topics import topic_name
from leadrelay.store.engine import create_engine_for, is_sqlite
from leadrelay.store.tables import outbox
from leadrelay.store.unit_of_work import Clock, Store
from services.sla_monitor import repository
from services.sla_monitor.domain import AssignmentFacts, ClockKind, start_clocks
from services.sla_monitor.jobs.firing import FiringLoop
from services.sla_monitor.repository import StoredClock
from services.sla_monitor.service import SlaMonitor
from services.sla_monitor.tables import sla_clocks
from tests.integration.sla_monitor.bulk import insert_pending

DUE = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def firing_loop(store: Store, *, poll_seconds: float, batch_size: int = 500) -> FiringLoop:
    return SlaMonitor.create(
        store,
        load_definitions().sla,
        registry=CollectorRegistry(),
        topic_name=lambda t: topic_name(t),
        poll_seconds=poll_seconds,
        sweep_seconds=3600.0,
        batch_size=batch_size,
    ).firing


async def open_store(database_url: str, clock: Clock) -> Store:
    await upgrade_async(database_url)
    return Store(create_engine_for(database_url), clock=clock)


@pytest.fixture
async def store_at_due(database_url: str) -> AsyncIterator[Store]:
    store = await open_store(database_url, lambda: DUE + timedelta(minutes=1))
    try:
        yield store
    finally:
        await store.dispose()


async def events_queued(store: Store) -> int:
    async with store.read() as connection:
        return int(await connection.scalar(select(func.count()).select_from(outbox)) or 0)


async def test_batches_smaller_than_the_backlog_fire_every_clock_once(store_at_due: Store) -> None:
    await insert_pending(store_at_due, 250, DUE)
    loop = firing_loop(store_at_due, poll_seconds=1.0, batch_size=40)

    report = await loop.drain()

    assert (report.fired_clocks, report.actions) == (250, 250)
    assert await events_queued(store_at_due) == 250
    assert (await loop.drain()).actions == 0  # nothing fires twice


async def test_the_loop_wakes_for_the_next_due_time_not_after_its_poll(database_url: str) -> None:
    """A clock due in a second fires although the loop polls only hourly."""
    store = await open_store(database_url, lambda: datetime.now(UTC))
    try:
        await insert_pending(store, 3, datetime.now(UTC) + timedelta(seconds=1))
        loop = firing_loop(store, poll_seconds=3600.0)
        stop = asyncio.Event()
        running = asyncio.create_task(loop.run(stop))
        try:
            async with asyncio.timeout(60):
                while await events_queued(store) < 3:
                    assert not running.done(), running
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await running
    finally:
        await store.dispose()


def both_clocks_of_one_assignment() -> list[StoredClock]:
    """First touch (due at ``DUE``) and acceptance (due later) of one SDR assignment."""
    definitions = load_definitions()
    facts = AssignmentFacts(
        lead_key="lk_sibling0",
        assignment_id="as-sibling",
        rep_id="rep-anna",
        role="sdr",
        route="fallback",
        team="sdr-emea",
        episode=1,
        attempt=1,
        assigned_at=DUE - timedelta(hours=1),
    )
    policy = definitions.sla.policy_for("sdr", "fallback", None)
    clocks = start_clocks(policy, definitions.sla.calendar("default"), facts)
    assert [c.kind for c in clocks] == [ClockKind.FIRST_TOUCH, ClockKind.ACCEPTANCE]
    return [StoredClock(c, "sdr", "sdr-emea") for c in clocks]


async def test_an_assignment_whose_sibling_clock_is_held_elsewhere_waits_for_it(
    store_at_due: Store,
) -> None:
    """Firing one clock can end its sibling, so a batch never acts on half an assignment: while
    another transaction (a handler, another instance) holds the acceptance clock, the due first
    touch clock is deferred, and fires once that transaction is done."""
    if is_sqlite(store_at_due.engine):
        pytest.skip("SQLite has no row locks: one writer at a time")
    first_touch, acceptance = both_clocks_of_one_assignment()
    async with store_at_due.transaction() as tx:
        await repository.insert_new(tx.connection, [first_touch, acceptance])
    loop = firing_loop(store_at_due, poll_seconds=1.0)

    async with store_at_due.engine.connect() as holder, holder.begin():
        await holder.execute(
            text("SELECT clock_id FROM sla_clocks WHERE clock_id = :id FOR UPDATE"),
            {"id": acceptance.clock.clock_id},
        )
        held = await loop.fire_batch()
    assert (held.deferred_assignments, held.actions) == (1, 0)
    assert await events_queued(store_at_due) == 0

    released = await loop.drain()
    assert released.actions > 0
    async with store_at_due.read() as connection:
        states = dict(
            (await connection.execute(select(sla_clocks.c.clock_id, sla_clocks.c.state))).all()
        )
    assert states[first_touch.clock.clock_id] != "running"
