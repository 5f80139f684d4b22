"""``GET /v1/leads/{lead_id}`` over HTTP, on the app ``leadrelay up`` serves, backed by SQLite.

Scoring's handlers fill the store (as in ``test_service_handlers``); the app comes from
``create_api``, so the test sees the route exactly as wired in production: its bearer token,
its 404, and engagement decayed to the moment of the request on the runtime's clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

import leadrelay.app.tables  # noqa: F401  (every read model's tables, for create_all)
from leadrelay.app.api import create_api
from leadrelay.app.definitions import load_definitions
from leadrelay.metrics import RuntimeMetrics
from leadrelay.runtime.producer import EventProducer
from leadrelay.runtime.service import Runtime
from leadrelay.settings import load_settings
from leadrelay.store.unit_of_work import Store
from tests.unit.scoring.service_events import ADA_KEY, DEMO_AT, HALF_LIFE, ada_journey
from tests.unit.scoring.support import ScoringHarness, scoring_harness

TOKEN = "lead-view-test-token"
AUTHORIZED = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class LeadApi:
    scoring: ScoringHarness
    http: httpx.AsyncClient

    async def lead(self, lead_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/leads/{lead_id}", headers=AUTHORIZED)
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[LeadApi]:
    async with scoring_harness(tmp_path) as scoring:
        runtime = _runtime(scoring.store)
        app = create_api(runtime, load_definitions())
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://lr.test") as http:
                yield LeadApi(scoring, http)
        finally:
            await runtime.producer.stop()


def _runtime(store: Store) -> Runtime:
    """The runtime the app borrows; its producer is never started (reads need no broker)."""
    registry = CollectorRegistry()
    return Runtime(
        settings=load_settings(api_token=TOKEN),
        store=store,
        producer=EventProducer("127.0.0.1:9"),
        registry=registry,
        metrics=RuntimeMetrics.create(registry),
    )


async def test_the_lead_view_needs_the_bearer_token(api: LeadApi) -> None:
    api.scoring.clock.now = DEMO_AT
    await api.scoring.deliver(*ada_journey())

    anonymous = await api.http.get(f"/v1/leads/{ADA_KEY}")
    wrong = await api.http.get(f"/v1/leads/{ADA_KEY}", headers={"Authorization": "Bearer nope"})

    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert "ada@acme.example" not in anonymous.text + wrong.text
    assert (await api.lead(ADA_KEY))["profile"]["email"] == "ada@acme.example"


async def test_an_unknown_lead_is_404(api: LeadApi) -> None:
    response = await api.http.get("/v1/leads/lk_nobody", headers=AUTHORIZED)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_engagement_shown_decays_to_the_time_of_the_request(api: LeadApi) -> None:
    """Ada's last activity is at DEMO_AT; nothing happens after it, yet her score must fade."""
    api.scoring.clock.now = DEMO_AT
    await api.scoring.deliver(*ada_journey())
    fresh = await api.lead(ADA_KEY)

    api.scoring.clock.now = DEMO_AT + HALF_LIFE
    later = await api.lead(ADA_KEY)

    assert (fresh["engagement_score"], fresh["fit_score"]) == (46.0, 70.0)
    assert (later["engagement_score"], later["fit_score"]) == (23.0, 70.0)  # one half-life: half
    assert datetime.fromisoformat(later["scored_at"]) == DEMO_AT + HALF_LIFE
    assert later["stage"] == "mql"
