"""The one delivery harness every service's unit tests use: what the consume loop does, minus Kafka.

``deliver`` validates each event against its schema, records its id in the inbox and runs its
handler in the same transaction, so tests see the runtime's dedupe; ``apply`` runs the handler
alone, to show what a handler does with a fact it has already seen. ``published`` reads back what
the handlers queued in the outbox, oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.schemas import validate_event
from leadrelay.runtime.consumer import Handler
from leadrelay.store.tables import outbox
from leadrelay.store.unit_of_work import Store


async def deliver(
    store: Store, consumer: str, handlers: Mapping[str, Handler], *events: CloudEvent
) -> None:
    """Each event validated, once per id for ``consumer``, in its own transaction."""
    for event in events:
        validate_event(event)
        async with store.transaction() as tx:
            if await tx.mark_processed(consumer, event.id):
                await handlers[event.type](event, tx)


async def apply(store: Store, handlers: Mapping[str, Handler], event: CloudEvent) -> None:
    """The handler alone, in a transaction, without the inbox."""
    async with store.transaction() as tx:
        await handlers[event.type](event, tx)


async def published(store: Store, topic: str) -> list[CloudEvent]:
    """Every event queued for ``topic`` so far, oldest first."""
    async with store.engine.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.payload).where(outbox.c.topic == topic).order_by(outbox.c.id)
        )
        return [CloudEvent.from_bytes(payload) for (payload,) in rows]
