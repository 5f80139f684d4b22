"""What a forecast reads of a rep: their open clocks and those they completed in the pace window,
never their whole history; and clocks completed before ``completed_at`` existed are found too.

On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from leadrelay.app.schema import upgrade_async
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store
from services.sla_monitor import repository
from services.sla_monitor.domain import ClockKind, SlaClock, clock_id_for, on_sales_activity
from services.sla_monitor.domain.at_risk import PACE_WINDOW
from services.sla_monitor.repository import StoredClock, row_values
from services.sla_monitor.tables import sla_clocks

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def clock_of(lead: str, started_at: datetime, rep_id: str = "rep-anna") -> SlaClock:
    assignment_id = f"as-{lead}"
    return SlaClock(
        clock_id=clock_id_for(assignment_id, ClockKind.FIRST_TOUCH),
        lead_key=lead,
        assignment_id=assignment_id,
        rep_id=rep_id,
        episode=1,
        attempt=1,
        kind=ClockKind.FIRST_TOUCH,
        policy_id="sdr-standard",
        started_at=started_at,
        warn_at=None,
        due_at=started_at + timedelta(hours=2),
    )


def touched(clock: SlaClock, at: datetime) -> SlaClock:
    return on_sales_activity([clock], "contacted", at)[0]


async def test_a_forecast_reads_open_and_recently_completed_clocks_only(database_url: str) -> None:
    await upgrade_async(database_url)
    store = Store(create_engine_for(database_url), clock=lambda: NOW)
    since = NOW - PACE_WINDOW
    old = clock_of("lk_old", since - timedelta(days=3))
    recent = clock_of("lk_recent", NOW - timedelta(days=2))
    running = clock_of("lk_running", NOW - timedelta(minutes=30))
    other_rep = clock_of("lk_other", NOW - timedelta(days=1), rep_id="rep-ben")
    stored = [StoredClock(c, "sdr", "emea") for c in (old, recent, running, other_rep)]
    try:
        async with store.transaction() as tx:
            await repository.insert_new(tx.connection, stored)
        after = [
            s.replace(touched(s.clock, s.clock.started_at + timedelta(minutes=20)))
            if s.clock is not running
            else s
            for s in stored
        ]
        async with store.transaction() as tx:
            await repository.save_changed(tx.connection, stored, after)
        async with store.read() as connection:
            found = await repository.clocks_of_reps(connection, ["rep-anna"], since)
    finally:
        await store.dispose()
    assert sorted(c.lead_key for c in found["rep-anna"]) == ["lk_recent", "lk_running"]


async def test_clocks_completed_before_the_column_existed_are_backfilled(database_url: str) -> None:
    await upgrade_async(database_url, "sla_0004")
    engine = create_engine_for(database_url)
    clock = clock_of("lk_before", NOW - timedelta(days=1))
    completed = touched(clock, clock.started_at + timedelta(minutes=45))
    row = row_values(StoredClock(completed, "sdr", "emea"))
    del row["completed_at"]
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(sla_clocks), [row])
        await upgrade_async(database_url)
        async with engine.connect() as connection:
            value = await connection.scalar(select(sla_clocks.c.completed_at))
    finally:
        await engine.dispose()
    assert value is not None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # SQLite keeps none
    assert aware == clock.started_at + timedelta(minutes=45)
