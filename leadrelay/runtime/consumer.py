"""The consume loop: at-least-once delivery from Kafka, exactly-once effects in the database.

A service says what it consumes with :class:`EventHandlers`: the event types it handles and a
:data:`BatchHandler` that applies consecutive new events of one partition, in order, inside one
transaction. For each partition's records the loop decodes and validates them (a type the
service does not handle is skipped, a bad message dead-lettered), then in ONE database
transaction records the batch's ids in the inbox with one statement, passes only the events not
seen before to the handler (state change plus outbox rows, written with one statement at commit)
and commits. Offsets are committed to Kafka only after that, per partition, so a crash anywhere
re-delivers the messages and the inbox recognises them. If a batch fails it is rolled back and
its events are applied one at a time under the failure policy of
:mod:`leadrelay.runtime.failure`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from leadrelay.contracts.envelope import CloudEvent, decode_object
from leadrelay.contracts.schemas import ContractError, validate_event_dict
from leadrelay.metrics import RuntimeMetrics
from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.failure import DeadLetterReason, FailureClass, classify
from leadrelay.runtime.producer import EventProducer
from leadrelay.runtime.waiting import pause
from leadrelay.store.unit_of_work import Store, Transaction

log = logging.getLogger(__name__)

Handler = Callable[[CloudEvent, Transaction], Awaitable[None]]
"""Applies one event inside the given transaction; raising rolls the whole effect back."""

BatchHandler = Callable[[Sequence[CloudEvent], Transaction], Awaitable[None]]
"""Applies consecutive NEW events of one partition, in partition order, inside one transaction.

Raising rolls the whole batch back; the runtime then applies the events one at a time
(``apply([event], tx)``, each in its own transaction) under the failure policy, so a batch
handler must give the same result for a batch as for its events one by one."""


@dataclass(frozen=True)
class EventHandlers:
    """What a service consumes: the event types it handles and how it applies a batch of them.

    Events of other types on the service's topics are skipped (never passed to ``apply``, never
    recorded in its inbox). A batch handler does its work per batch: collect the keys the events
    touch, load their rows with one query, run the pure domain over the events in memory in
    order, write the changed rows back with one statement and queue events with
    ``tx.publish``.
    """

    event_types: frozenset[str]
    apply: BatchHandler

    @classmethod
    def per_event(cls, table: Mapping[str, Handler]) -> EventHandlers:
        """For services with no batch work to share: applies each event by its type's handler,
        in order, in the batch's transaction."""
        handlers = {str(event_type): handler for event_type, handler in table.items()}

        async def apply(events: Sequence[CloudEvent], transaction: Transaction) -> None:
            for event in events:
                await handlers[event.type](event, transaction)

        return cls(frozenset(handlers), apply)


async def apply_new(
    transaction: Transaction, consumer: str, handlers: EventHandlers, events: Sequence[CloudEvent]
) -> list[bool]:
    """The exactly-once step: record the events' ids in ``consumer``'s inbox with one statement
    and apply the ones not seen before, in order, with one ``handlers.apply`` call; for each
    event, whether it was applied (False: a duplicate, a repeat within ``events`` or a type
    ``handlers`` does not handle).

    The inbox rows, the effects and the outbox rows commit together with ``transaction`` or not
    at all. The consume loop, replay and the unit tests' delivery harness all apply events
    through here.
    """
    handled = [event for event in events if event.type in handlers.event_types]
    new_ids = set(await transaction.mark_all_processed(consumer, [e.id for e in handled]))
    applied: list[bool] = []
    fresh: list[CloudEvent] = []
    for event in events:
        is_new = event.type in handlers.event_types and event.id in new_ids
        if is_new:
            new_ids.discard(event.id)  # a second copy in the same batch is a duplicate
            fresh.append(event)
        applied.append(is_new)
    if fresh:
        await handlers.apply(fresh, transaction)
    return applied


@dataclass(frozen=True)
class _Ready:
    """A decoded, valid record of a type the service handles."""

    record: ConsumerRecord[bytes, bytes]
    event: CloudEvent


@dataclass(frozen=True)
class _Rejected:
    """A record that can never be applied, and why (it goes to the dead-letter topic)."""

    reason: DeadLetterReason
    error: Exception


@dataclass(frozen=True)
class ConsumerConfig:
    """How one service consumes: its group, its topics and the tuning knobs."""

    group: str
    topics: Sequence[str]
    dead_letter_topic: str
    batch_size: int = 200
    transaction_batch: int = 50
    """Consecutive events of a partition applied in one transaction (1: one each)."""
    handler_max_attempts: int = 3
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    """How long to wait after a failure of any kind: broker, database or handler."""
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    group_instance_id: str | None = None
    """Static group membership: a member restarted under the same id takes its partitions back
    at once instead of waiting for the session timeout. Must be unique within the group."""


class _FinishBatchesBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped base
    """Makes a rebalance wait until the revoked partitions' batches in progress have committed.

    aiokafka awaits this listener before rejoining the group, so retiring each revoked
    partition's worker here (it finishes the transaction in flight, commits its offset and drops
    what it had not started) means no partition changes hands half-way through a batch.
    """

    def __init__(self, retire: Callable[[set[TopicPartition]], Awaitable[None]]) -> None:
        self._retire = retire

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._retire(revoked)
        log.info("partitions revoked: %s", _names(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned: %s", _names(assigned))


class _PartitionWorker:
    """One partition's records, applied in order by a task of its own.

    The fetch loop hands records over with :meth:`add`; the task takes everything queued at
    once and applies it (one commit of the offset per hand-over). ``halt`` ends it after the
    transaction in flight: on stop, or when the partition is revoked.
    """

    def __init__(self, partition: TopicPartition) -> None:
        self.partition = partition
        self.queued: list[ConsumerRecord[bytes, bytes]] = []
        self.arrived = asyncio.Event()
        self.halt = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def add(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        self.queued.extend(records)
        self.arrived.set()

    def take(self) -> list[ConsumerRecord[bytes, bytes]]:
        records, self.queued = self.queued, []
        self.arrived.clear()
        return records

    async def next_records(self) -> list[ConsumerRecord[bytes, bytes]]:
        """What arrived since the last call, waiting for some; empty once halted."""
        while not self.queued and not self.halt.is_set():
            await pause(self.halt, math.inf, wake=self.arrived)
        return [] if self.halt.is_set() else self.take()


class ConsumerLoop:
    """Runs one consumer group member until told to stop."""

    def __init__(
        self,
        config: ConsumerConfig,
        *,
        bootstrap: str,
        handlers: EventHandlers,
        store: Store,
        producer: EventProducer,
        metrics: RuntimeMetrics,
    ) -> None:
        self.config = config
        self._bootstrap = bootstrap
        self._handlers = handlers
        self._store = store
        self._producer = producer
        self._metrics = metrics
        self._workers: dict[TopicPartition, _PartitionWorker] = {}
        self._worker_failure: BaseException | None = None
        self.ready = asyncio.Event()
        """Set once the consumer has joined its group (tests and readiness wait on it)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in progress finishes and commits first."""
        consumer = self._new_consumer()
        if not await self._start(consumer, stop):
            return
        try:
            await self._consume(consumer, stop)
        finally:
            await consumer.stop()
            log.info("consumer %s stopped", self.config.group)

    def _new_consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self.config.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.config.batch_size,
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
            group_instance_id=self.config.group_instance_id,
            client_id=f"leadrelay-{self.config.group}",
        )
        consumer.subscribe(
            list(self.config.topics), listener=_FinishBatchesBeforeRevoke(self._retire)
        )
        return consumer

    async def _start(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> bool:
        """Connect, backing off while the broker is unreachable; False if stopped first."""
        waits = self.config.backoff.start()
        while not stop.is_set():
            try:
                await consumer.start()
                self.ready.set()
                return True
            except KafkaError as error:
                log.warning(
                    "consumer %s cannot reach the broker (%r); retrying in %.1fs",
                    self.config.group,
                    error,
                    waits.next_delay,
                )
                await waits.wait(stop)
        return False

    async def _consume(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Fetch and hand each partition's records to its worker until ``stop``.

        Partitions progress concurrently, one task each, ordered within each. A partition whose
        worker still has a fetch's worth of records queued is paused until it takes them, so a
        slow partition holds back neither the others nor memory.
        """
        waits = self.config.backoff.start()
        halt_all = asyncio.ensure_future(self._halt_workers_on(stop))
        try:
            while not stop.is_set():
                self._raise_worker_failure()
                try:
                    batches = await consumer.getmany(
                        timeout_ms=500, max_records=self.config.batch_size
                    )
                except KafkaError as error:
                    log.warning("fetch failed (%r); backing off %.1fs", error, waits.next_delay)
                    await waits.wait(stop)
                    continue
                waits.reset()
                assigned = consumer.assignment()
                for partition, records in batches.items():
                    if records and partition in assigned:
                        self._hand_over(consumer, partition, records)
                await self._record_lag(consumer)
        finally:
            halt_all.cancel()
            await self._retire(set(self._workers))
        self._raise_worker_failure()

    def _hand_over(
        self,
        consumer: AIOKafkaConsumer,
        partition: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
    ) -> None:
        worker = self._workers.get(partition)
        if worker is None:
            worker = self._workers[partition] = _PartitionWorker(partition)
            worker.task = asyncio.ensure_future(self._work(consumer, worker))
        worker.add(records)
        if len(worker.queued) >= self.config.batch_size:
            consumer.pause(partition)

    async def _work(self, consumer: AIOKafkaConsumer, worker: _PartitionWorker) -> None:
        """A partition's task: apply what arrives, in order, until halted."""
        try:
            while records := await worker.next_records():
                if worker.partition in consumer.paused():
                    consumer.resume(worker.partition)
                await self._process_partition(consumer, worker.partition, records, worker.halt)
        except Exception as error:  # noqa: BLE001 - re-raised by the fetch loop
            # a worker that died must take the service down, not leave its partition stuck
            self._worker_failure = self._worker_failure or error

    async def _halt_workers_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        for worker in self._workers.values():
            worker.halt.set()

    async def _retire(self, partitions: set[TopicPartition]) -> None:
        """End the workers of ``partitions`` once their transaction in flight committed (and
        its offset); records they had not started are re-read by the partition's next owner."""
        retiring = [self._workers.pop(p) for p in partitions if p in self._workers]
        for worker in retiring:
            worker.halt.set()
        tasks = [worker.task for worker in retiring if worker.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    def _raise_worker_failure(self) -> None:
        if self._worker_failure is not None:
            raise self._worker_failure

    async def _process_partition(
        self,
        consumer: AIOKafkaConsumer,
        partition: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        stop: asyncio.Event,
    ) -> None:
        """Apply a partition's records in order, then commit past the last one completed.

        Consecutive handled events are applied in one transaction (up to ``transaction_batch``;
        skipped types in between ride along). A dead letter first completes what is pending, so
        the committed offset never passes a message whose effect is not durable.
        """
        next_offset: int | None = None
        pending: list[_Ready] = []
        pending_end = 0  # the offset after the last record the pending batch covers
        for record in records:
            if stop.is_set():
                pending = []  # not applied: neither committed nor lost, they are re-read
                break
            self._metrics.consumed.labels(self.config.group, record.topic).inc()
            decoded = self._decode(record)
            if decoded is None or isinstance(decoded, _Ready):
                if decoded is not None:
                    pending.append(decoded)
                if not pending:
                    next_offset = record.offset + 1
                    continue
                pending_end = record.offset + 1
                if len(pending) < self.config.transaction_batch:
                    continue
            if pending:
                if not await self._apply_batch(pending, stop):
                    pending = []
                    break
                next_offset, pending = pending_end, []
            if isinstance(decoded, _Rejected):
                if not await self._dead_letter(record, decoded.reason, decoded.error, stop):
                    break
                next_offset = record.offset + 1
        if pending and await self._apply_batch(pending, stop):
            next_offset = pending_end
        if next_offset is not None:
            await self._commit(consumer, partition, next_offset)

    def _decode(self, record: ConsumerRecord[bytes, bytes]) -> _Ready | _Rejected | None:
        """What to do with a record: apply it, dead-letter it, or (None) skip it.

        The message is decoded once: its event is built from the decoded dict, and that same
        dict is what the schemas check (undecodable first, as a message that is no event
        cannot be checked)."""
        try:
            document = decode_object(record.value or b"")
            event = CloudEvent.from_dict(document)
        except ValueError as error:
            return _Rejected(DeadLetterReason.UNDECODABLE, error)
        try:
            validate_event_dict(document)  # the decoded message itself, not a dump of the event
        except ContractError as error:
            return _Rejected(DeadLetterReason.SCHEMA_VIOLATION, error)
        return _Ready(record, event) if event.type in self._handlers.event_types else None

    async def _apply_batch(self, batch: list[_Ready], stop: asyncio.Event) -> bool:
        """Apply ``batch`` in one transaction, or one by one if that fails; False if stopped."""
        if len(batch) > 1:
            started = time.perf_counter()
            try:
                applied = await self._apply_together(batch)
            except Exception as error:  # noqa: BLE001 - one by one below applies the policy
                log.info("batch of %d failed (%r); applying one at a time", len(batch), error)
            else:
                elapsed = (time.perf_counter() - started) / len(batch)
                for item, was_applied in zip(batch, applied, strict=True):
                    self._count_success(item, was_applied, elapsed)
                return True
        for item in batch:
            if not await self._apply_with_retries(item, stop):
                return False
        return True

    async def _apply_together(self, batch: list[_Ready]) -> list[bool]:
        """Every inbox row, effect and outbox row of the batch commits together or not at all."""
        async with self._store.transaction() as transaction:
            return await apply_new(
                transaction, self.config.group, self._handlers, [item.event for item in batch]
            )

    def _count_success(self, item: _Ready, applied: bool, seconds: float) -> None:
        labels = (self.config.group, item.record.topic)
        self._metrics.handler_seconds.labels(self.config.group, item.event.type).observe(seconds)
        counter = self._metrics.processed if applied else self._metrics.duplicates
        counter.labels(*labels).inc()

    async def _apply_with_retries(self, item: _Ready, stop: asyncio.Event) -> bool:
        """Apply one event under the failure policy; False only when stopped mid-retry.

        Outages and transient conflicts are retried for as long as they last without using up
        an attempt; a refusal is dead-lettered at once, any other error after its attempts.
        """
        labels = (self.config.group, item.record.topic)
        attempts = 0
        waits = self.config.backoff.start()
        while not stop.is_set():
            started = time.perf_counter()
            try:
                async with self._store.transaction() as transaction:
                    (applied,) = await apply_new(
                        transaction, self.config.group, self._handlers, [item.event]
                    )
            except Exception as error:  # noqa: BLE001 - the named failure policy decides
                failure = classify(error)
                self._metrics.failed.labels(*labels, failure.value).inc()
                attempts += failure.counts_as_attempt
                log.warning(
                    "%s failure on %s (attempt %d/%d): %r",
                    failure.value,
                    item.event.id,
                    attempts,
                    self.config.handler_max_attempts,
                    error,
                )
                if failure is FailureClass.REFUSED:
                    return await self._dead_letter(
                        item.record, DeadLetterReason.REFUSED, error, stop
                    )
                if attempts >= self.config.handler_max_attempts:
                    return await self._dead_letter(
                        item.record, DeadLetterReason.HANDLER_FAILED, error, stop
                    )
                await waits.wait(stop)
                continue
            self._count_success(item, applied, time.perf_counter() - started)
            return True
        return False

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        reason: DeadLetterReason,
        error: BaseException,
        stop: asyncio.Event,
    ) -> bool:
        """Park the original bytes with their origin and the reason, retrying while Kafka is down;
        False only when stopped before it was parked."""
        headers = dead_letter_headers(record, reason, error, self.config.group)
        key = record.key.decode(errors="replace") if record.key is not None else None
        waits = self.config.backoff.start()
        while not stop.is_set():
            try:
                await self._producer.send(
                    self.config.dead_letter_topic, key, record.value or b"", headers
                )
            except KafkaError as send_error:
                log.warning("dead-letter topic unreachable (%r); retrying", send_error)
                await waits.wait(stop)
                continue
            log.warning(
                "dead-lettered %s:%d@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                reason.value,
            )
            self._metrics.dead_lettered.labels(self.config.group, record.topic, reason.value).inc()
            return True
        return False

    async def _commit(
        self, consumer: AIOKafkaConsumer, partition: TopicPartition, next_offset: int
    ) -> None:
        """Commit ``next_offset`` if we still own the partition; a lost commit only re-delivers."""
        if partition not in consumer.assignment():
            return
        try:
            await consumer.commit({partition: next_offset})
        except (CommitFailedError, IllegalStateError) as error:
            log.info(
                "commit for %s:%d skipped (%r); the inbox absorbs the redelivery",
                partition.topic,
                partition.partition,
                error,
            )

    async def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Lag per partition: the high watermark minus our position (the next offset to read)."""
        for partition in consumer.assignment():
            highwater = consumer.highwater(partition)
            if highwater is None:
                continue
            position = await consumer.position(partition)
            self._metrics.consumer_lag.labels(
                self.config.group, partition.topic, str(partition.partition)
            ).set(max(0, highwater - position))


def dead_letter_headers(
    record: ConsumerRecord[bytes, bytes], reason: DeadLetterReason, error: BaseException, group: str
) -> list[tuple[str, bytes]]:
    """The headers an operator needs to find and replay a dead letter."""
    message = str(error)[:2000]
    return [
        ("dlq.origin.topic", record.topic.encode()),
        ("dlq.origin.partition", str(record.partition).encode()),
        ("dlq.origin.offset", str(record.offset).encode()),
        ("dlq.error.type", reason.value.encode()),
        ("dlq.error.message", message.encode()),
        ("dlq.consumer.group", group.encode()),
    ]


def _names(partitions: set[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}:{tp.partition}" for tp in partitions)
