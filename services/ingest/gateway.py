"""The steps every ingest route takes, in order: media type, size, authenticity, replay
history, JSON, mapping, produce, answer.

Every step refuses with a 4xx what can never succeed, so a sender is never asked to retry it:
JSON values no event can carry (422, see ``json_values``), more than
``LEADRELAY_MAX_BATCH_EVENTS`` items or an event larger than ``LEADRELAY_MAX_EVENT_BYTES``,
which stays below the broker's message limit (413). Only a broker that does not acknowledge
gets 503.

The promise lives in :meth:`Gateway.accept`: ``202`` is sent only after the broker
acknowledged every event of the request with acks=all; if any send fails or takes longer
than ``LEADRELAY_PRODUCE_TIMEOUT_SECONDS`` the whole request is refused with ``503`` and the
sender retries it. A send that timed out here may still land later, so a retry can put a
second copy of an event on the topic; it carries the same id, and consumers drop it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar

from aiokafka.errors import KafkaError
from fastapi import Request
from fastapi.responses import JSONResponse

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.errors import ContractError
from leadrelay.contracts.topics import topic_for_event_type
from leadrelay.credentials import parse_secret
from leadrelay.runtime.service import Runtime
from leadrelay.store.unit_of_work import utc_now
from services.ingest.domain import problems
from services.ingest.domain.delivery_window import DeliveryConflict, Seen
from services.ingest.domain.json_values import unrepresentable
from services.ingest.domain.mapping.common import IngestContext
from services.ingest.domain.problems import ProblemError
from services.ingest.domain.signatures import Delivery, SignatureError
from services.ingest.metrics import IngestMetrics
from services.ingest.repository import open_history

log = logging.getLogger(__name__)

JSON = "application/json"
T = TypeVar("T")


@dataclass(frozen=True)
class Outgoing:
    """A validated event, its topic and its encoding: what is sized, produced and answered."""

    event: CloudEvent
    topic: str
    value: bytes

    @classmethod
    def of(cls, runtime: Runtime, event: CloudEvent) -> Outgoing:
        return cls(event, runtime.topic(topic_for_event_type(event.type)), event.to_bytes())


class Gateway:
    """The adapters and secrets the ingest routes share, built once per app."""

    def __init__(self, runtime: Runtime, metrics: IngestMetrics) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.metrics = metrics
        self.webhook_keys = [parse_secret(s.get_secret_value()) for s in settings.webhook_secrets]
        self.hubspot_secret = settings.hubspot_client_secret.get_secret_value().encode("utf-8")
        self.marketo_token = settings.marketo_token.get_secret_value()
        self.tolerance = timedelta(seconds=settings.webhook_tolerance_seconds)
        self.public_url = settings.public_url
        self.trusted_proxies = list(settings.trusted_proxies)
        self.seen = open_history(runtime, self.tolerance)
        self._lead_key_secret = settings.lead_key_secret.get_secret_value()

    @staticmethod
    def wall_clock() -> datetime:
        """Signature windows use real time, even when the pipeline's clock is accelerated."""
        return utc_now()

    def context(self) -> IngestContext:
        """The pipeline's clock stamps event times (an injected or accelerated clock in demos)."""
        return IngestContext(self._lead_key_secret, self.runtime.store.clock())

    def media_type(self, request: Request, accepted: Collection[str]) -> str:
        """The request's media type (parameters such as charset ignored), or 415."""
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in accepted:
            raise ProblemError(problems.unsupported_media_type(accepted))
        return media_type

    async def read_body(self, request: Request) -> bytes:
        """The raw body, refused with 413 above the limit, declared or streamed."""
        limit = self.runtime.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ProblemError(problems.too_large(limit))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ProblemError(problems.too_large(limit))
        return bytes(body)

    def authentic(self, route: str, check: Callable[[], T]) -> T:
        """Run a signature check; a failure is counted by reason and answered 401."""
        try:
            return check()
        except SignatureError as error:
            self.refuse(route, error)

    def refuse(self, route: str, error: SignatureError) -> NoReturn:
        """401, counted by reason (the reason is a label, never a secret)."""
        self.metrics.signature_failures.labels(route, error.reason).inc()
        log.info("refused a request on %s: %s", route, error.reason)
        raise ProblemError(problems.unauthorized(error.detail))

    async def history(self, route: str, source: str, delivery: Delivery) -> Seen:
        """Whether this delivery is new or a retry of one accepted; 401 for a replay.

        409 for another body under an accepted id: answering 202 "duplicate" there would drop
        a genuinely different event without anybody noticing. While the state store (which
        keeps this history) is down, the verdict rests on what this process accepted itself:
        the signature and its timestamp window still hold, and a replay of another replica's
        delivery produces events with the ids already on the topic, which every consumer
        drops as redeliveries. So webhooks keep flowing into Kafka while only PostgreSQL is
        down; such requests are counted as ``history_unavailable``.
        """
        try:
            seen = await self.seen.check(source, delivery)
        except SignatureError as error:
            self.refuse(route, error)
        except DeliveryConflict:
            log.info("refused a request on %s: delivery id reused for different content", route)
            raise ProblemError(problems.conflict()) from None
        if not self.seen.complete:
            log.warning("delivery history incomplete: judging %s by this process's own", route)
            self.metrics.history_unavailable.labels(route).inc()
        return seen

    def parse_json(self, body: bytes) -> Any:
        """The decoded body: 400 if not JSON, 422 for values no event can carry, 413 above
        ``LEADRELAY_MAX_BATCH_EVENTS`` items."""
        raw = _decoded(body)
        unfit = unrepresentable(raw)
        if unfit:
            raise ProblemError(problems.invalid(unfit))
        limit = self.runtime.settings.max_batch_events
        if isinstance(raw, list) and len(raw) > limit:
            raise ProblemError(problems.too_many_events(limit))
        return raw

    def map(self, mapping: Callable[[IngestContext], Sequence[CloudEvent]]) -> list[Outgoing]:
        """Run a source mapping; contract errors become 422 naming each field, and an event
        the broker would refuse for its size 413 (before anything is produced).

        The mapping validated every event against its JSON Schema; each is encoded here once,
        and exactly those bytes are sized and produced (nothing validates or encodes it again).
        """
        try:
            events = list(mapping(self.context()))
        except ContractError as error:
            raise ProblemError(problems.invalid(error.errors)) from None
        limit = self.runtime.settings.max_event_bytes
        outgoing = [Outgoing.of(self.runtime, event) for event in events]
        for index, message in enumerate(outgoing):
            if len(message.value) > limit:
                pointer = f"/{index}" if len(events) > 1 else ""
                raise ProblemError(problems.event_too_large(pointer, limit))
        return outgoing

    async def accept(
        self,
        route: str,
        events: Sequence[Outgoing],
        *,
        source: str | None = None,
        delivery: Delivery | None = None,
        seen: Seen = Seen.NEW,
    ) -> JSONResponse:
        """Produce every event (or none, for a retry of an accepted delivery), then 202."""
        if seen is Seen.RETRY_OF_ACCEPTED:
            self.metrics.duplicate_deliveries.labels(route).inc()
        else:
            await self.publish(events)
            if source is not None and delivery is not None:  # kept at once, written soon
                self.seen.remember(source, delivery, self.wall_clock())
        body = {
            "accepted": len(events),
            "event_ids": [e.event.id for e in events],
            "duplicate": seen is Seen.RETRY_OF_ACCEPTED,
        }
        return JSONResponse(body, status_code=202)

    async def publish(self, events: Sequence[Outgoing]) -> None:
        """Send all events in one pipelined batch and wait for acks=all on each; 503 if any
        is missing. The loop only hands bytes to the producer here, so acks are never kept
        waiting behind validation."""
        timeout = self.runtime.settings.produce_timeout_seconds
        messages = [(e.topic, e.event.subject, e.value) for e in events]
        try:
            outcomes = await asyncio.wait_for(
                self.runtime.producer.send_batch(messages), timeout=timeout
            )
        except TimeoutError:
            log.warning("broker did not acknowledge %d event(s) within %.1fs", len(events), timeout)
            raise ProblemError(
                problems.unavailable(
                    f"the broker did not acknowledge within {timeout:g}s; nothing was accepted, "
                    "retry the same request"
                )
            ) from None
        except (KafkaError, OSError) as error:
            outcomes = [error]
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        for failure in failures:
            if not isinstance(failure, KafkaError | OSError | asyncio.CancelledError):
                raise failure
        if failures:
            log.warning(
                "broker refused %d of %d event(s): %s",
                len(failures),
                len(events),
                type(failures[0]).__name__,
            )
            raise ProblemError(
                problems.unavailable(
                    "the broker is unavailable; nothing was accepted, retry the same request"
                )
            )
        for event in events:
            self.metrics.events_accepted.labels(event.event.type).inc()


def _decoded(body: bytes) -> Any:
    """The JSON value of ``body``, or 400 (``NaN`` and ``Infinity`` are not JSON)."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise ProblemError(problems.malformed("the body is not UTF-8")) from None
    except json.JSONDecodeError as error:
        raise ProblemError(
            problems.malformed(
                f"the body is not valid JSON: {error.msg} at line {error.lineno} "
                f"column {error.colno}"
            )
        ) from None
    except (ValueError, RecursionError) as error:
        raise ProblemError(problems.malformed(f"the body is not valid JSON: {error}")) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")
