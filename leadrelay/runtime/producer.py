"""The one Kafka producer of a process: acks=all, idempotent where the broker supports it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.schemas import validate_outgoing
from leadrelay.runtime.log_redaction import install_log_redaction


class EventProducer:
    """Sends events and raw messages, returning only once the broker acknowledged them."""

    def __init__(
        self, bootstrap: str, *, idempotence: bool = True, request_timeout_ms: int = 10_000
    ) -> None:
        install_log_redaction()  # every service's events carry emails
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=idempotence,
            linger_ms=2,
            request_timeout_ms=request_timeout_ms,
            client_id="leadrelay",
        )

    async def start(self) -> None:
        """Connect; raises ``KafkaConnectionError`` when the broker is unreachable."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        await self._producer.stop()

    async def publish(self, topic: str, event: CloudEvent) -> None:
        """Validate ``event`` and send it keyed by its subject (the lead key)."""
        await self.send(topic, event.subject, validate_outgoing(event))

    async def send(
        self, topic: str, key: str | None, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Send one message and wait for acks=all."""
        await self._producer.send_and_wait(
            topic,
            value=value,
            key=key.encode() if key is not None else None,
            headers=list(headers) or None,
        )

    async def send_batch(
        self, messages: Sequence[tuple[str, str | None, bytes]]
    ) -> list[BaseException | None]:
        """Send many messages pipelined; one result each, None when acknowledged."""
        futures = [
            await self._producer.send(
                topic, value=value, key=key.encode() if key is not None else None
            )
            for topic, key, value in messages
        ]
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        return [o if isinstance(o, BaseException) else None for o in outcomes]

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partitions (used by readiness checks: proves the broker answers)."""
        return set(await self._producer.partitions_for(topic))
