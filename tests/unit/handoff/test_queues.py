"""A queue people can work: queued leads go to a rep as soon as one is eligible, oldest first;
the queue API lists queues and their leads and lets a rep claim one; depth and age are metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.handoff.api import queue_router
from services.handoff.tables import assignments
from tests.unit.handoff.builders import make_rep
from tests.unit.handoff.support import (
    NOW,
    HandoffHarness,
    definitions_with,
    handoff_harness,
    sales_ready,
)
from tests.unit.sla_monitor.support import sales_activity

QUEUE = "unassigned-leads"
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ONE_OPEN_LEAD = {"capacity": {"open": 1}}


@pytest.fixture
async def busy_rep(tmp_path: Path) -> AsyncIterator[HandoffHarness]:
    """One SDR who can hold one open lead: ``lk_1`` takes her slot, ``lk_2``/``lk_3`` queue."""
    definitions = definitions_with([make_rep("sdr-a", **ONE_OPEN_LEAD)])
    async with handoff_harness(tmp_path, definitions) as harness:
        for minute, lead in enumerate(("lk_1", "lk_2", "lk_3")):
            harness.clock.now = NOW + timedelta(minutes=minute)
            await harness.deliver(sales_ready(lead))
        yield harness


async def rows(h: HandoffHarness) -> int:
    async with h.store.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(assignments)) or 0)


async def route_queued(h: HandoffHarness) -> int:
    async with h.store.transaction() as tx:
        return await h.handlers.route_queued(tx)


async def test_queued_leads_wait_without_new_rows_while_nobody_is_eligible(
    busy_rep: HandoffHarness,
) -> None:
    assert [e.data["route"] for e in await busy_rep.assigned()] == [
        "round_robin",
        *["fallback"] * 2,
    ]

    assert await route_queued(busy_rep) == 0
    assert await rows(busy_rep) == 3  # trying again records nothing
    assert busy_rep.metric("leadrelay_handoff_queue_depth", queue=QUEUE) == 2
    assert busy_rep.metric("leadrelay_handoff_queue_oldest_age_seconds", queue=QUEUE) == 60


async def test_freed_capacity_takes_the_oldest_queued_lead_first(busy_rep: HandoffHarness) -> None:
    busy_rep.clock.now = NOW + timedelta(hours=1)
    await busy_rep.deliver(sales_activity("won", "sdr-a", NOW, lead_key="lk_1"))

    assert await route_queued(busy_rep) == 1

    *_, routed = await busy_rep.assigned()
    assert (routed.data["lead_key"], routed.data["rep_id"], routed.data["attempt"]) == (
        "lk_2",
        "sdr-a",
        2,
    )
    assert busy_rep.metric("leadrelay_handoff_queue_depth", queue=QUEUE) == 1


@pytest.fixture
async def client(busy_rep: HandoffHarness) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.api_token = TOKEN
    app.include_router(queue_router(busy_rep.store, busy_rep.handlers))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_the_queue_api_lists_queues_and_their_leads_oldest_first(
    busy_rep: HandoffHarness, client: httpx.AsyncClient
) -> None:
    busy_rep.clock.now = NOW + timedelta(minutes=10)

    queues = (await client.get("/v1/queues", headers=AUTH)).json()["queues"]
    one = (await client.get(f"/v1/queues/{QUEUE}", headers=AUTH)).json()

    assert queues == [{"queue": QUEUE, "depth": 2, "oldest_age_seconds": 540.0}]
    assert [(lead["lead_key"], lead["age_seconds"]) for lead in one["leads"]] == [
        ("lk_2", 540.0),
        ("lk_3", 480.0),
    ]
    assert (await client.get("/v1/queues")).status_code == 401


async def test_a_rep_claims_a_queued_lead_and_it_is_theirs(
    busy_rep: HandoffHarness, client: httpx.AsyncClient
) -> None:
    claim = f"/v1/queues/{QUEUE}/lk_3/claim"

    claimed = await client.post(claim, json={"rep_id": "sdr-a"}, headers=AUTH)
    again = await client.post(claim, json={"rep_id": "sdr-a"}, headers=AUTH)
    nobody = await client.post(f"/v1/queues/{QUEUE}/lk_2/claim", json={"rep_id": "x"}, headers=AUTH)

    assert claimed.status_code == 200
    *_, event = await busy_rep.assigned()
    assert (event.data["lead_key"], event.data["rep_id"], event.data["attempt"]) == (
        "lk_3",
        "sdr-a",
        2,
    )
    assert event.data["trace"]["steps"][0]["outcome"] == "claimed"
    assert again.status_code == 404  # no longer queued
    assert nobody.status_code == 422
    depth = (await client.get(f"/v1/queues/{QUEUE}", headers=AUTH)).json()["depth"]
    assert depth == 1
