"""Many pending clocks inserted straight into ``sla_clocks`` (fast setup for scale tests)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from leadrelay.store.unit_of_work import Store
from services.sla_monitor.domain import ClockKind, SlaClock, clock_id_for
from services.sla_monitor.repository import StoredClock, row_values
from services.sla_monitor.tables import sla_clocks

CHUNK = 5_000


def pending_rows(count: int, due_at: datetime) -> list[dict[str, Any]]:
    """``count`` first-touch clocks of distinct leads, all due at ``due_at``; each fires a breach
    and nothing else (no warning, no ladder)."""
    template = row_values(
        StoredClock(
            SlaClock(
                clock_id="template",
                lead_key="template",
                assignment_id="template",
                rep_id="rep-bulk",
                episode=1,
                attempt=1,
                kind=ClockKind.FIRST_TOUCH,
                policy_id="bulk",
                started_at=due_at - timedelta(hours=1),
                warn_at=None,
                due_at=due_at,
            ),
            "sdr",
            "bulk-team",
        )
    )
    rows = []
    for n in range(count):
        assignment_id = f"as-bulk-{n}"
        clock_id = clock_id_for(assignment_id, ClockKind.FIRST_TOUCH)
        ids = {"clock_id": clock_id, "lead_key": f"lk_bulk{n:07d}", "assignment_id": assignment_id}
        rows.append({**template, **ids, "document": {**template["document"], **ids}})
    return rows


async def insert_pending(store: Store, count: int, due_at: datetime) -> None:
    rows = pending_rows(count, due_at)
    for start in range(0, count, CHUNK):
        async with store.transaction() as tx:
            await tx.connection.execute(insert(sla_clocks), rows[start : start + CHUNK])
