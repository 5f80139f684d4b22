"""``/healthz``, ``/readyz`` and ``/metrics``: what orchestrators and Prometheus ask every service.

Liveness says only "the process answers"; readiness says "the broker and the database answer",
so a load balancer stops sending webhooks to an instance that could not make them durable.
The metrics name reps and count their leads, so they are served only on the metrics listener
(:func:`ops_app`, ``LEADRELAY_METRICS_PORT``), never on the public API port.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[object]]
READINESS_TIMEOUT_SECONDS = 3.0


def health_router(
    checks: Mapping[str, ReadinessCheck], clock: Callable[[], datetime] | None = None
) -> APIRouter:
    """``/healthz`` and ``/readyz``: safe on the public port (they name no lead and no rep).

    With ``clock``, ``/healthz`` also says what time the services think it is (``now``), so a
    client of an instance on an accelerated demo clock can stamp its events in that clock.
    """
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process is up and its event loop answers; ``now`` is its clock."""
        if clock is None:
            return {"status": "ok"}
        return {"status": "ok", "now": clock().isoformat()}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: every dependency (broker, database) answered within a few seconds."""
        results = await asyncio.gather(*(_check(name, c) for name, c in checks.items()))
        failures = {name: error for name, error in results if error is not None}
        body = {
            "status": "ready" if not failures else "not ready",
            "checks": {name: failures.get(name, "ok") for name in checks},
        }
        return JSONResponse(body, status_code=200 if not failures else 503)

    return router


def metrics_router(registry: CollectorRegistry) -> APIRouter:
    """``/metrics``: per-rep counts and rep ids, so only ever on the metrics listener."""
    router = APIRouter(tags=["operations"])

    @router.get("/metrics")
    async def metrics() -> Response:
        """Prometheus exposition of this process's metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


async def _check(name: str, check: ReadinessCheck) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(check(), timeout=READINESS_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - any failure means "not ready", reported by name
        log.warning("readiness check %s failed: %r", name, error)
        return name, f"{type(error).__name__}: {error}"[:300]
    return name, None


def ops_app(
    registry: CollectorRegistry,
    checks: Mapping[str, ReadinessCheck],
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The metrics listener (``LEADRELAY_METRICS_PORT``) of every process: the three routes."""
    app = FastAPI(
        title="LeadRelay operations",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    app.include_router(health_router(checks, clock))
    app.include_router(metrics_router(registry))
    return app
