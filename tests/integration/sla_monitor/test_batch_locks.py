"""Two consumer batches of the monitor that touch the same leads in opposite orders (an
assignment and a sales activity of one lead arrive on two topics, so two partitions' workers
apply them at once) wait for each other instead of deadlocking. PostgreSQL only: SQLite lets
one writer in at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from services.sla_monitor.domain import ClockKind, ClockState
from services.sla_monitor.repository import LEAD_LOCK_SPACE, clocks_of_lead
from tests.harness.postgres import scratch_database
from tests.integration.runtime.effects import wait_until
from tests.unit import delivery
from tests.unit.sla_monitor.helpers import berlin
from tests.unit.sla_monitor.support import Harness, harness, lead_assigned, sales_activity

pytestmark = pytest.mark.postgres

ASSIGNED = berlin(2026, 1, 13, 10, 0)
FIRST, SECOND = "lk_batchlock_first", "lk_batchlock_second"


@pytest.fixture
async def sla(postgres_url: str) -> AsyncIterator[Harness]:
    async with scratch_database(postgres_url) as url:
        async for h in harness(url, ASSIGNED):
            yield h


async def waiting_for_advisory_locks(h: Harness) -> int:
    async with h.store.engine.connect() as connection:
        waiting = await connection.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        )
    return int(waiting or 0)


async def test_batches_touching_the_same_leads_in_opposite_orders_both_apply(
    sla: Harness,
) -> None:
    """A third transaction holds the first lead while one batch (first lead, then second) and
    then another (second, then first) start; when it lets go, both batches apply. Locking in
    the order of their events, the second batch held the second lead while waiting for the
    first, and PostgreSQL rolled one of them back as a deadlock."""
    handlers = sla.monitor.spec().handlers
    for n, lead in enumerate((FIRST, SECOND)):
        await sla.handle(lead_assigned(f"as-{n}", "rep-anna", ASSIGNED, lead_key=lead))
    sla.clock.set(ASSIGNED + timedelta(minutes=5))
    touched, reached = (
        sales_activity("contact_attempted", "rep-anna", sla.clock.now, lead_key=lead, event_id=lead)
        for lead in (FIRST, SECOND)
    )

    async with sla.store.engine.connect() as holder, holder.begin():
        await holder.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:lead))"),
            {"space": LEAD_LOCK_SPACE, "lead": FIRST},
        )
        forward = asyncio.create_task(
            delivery.deliver_batch(sla.store, "sla-forward", handlers, touched, reached)
        )
        await wait_until(lambda: _waiting(sla, 1), within=30)
        backward = asyncio.create_task(
            delivery.deliver_batch(sla.store, "sla-backward", handlers, reached, touched)
        )
        await wait_until(lambda: _waiting(sla, 2), within=30)
    applied = await asyncio.wait_for(asyncio.gather(forward, backward), timeout=30)

    assert list(applied) == [[True, True], [True, True]]
    for lead in (FIRST, SECOND):
        async with sla.store.engine.connect() as connection:
            clocks = await clocks_of_lead(connection, lead)
        assert [c.state for c in clocks if c.kind == ClockKind.FIRST_TOUCH] == [
            ClockState.COMPLETED
        ]


async def _waiting(h: Harness, count: int) -> bool:
    return await waiting_for_advisory_locks(h) >= count
