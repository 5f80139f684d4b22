"""The composition root: which services exist, and how a process runs some or all of them.

``leadrelay run X`` and ``leadrelay up`` both come here; tests use the same pieces
(:func:`service_specs`, :func:`create_api`) on their own runtime.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI

from leadrelay.api_docs import docs_router
from leadrelay.definitions import Definitions, load_definitions
from leadrelay.lead_view import LeadViewPart, lead_view_router, read_lead
from leadrelay.ops import ops_app
from leadrelay.process import serve_http, stop_on_signals
from leadrelay.runtime.service import Runtime, ServiceSpec, open_runtime, run_services
from leadrelay.runtime.waiting import pause
from leadrelay.settings import Settings
from leadrelay.store.migrate import ensure_schema_current, upgrade_async
from leadrelay.store.unit_of_work import Store, accelerated_clock
from services.reporting.console.pages import RepCard

log = logging.getLogger("leadrelay")

CONSUMER_SERVICES = {
    "scoring": "services.scoring.service",
    "handoff": "services.handoff.service",
    "sla-monitor": "services.sla_monitor.service",
    "reporting": "services.reporting.service",
}
"""Each module has ``build_service(runtime, definitions) -> ServiceSpec``."""
SERVICES = ("ingest", *CONSUMER_SERVICES)
LEAD_VIEW_PARTS = ("services.handoff.read_model", "services.sla_monitor.read_model")
"""Each module has ``lead_view(connection, lead_key)``; they follow scoring's part, which owns
the lead and is bound in :func:`create_api` to the scorecard and the runtime's clock."""
API_ROUTER_MODULES = ("services.handoff.api", "services.reporting.api")
"""Each module has ``build_router(runtime, definitions)``, mounted on the ingest app."""
DRAIN_SECONDS = 15.0


def service_specs(
    runtime: Runtime, definitions: Definitions, names: Sequence[str]
) -> list[ServiceSpec]:
    """The consumer services among ``names``, built on ``runtime``."""
    return [
        importlib.import_module(CONSUMER_SERVICES[name]).build_service(runtime, definitions)
        for name in names
        if name in CONSUMER_SERVICES
    ]


def create_api(runtime: Runtime, definitions: Definitions) -> FastAPI:
    """The public HTTP API: ingest routes, the lead view, the roster, operations."""
    from services.ingest.app import create_app
    from services.scoring.read_model import lead_view_at_request

    parts: list[LeadViewPart] = [
        lead_view_at_request(definitions.scorecard, runtime.store.clock),
        *(importlib.import_module(m).lead_view for m in LEAD_VIEW_PARTS),
    ]
    routers = [
        lead_view_router(runtime.store, parts),
        console_router(runtime, definitions, parts),
        docs_router(),
    ]
    routers += [
        importlib.import_module(m).build_router(runtime, definitions) for m in API_ROUTER_MODULES
    ]
    return create_app(runtime, definitions, routers)


def console_router(
    runtime: Runtime, definitions: Definitions, parts: Sequence[LeadViewPart]
) -> APIRouter:
    """The console on the reports, the lead view and hand-off's roster."""
    from services.reporting.console.routes import Console
    from services.reporting.service import reports_for

    async def lead(lead_key: str) -> dict[str, Any] | None:
        return await read_lead(runtime.store, parts, lead_key)

    reports = reports_for(runtime.store, definitions)
    return Console(reports, lead, HandoffRoster(runtime.store, definitions)).router()


@dataclass(frozen=True)
class HandoffRoster:
    """The console's roster port on hand-off's roster store (the API process owns both)."""

    store: Store
    definitions: Definitions

    async def reps(self) -> list[RepCard]:
        from services.handoff.roster_store import load_roster

        async with self.store.transaction() as tx:
            roster = await load_roster(tx.connection, self.definitions.roster, tx.now())
        return [_card(rep) for rep in roster.reps]

    async def set_active(self, rep_id: str, active: bool) -> bool:
        from services.handoff.roster_store import load_roster, put_rep

        async with self.store.transaction() as tx:
            roster = await load_roster(tx.connection, self.definitions.roster, tx.now())
            rep = next((r for r in roster.reps if r.id == rep_id), None)
            if rep is None:
                return False
            await put_rep(tx.connection, rep.model_copy(update={"active": active}), tx.now())
        log.info("console: rep %s marked %s", rep_id, "active" if active else "away")
        return True


def _card(rep: Any) -> RepCard:
    return RepCard(rep.id, rep.name, rep.role, rep.team, rep.weight, rep.capacity.daily,
                   rep.capacity.open, rep.active)  # fmt: skip


async def serve(names: Sequence[str], settings: Settings, *, embedded: bool) -> int:
    """Run the services ``names`` in this process until SIGINT or SIGTERM."""
    intake_stop = asyncio.Event()  # set by a signal: stop taking new work
    stop_on_signals(intake_stop)
    broker = None
    if embedded and not settings.kafka_bootstrap:
        from leadrelay.embedded_broker import EmbeddedBroker

        broker = await EmbeddedBroker.start(Path(".leadrelay") / "broker")
        settings = settings.model_copy(
            update={"kafka_bootstrap": broker.bootstrap, "kafka_idempotence": False}
        )
    try:
        await _prepare_schema(settings, migrate=embedded)
        definitions = load_definitions(settings.definitions)
        runtime = await open_runtime(settings, clock=accelerated_clock(settings.clock_speed))
        try:
            await _serve_until_stopped(
                runtime, definitions, names, intake_stop, drain=broker is not None
            )
        finally:
            await runtime.close()
    finally:
        if broker is not None:
            await broker.stop()
    log.info("stopped cleanly")
    return 0


async def _prepare_schema(settings: Settings, *, migrate: bool) -> None:
    if migrate:
        await upgrade_async(settings.database_url)
    else:
        await ensure_schema_current(settings.database_url)


async def _serve_until_stopped(
    runtime: Runtime,
    definitions: Definitions,
    names: Sequence[str],
    intake_stop: asyncio.Event,
    *,
    drain: bool,
) -> None:
    settings = runtime.settings
    if "ingest" in names:
        app, port = create_api(runtime, definitions), settings.http_port
    else:
        app, port = ops_app(runtime.registry, runtime.readiness_checks()), settings.metrics_port
    work_stop = asyncio.Event()  # set once intake stopped (and, if asked, the backlog drained)
    workers = asyncio.create_task(
        run_services(runtime, service_specs(runtime, definitions, names), work_stop)
    )
    listening = asyncio.Event()
    http = asyncio.create_task(serve_http(app, settings.http_host, port, intake_stop, listening))
    await listening.wait()
    _announce(settings, port)
    await asyncio.wait({http, workers}, return_when=asyncio.FIRST_COMPLETED)
    intake_stop.set()
    await http
    if drain and not workers.done():
        await _drain(runtime, workers)
    work_stop.set()
    await workers


async def _drain(runtime: Runtime, workers: asyncio.Task[None]) -> None:
    """Let consumers and the relay finish what was accepted before a memory-only broker stops."""
    log.info("draining: waiting up to %.0fs for consumers and the outbox", DRAIN_SECONDS)
    deadline = asyncio.get_running_loop().time() + DRAIN_SECONDS
    never = asyncio.Event()
    while asyncio.get_running_loop().time() < deadline and not workers.done():
        if await runtime.store.outbox_backlog() == 0 and _total_lag(runtime) == 0:
            return
        await pause(never, 0.2)
    log.warning("stopping with work left in the embedded broker; it will be lost")


def _total_lag(runtime: Runtime) -> float:
    return sum(
        sample.value
        for metric in runtime.metrics.consumer_lag.collect()
        for sample in metric.samples
    )


def _announce(settings: Settings, port: int) -> None:
    base = f"http://{settings.http_host}:{port}"
    log.info("API      %s  (OpenAPI docs at %s/docs)", base, base)
    log.info("metrics  %s/metrics", base)
    log.info("broker   %s", settings.kafka_bootstrap)
    log.info("database %s", settings.database_url.split("@")[-1])
