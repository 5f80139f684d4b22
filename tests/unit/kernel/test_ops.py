"""Operational routes: liveness, readiness naming what is down, Prometheus exposition."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from prometheus_client import CollectorRegistry, Counter

from leadrelay.ops import ops_app


async def _ok() -> None:
    return None


async def _database_down() -> None:
    raise ConnectionRefusedError("connection refused")


async def _hangs() -> None:
    await asyncio.Event().wait()


def client(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_ready_when_every_dependency_answers() -> None:
    async with client(ops_app(CollectorRegistry(), {"database": _ok, "broker": _ok})) as http:
        response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


async def test_not_ready_names_the_dependency_that_failed(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("leadrelay.ops.READINESS_TIMEOUT_SECONDS", 0.05)
    checks = {"database": _database_down, "broker": _hangs}
    async with client(ops_app(CollectorRegistry(), checks)) as http:
        response = await http.get("/readyz")
        alive = await http.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"].startswith("ConnectionRefusedError")
    assert body["checks"]["broker"].startswith("TimeoutError")
    assert alive.status_code == 200  # liveness does not depend on dependencies


async def test_metrics_expose_the_process_registry() -> None:
    registry = CollectorRegistry()
    Counter("leadrelay_things", "Things", registry=registry).inc(3)
    async with client(ops_app(registry, {})) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert "leadrelay_things_total 3.0" in response.text


async def test_liveness_tells_the_services_clock_when_given_one() -> None:
    demo_now = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    async with client(ops_app(CollectorRegistry(), {}, lambda: demo_now)) as http:
        response = await http.get("/healthz")
    assert response.json() == {"status": "ok", "now": "2031-05-06T07:08:09+00:00"}
