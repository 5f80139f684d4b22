"""Many clocks coming due together: every one fires exactly once, and the firing lag is reported.

Two firing loops on separate engines drain the backlog together (the way two monitor instances
would after an outage). The clock is injected: it starts at the common deadline and then runs
with real time, so the reported lag is real (deadline to committed events). Run with ``-s`` to
see the lag summary.

100,000 clocks take about 45 s on SQLite and 25 s on PostgreSQL on a 2-core machine;
``LEADRELAY_TEST_SLA_SCALE_CLOCKS`` runs another size. Marked ``slow``: CI runs it, a
developer's default run does not.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from leadrelay.app.schema import upgrade_async
from leadrelay.store.engine import create_engine_for
from leadrelay.store.tables import outbox
from leadrelay.store.unit_of_work import Clock, Store
from services.sla_monitor.domain import FiringReport, LagSummary
from services.sla_monitor.tables import sla_clocks
from tests.integration.sla_monitor.bulk import insert_pending
from tests.unit.sla_monitor.support import build_monitor

CLOCKS = int(os.environ.get("LEADRELAY_TEST_SLA_SCALE_CLOCKS", "100000"))
DUE = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def running_from(start: datetime) -> tuple[float, Clock]:
    """A clock reading ``start`` now and advancing with real time from here."""
    origin = time.perf_counter()

    def now() -> datetime:
        return start + timedelta(seconds=time.perf_counter() - origin)

    return origin, now


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_clocks_coming_due_together_each_fire_once(database_url: str) -> None:
    await upgrade_async(database_url)
    setup = Store(create_engine_for(database_url))
    setup_started = time.perf_counter()
    await insert_pending(setup, CLOCKS, DUE)
    setup_seconds = time.perf_counter() - setup_started

    origin, clock = running_from(DUE)
    stores = [Store(create_engine_for(database_url), clock=clock) for _ in range(2)]
    try:
        loops = [build_monitor(s, CollectorRegistry()).firing for s in stores]
        reports: list[FiringReport] = await asyncio.gather(*(loop.drain() for loop in loops))
        elapsed = time.perf_counter() - origin
        async with setup.engine.connect() as connection:
            events = await connection.scalar(select(func.count()).select_from(outbox))
            distinct = await connection.scalar(select(func.count(func.distinct(outbox.c.event_id))))
            still_due = await connection.scalar(
                select(func.count()).where(sla_clocks.c.next_fire_at.is_not(None))
            )
    finally:
        for store in [*stores, setup]:
            await store.dispose()

    total = reports[0] + reports[1]
    summary = LagSummary.of(total.lags)
    print(
        f"\n[{database_url.split(':')[0]}] setup {setup_seconds:.1f}s; {CLOCKS} clocks fired in "
        f"{elapsed:.1f}s ({CLOCKS / elapsed:.0f}/s; per instance "
        f"{[r.actions for r in reports]}); {summary}"
    )
    assert (events, distinct, still_due) == (CLOCKS, CLOCKS, 0)
    assert total.actions == CLOCKS
    assert summary.count == CLOCKS
    assert summary.max <= elapsed
