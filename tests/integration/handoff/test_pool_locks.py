"""No global lock: each rotation pool has its own row, and the roster lives in memory.

On PostgreSQL, a decision holding one pool's lock holds up decisions of that pool only; one of
another pool commits meanwhile. On both databases, a roster change made by another process
reaches the next decision through the roster version, without a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from leadrelay.app.definitions import Definitions
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store
from services.handoff.handlers import HandoffHandlers
from services.handoff.metrics import HandoffMetrics
from services.handoff.repository import lock_rotations, put_rep
from services.handoff.tables import assignments, rotation
from services.sla_monitor.domain import AnnouncedDeadlines
from tests.harness.postgres import scratch_database
from tests.unit.handoff.builders import make_rep
from tests.unit.handoff.support import definitions_with, sales_ready

DEFINITIONS = definitions_with(
    [make_rep("sdr-a"), make_rep("sdr-b"), make_rep("ae-a", role="ae", team="enterprise")]
)
ENTERPRISE = 5000
"""Employees: the shipped rules send an enterprise lead to the AE pool."""


@dataclass
class Process:
    """One hand-off process's handlers on its own engine (its own roster cache)."""

    store: Store
    handlers: HandoffHandlers

    async def apply(self, *events: CloudEvent) -> None:
        async with self.store.transaction() as tx:
            await self.handlers.apply(list(events), tx)

    async def reps_of(self, *lead_keys: str) -> list[str | None]:
        query = select(assignments.c.lead_key, assignments.c.rep_id)
        async with self.store.engine.connect() as connection:
            found = {key: rep for key, rep in await connection.execute(query)}
        return [found.get(key) for key in lead_keys]


@pytest.fixture
async def postgres_database(postgres_url: str) -> AsyncIterator[str]:
    async with scratch_database(postgres_url) as url:
        yield url


async def process(url: str, definitions: Definitions = DEFINITIONS) -> Process:
    handlers = HandoffHandlers(
        definitions.routing,
        definitions.roster,
        AnnouncedDeadlines(definitions.sla),
        "assignments",
        HandoffMetrics.create(CollectorRegistry()),
    )
    return Process(Store(create_engine_for(url)), handlers)


async def test_a_pool_held_by_one_decision_holds_up_only_that_pools_decisions(
    postgres_database: str,
) -> None:
    await upgrade_async(postgres_database)
    handoff = await process(postgres_database)
    try:
        await handoff.apply(sales_ready("lk_warm"))  # seeds the roster and the sdr pool's row
        holder = handoff.store.transaction()
        tx = await holder.__aenter__()
        await lock_rotations(tx.connection, ["sdr:*"], tx.now())
        try:
            sdr = asyncio.create_task(handoff.apply(sales_ready("lk_sdr")))
            await handoff.apply(sales_ready("lk_ae", company_size=ENTERPRISE))
            assert await handoff.reps_of("lk_ae", "lk_sdr") == ["ae-a", None]
            assert not sdr.done()  # still waiting for the sdr pool's row
        finally:
            await holder.__aexit__(None, None, None)
        await asyncio.wait_for(sdr, timeout=30)
        assert await handoff.reps_of("lk_sdr") == ["sdr-b"]
    finally:
        await handoff.store.dispose()


async def test_each_pool_keeps_its_own_rotation_row_and_version(database_url: str) -> None:
    await upgrade_async(database_url)
    handoff = await process(database_url)
    try:
        await handoff.apply(sales_ready("lk_1"), sales_ready("lk_2"))
        await handoff.apply(sales_ready("lk_3", company_size=ENTERPRISE))
        query = select(rotation.c.pool, rotation.c.version, rotation.c.credits)
        async with handoff.store.engine.connect() as connection:
            rows = {
                pool: (version, credits)
                for pool, version, credits in await connection.execute(query)
            }
    finally:
        await handoff.store.dispose()
    assert rows == {"sdr:*": (2, {"sdr-a": 0, "sdr-b": 0}), "ae:*": (1, {"ae-a": 0})}


async def test_a_roster_change_by_another_process_reaches_the_next_decision(
    database_url: str,
) -> None:
    await upgrade_async(database_url)
    router, editor = await process(database_url), await process(database_url)
    try:
        await router.apply(sales_ready("lk_1"))  # the router now keeps the roster in memory
        async with editor.store.transaction() as tx:
            await put_rep(tx.connection, make_rep("sdr-a", active=False), tx.now())
        await router.apply(sales_ready("lk_2"), sales_ready("lk_3"))
        assert await router.reps_of("lk_1", "lk_2", "lk_3") == ["sdr-a", "sdr-b", "sdr-b"]
    finally:
        await router.store.dispose()
        await editor.store.dispose()


async def test_a_decision_during_a_roster_change_sees_the_roster_before_it_then_after(
    postgres_database: str,
) -> None:
    """A change commits its entries and its version together: a decision never sees one
    without the other, and never waits for the change."""
    await upgrade_async(postgres_database)
    router, editor = await process(postgres_database), await process(postgres_database)
    try:
        await router.apply(sales_ready("lk_1"))
        changing = editor.store.transaction()
        tx = await changing.__aenter__()
        try:
            await put_rep(tx.connection, make_rep("sdr-b", active=False), tx.now())
            await router.apply(sales_ready("lk_2"))  # the change is not committed yet
        finally:
            await changing.__aexit__(None, None, None)
        await router.apply(sales_ready("lk_3"))
        assert await router.reps_of("lk_1", "lk_2", "lk_3") == ["sdr-a", "sdr-b", "sdr-a"]
    finally:
        await router.store.dispose()
        await editor.store.dispose()
