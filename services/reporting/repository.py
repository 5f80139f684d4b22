"""Saving the facts reporting consumed (the only writer of ``reporting_facts``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.store.engine import BuiltOnce, dialect_insert
from services.reporting.messages import Fact, dump_fact, fact_id, fact_time
from services.reporting.tables import reporting_facts

_KEEP_NEW = BuiltOnce(
    lambda connection: dialect_insert(connection, reporting_facts).on_conflict_do_nothing()
)
"""Built once (see leadrelay.store.engine.BuiltOnce): every consumer batch runs it."""


async def save_facts(connection: AsyncConnection, facts: Sequence[Fact]) -> None:
    """Insert facts in one statement; one already stored (same id) is left as it is."""
    if not facts:
        return
    rows = [
        {
            "event_id": fact_id(fact),
            "kind": type(fact).__name__,
            "lead_key": fact.lead_key,
            "at": fact_time(fact),
            "document": dump_fact(fact),
        }
        for fact in facts
    ]
    await connection.execute(_KEEP_NEW(connection), rows)
