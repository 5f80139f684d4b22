"""How a process runs some or all of the registered services (``leadrelay run X``, ``up``).

Tests use the same pieces (:func:`service_specs`, :func:`leadrelay.app.api.create_api`) on their
own runtime; which services exist is :mod:`leadrelay.app.registry`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI

from leadrelay.app.api import create_api
from leadrelay.app.definitions import Definitions, load_definitions
from leadrelay.app.registry import CONSUMER_SERVICES
from leadrelay.app.schema import ensure_schema_current, upgrade_async
from leadrelay.ops import ops_app
from leadrelay.process import freeze_startup_heap, serve_http, stop_on_signals
from leadrelay.runtime.service import Runtime, ServiceSpec, open_runtime, run_services
from leadrelay.runtime.waiting import pause
from leadrelay.settings import Settings
from leadrelay.store.unit_of_work import accelerated_clock

log = logging.getLogger("leadrelay")

DRAIN_SECONDS = 15.0


def service_specs(
    runtime: Runtime, definitions: Definitions, names: Sequence[str]
) -> list[ServiceSpec]:
    """The consumer services among ``names``, built on ``runtime`` from the registry."""
    specs = []
    for name in names:
        entry = CONSUMER_SERVICES.get(name)
        if entry is not None and entry.consumer is not None:
            specs.append(entry.consumer(runtime, definitions))
    return specs


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
    checks = runtime.readiness_checks()
    listeners = [(ops_app(runtime.registry, checks, runtime.store.clock), settings.metrics_port)]
    if "ingest" in names:
        listeners.insert(0, (create_api(runtime, definitions), settings.http_port))
    work_stop = asyncio.Event()  # set once intake stopped (and, if asked, the backlog drained)
    workers = asyncio.create_task(
        run_services(runtime, service_specs(runtime, definitions, names), work_stop)
    )
    http = await _listen(listeners, settings.http_host, intake_stop)
    freeze_startup_heap()
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
