"""Ingest's HTTP routes on the runtime: what the composition root mounts on the public API."""

from __future__ import annotations

from fastapi import APIRouter

from leadrelay.runtime.service import Runtime
from services.ingest.gateway import Gateway
from services.ingest.metrics import IngestMetrics
from services.ingest.routes import ingest_router


def build_router(runtime: Runtime, metrics: IngestMetrics) -> APIRouter:
    """The event and webhook routes, producing through ``runtime``; ``metrics`` are shared with
    the API's request counting, which covers every route."""
    return ingest_router(Gateway(runtime, metrics))
