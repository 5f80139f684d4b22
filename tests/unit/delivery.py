"""The one delivery harness every service's unit tests use: what the consume loop does, minus Kafka.

``deliver`` validates each event against its schema and applies it through the runtime's
exactly-once step (:func:`~leadrelay.runtime.consumer.apply_new`: inbox and handler in one
transaction), one transaction per event, so tests see the runtime's dedupe; ``deliver_batch``
applies several events in ONE transaction, as the consume loop does with a partition's batch;
``apply`` runs the handler alone, to show what a handler does with a fact it has already seen.
``published`` reads back what the handlers queued in the outbox, oldest first.

Handlers may be given as the service's :class:`~leadrelay.runtime.consumer.EventHandlers` or as
a table from event type to per-event handler.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.schemas import validate_event
from leadrelay.runtime.consumer import EventHandlers, Handler, apply_new
from leadrelay.store.tables import outbox
from leadrelay.store.unit_of_work import Store

Handlers = EventHandlers | Mapping[str, Handler]


def _batch(handlers: Handlers) -> EventHandlers:
    return handlers if isinstance(handlers, EventHandlers) else EventHandlers.per_event(handlers)


async def deliver(store: Store, consumer: str, handlers: Handlers, *events: CloudEvent) -> None:
    """Each event validated, once per id for ``consumer``, in its own transaction."""
    for event in events:
        await deliver_batch(store, consumer, handlers, event)


async def deliver_batch(
    store: Store, consumer: str, handlers: Handlers, *events: CloudEvent
) -> list[bool]:
    """The events validated and applied in one transaction, once per id for ``consumer``;
    which of them were new."""
    for event in events:
        validate_event(event)
    async with store.transaction() as tx:
        return await apply_new(tx, consumer, _batch(handlers), events)


async def apply(store: Store, handlers: Handlers, event: CloudEvent) -> None:
    """The handler alone, in a transaction, without the inbox."""
    async with store.transaction() as tx:
        await _batch(handlers).apply([event], tx)


async def published(store: Store, topic: str) -> list[CloudEvent]:
    """Every event queued for ``topic`` so far, oldest first."""
    async with store.engine.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.payload).where(outbox.c.topic == topic).order_by(outbox.c.id)
        )
        return [CloudEvent.from_bytes(payload) for (payload,) in rows]
