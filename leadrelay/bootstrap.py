"""The composition root: which services exist, and how a process runs some or all of them.

``leadrelay run X`` and ``leadrelay up`` both come here; tests use the same pieces
(:func:`service_specs`, :func:`create_api`) on their own runtime.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI

from leadrelay.definitions import Definitions, load_definitions
from leadrelay.lead_view import LeadViewPart, lead_view_router
from leadrelay.ops import ops_app
from leadrelay.process import serve_http, stop_on_signals
from leadrelay.runtime.service import Runtime, ServiceSpec, open_runtime, run_services
from leadrelay.runtime.waiting import pause
from leadrelay.settings import Settings
from leadrelay.store.migrate import ensure_schema_current, upgrade_async
from leadrelay.store.unit_of_work import accelerated_clock

log = logging.getLogger("leadrelay")

CONSUMER_SERVICES = {
    "scoring": "services.scoring.service",
    "handoff": "services.handoff.service",
    "sla-monitor": "services.sla_monitor.service",
}
"""Each module has ``build_service(runtime, definitions) -> ServiceSpec``."""
SERVICES = ("ingest", *CONSUMER_SERVICES)
LEAD_VIEW_PARTS = ("services.handoff.read_model", "services.sla_monitor.read_model")
"""Each module has ``lead_view(connection, lead_key)``; they follow scoring's part, which owns
the lead and is bound in :func:`create_api` to the scorecard and the runtime's clock."""
API_ROUTER_MODULES = ("services.handoff.api",)
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
    routers = [lead_view_router(runtime.store, parts)]
    routers += [
        importlib.import_module(m).build_router(runtime, definitions) for m in API_ROUTER_MODULES
    ]
    return create_app(runtime, definitions, routers)


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
    listeners = [(ops_app(runtime.registry, runtime.readiness_checks()), settings.metrics_port)]
    if "ingest" in names:
        listeners.insert(0, (create_api(runtime, definitions), settings.http_port))
    work_stop = asyncio.Event()  # set once intake stopped (and, if asked, the backlog drained)
    workers = asyncio.create_task(
        run_services(runtime, service_specs(runtime, definitions, names), work_stop)
    )
    http = await _listen(listeners, settings.http_host, intake_stop)
    _announce(settings, public="ingest" in names)
    await asyncio.wait({*http, workers}, return_when=asyncio.FIRST_COMPLETED)
    intake_stop.set()
    await asyncio.gather(*http)
    if drain and not workers.done():
        await _drain(runtime, workers)
    work_stop.set()
    await workers


async def _listen(
    listeners: Sequence[tuple[FastAPI, int]], host: str, stop: asyncio.Event
) -> list[asyncio.Task[None]]:
    """Serve every ``(app, port)`` until ``stop``; returns once all of them listen."""
    tasks = []
    for app, port in listeners:
        listening = asyncio.Event()
        tasks.append(asyncio.create_task(serve_http(app, host, port, stop, listening)))
        await listening.wait()
    return tasks


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


def _announce(settings: Settings, *, public: bool) -> None:
    """Where each listener is: the API port faces senders, the metrics port only operators."""
    if public:
        base = f"http://{settings.http_host}:{settings.http_port}"
        log.info("API      %s  (public: webhooks; OpenAPI docs at %s/docs)", base, base)
    metrics = f"http://{settings.http_host}:{settings.metrics_port}"
    log.info("metrics  %s/metrics  (private: keep it off the internet)", metrics)
    log.info("broker   %s", settings.kafka_bootstrap)
    log.info("database %s", settings.database_url.split("@")[-1])
