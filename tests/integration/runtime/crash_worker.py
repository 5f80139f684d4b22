"""A consumer process that can be told to die at the worst moments (run as a subprocess).

``--crash after-db-commit:N``: ``os._exit`` right after the N-th handler transaction commits,
before Kafka offsets are committed. ``--crash before-publish``: ``os._exit`` when the outbox
relay is about to send, after the handler transactions committed. Without ``--crash`` it runs
until every expected input has its effect and the outbox is drained, then stops cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry

from leadrelay.metrics import RuntimeMetrics
from leadrelay.runtime.consumer import ConsumerConfig, ConsumerLoop, EventHandlers
from leadrelay.runtime.producer import EventProducer
from leadrelay.store.engine import create_engine_for
from leadrelay.store.outbox_relay import OutboxRelay, RawPublisher
from leadrelay.store.unit_of_work import Store, Transaction
from tests.integration.runtime.effects import create_effects_table, effect_counts, make_handler

CRASH_EXIT_CODE = 17


class CrashAfterCommits(Store):
    """A real store whose process dies right after its N-th committed transaction."""

    def __init__(self, *args: object, commits_before_crash: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._remaining = commits_before_crash

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with super().transaction() as tx:
            yield tx
        self._remaining -= 1
        if self._remaining == 0:
            os._exit(CRASH_EXIT_CODE)


class CrashBeforePublish:
    """A publisher that kills the process instead of sending."""

    async def send_batch(
        self, messages: Sequence[tuple[str, str | None, bytes]]
    ) -> list[BaseException | None]:
        os._exit(CRASH_EXIT_CODE)


async def main(args: argparse.Namespace) -> None:
    engine = create_engine_for(args.database_url)
    await create_effects_table(engine)
    crash_kind, _, crash_arg = (args.crash or "").partition(":")
    store = (
        CrashAfterCommits(engine, commits_before_crash=int(crash_arg))
        if crash_kind == "after-db-commit"
        else Store(engine)
    )
    producer = EventProducer(args.bootstrap)
    await producer.start()
    loop = ConsumerLoop(
        ConsumerConfig(
            group=args.group,
            topics=[args.topic],
            dead_letter_topic=args.dlq,
            batch_size=50,
            transaction_batch=4,
            # static membership: the restarted worker takes the killed one's partitions at once
            # instead of waiting out its session (one worker runs at a time)
            group_instance_id="crash-worker",
        ),
        bootstrap=args.bootstrap,
        handlers=EventHandlers.per_event(
            {"leadrelay.sales_activity.v1": make_handler(args.out_topic, args.group)}
        ),
        store=store,
        producer=producer,
        metrics=RuntimeMetrics.create(CollectorRegistry()),
    )
    publisher: RawPublisher = CrashBeforePublish() if crash_kind == "before-publish" else producer
    relay = OutboxRelay(store, publisher)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(loop.run(stop)), asyncio.create_task(relay.run(stop))]
    try:
        while True:
            done = len(await effect_counts(engine)) >= args.expect
            if done and await store.outbox_backlog() == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await producer.stop()
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("--bootstrap", "--database-url", "--topic", "--out-topic", "--dlq", "--group"):
        parser.add_argument(name, required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--crash")
    asyncio.run(main(parser.parse_args()))
