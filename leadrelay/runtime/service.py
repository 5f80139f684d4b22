"""Runs services: builds the process's adapters once and starts each service's loops on them.

A service is data (:class:`ServiceSpec`): its consumer group, the topics it reads, its
:class:`~leadrelay.runtime.consumer.EventHandlers` (the event types it handles and the batch
handler that applies them) and optional background tasks. ``leadrelay run X`` runs one spec,
``leadrelay up`` runs them all in one process on shared adapters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import CollectorRegistry

from leadrelay.contracts.topics import Topic, topic_name
from leadrelay.metrics import RuntimeMetrics
from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.consumer import ConsumerConfig, ConsumerLoop, EventHandlers
from leadrelay.runtime.periodic import repeat
from leadrelay.runtime.producer import EventProducer
from leadrelay.runtime.topics import ensure_topics
from leadrelay.settings import Settings
from leadrelay.store.engine import create_engine_for
from leadrelay.store.outbox_relay import OutboxRelay
from leadrelay.store.retention import state_retention
from leadrelay.store.unit_of_work import Clock, Store, utc_now

log = logging.getLogger(__name__)

BackgroundTask = Callable[[asyncio.Event], Awaitable[None]]
BACKLOG_REPORT_SECONDS = 5.0


@dataclass(frozen=True)
class ServiceSpec:
    """What one service consumes and how it reacts."""

    name: str
    consumes: Sequence[Topic]
    handlers: EventHandlers
    background: Sequence[BackgroundTask] = field(default_factory=tuple)


@dataclass
class Runtime:
    """The adapters one process shares between its services."""

    settings: Settings
    store: Store
    producer: EventProducer
    registry: CollectorRegistry
    metrics: RuntimeMetrics
    closing: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """What adapters built on this runtime must finish first (e.g. ingest's history writes)."""

    def topic(self, topic: Topic) -> str:
        """The configured name of a contract topic."""
        return topic_name(topic, self.settings.topic_prefix)

    def readiness_checks(self) -> dict[str, Callable[[], Awaitable[object]]]:
        """What ``/readyz`` asks: can we reach the database, and does the broker answer."""
        dead_letter = self.topic(Topic.DEAD_LETTER)
        return {
            "database": self.store.ping,
            "broker": lambda: self.producer.partitions_for(dead_letter),
        }

    async def close(self) -> None:
        """Finish what was registered in ``closing`` (newest first), then release the broker
        connection and the database pool."""
        for finish in reversed(self.closing):
            await finish()
        await self.producer.stop()
        await self.store.dispose()


async def open_runtime(
    settings: Settings, *, clock: Clock = utc_now, registry: CollectorRegistry | None = None
) -> Runtime:
    """Connect to the database and the broker and make sure every contract topic exists."""
    bootstrap = require_bootstrap(settings)
    await ensure_topics(
        bootstrap,
        [topic_name(t, settings.topic_prefix) for t in Topic],
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
    )
    producer = EventProducer(
        bootstrap,
        idempotence=settings.kafka_idempotence,
        request_timeout_ms=int(settings.produce_timeout_seconds * 1000),
    )
    await producer.start()
    registry = registry or CollectorRegistry()
    store = Store(create_engine_for(settings.database_url), clock=clock)
    return Runtime(settings, store, producer, registry, RuntimeMetrics.create(registry))


def require_bootstrap(settings: Settings) -> str:
    """The broker address, or a clear error for a service started without one."""
    if not settings.kafka_bootstrap:
        raise RuntimeError(
            "LEADRELAY_KAFKA_BOOTSTRAP is not set (only `leadrelay up` starts an embedded broker)"
        )
    return settings.kafka_bootstrap


def backoff_policy(settings: Settings) -> BackoffPolicy:
    """The process's one back-off policy, from ``LEADRELAY_RETRY_BACKOFF_SECONDS`` and
    ``LEADRELAY_BROKER_BACKOFF_MAX_SECONDS``."""
    return BackoffPolicy(settings.retry_backoff_seconds, settings.broker_backoff_max_seconds)


def consumer_for(runtime: Runtime, spec: ServiceSpec) -> ConsumerLoop:
    """The consume loop of ``spec`` on ``runtime``'s adapters."""
    settings = runtime.settings
    config = ConsumerConfig(
        group=f"{settings.topic_prefix}{spec.name}",
        topics=[runtime.topic(t) for t in spec.consumes],
        dead_letter_topic=runtime.topic(Topic.DEAD_LETTER),
        batch_size=settings.consumer_batch_size,
        transaction_batch=settings.consumer_transaction_batch,
        handler_max_attempts=settings.handler_max_attempts,
        backoff=backoff_policy(settings),
        group_instance_id=(
            f"{spec.name}-{settings.instance_id}" if settings.instance_id is not None else None
        ),
    )
    return ConsumerLoop(
        config,
        bootstrap=require_bootstrap(settings),
        handlers=spec.handlers,
        store=runtime.store,
        producer=runtime.producer,
        metrics=runtime.metrics,
    )


async def run_services(runtime: Runtime, specs: Sequence[ServiceSpec], stop: asyncio.Event) -> None:
    """Run every spec's consumer and background tasks plus one outbox relay and the inbox and
    outbox retention sweep, until ``stop``.

    If any task dies, the others are stopped too: a half-running service is worse than a
    stopped one, because its orchestrator would not restart it.
    """
    settings = runtime.settings
    relay = OutboxRelay(
        runtime.store,
        runtime.producer,
        batch_size=settings.outbox_batch_size,
        metrics=runtime.metrics,
    )
    coroutines: list[Awaitable[None]] = [
        relay.run(
            stop, poll_seconds=settings.outbox_poll_seconds, backoff=backoff_policy(settings)
        ),
        report_outbox_backlog(runtime.store, runtime.metrics, stop),
    ]
    retention = state_retention(
        runtime.store,
        runtime.metrics,
        retention=timedelta(days=settings.state_retention_days),
        every_seconds=settings.retention_sweep_seconds,
    )
    coroutines.extend(sweep.run(stop) for sweep in retention.values())
    for spec in specs:
        if spec.consumes:
            coroutines.append(consumer_for(runtime, spec).run(stop))
        coroutines.extend(task(stop) for task in spec.background)
    tasks: list[asyncio.Task[None]] = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                log.error("a service task died: %r", task.exception())
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def report_outbox_backlog(store: Store, metrics: RuntimeMetrics, stop: asyncio.Event) -> None:
    """Keep the outbox backlog gauge current until ``stop``.

    A database outage is exactly when the gauge matters, so it is waited out (the runtime's
    back-off policy) rather than allowed to end the task and, with it, the process.
    """

    async def report() -> None:
        metrics.outbox_backlog.set(await store.outbox_backlog())

    await repeat(stop, report, every=BACKLOG_REPORT_SECONDS, name="outbox backlog gauge")
