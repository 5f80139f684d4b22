"""The deliveries accepted within the replay window, and the verdict on a new one, in memory.

Standard Webhooks gives each message a ``webhook-id`` that stays the same when the sender
retries, while the retry carries a fresh timestamp and therefore a fresh signature. So, for a
delivery id already accepted:

* the same signed content: somebody replays a captured request -> refused (401);
* the same body under a new timestamp: the sender never saw our 202 and retries -> a retry,
  answered 202 again with nothing produced a second time;
* a different body: a different event under a used id (a sender bug, or two senders sharing
  the ``generic`` namespace picking the same id) -> :class:`DeliveryConflict` (409), so the
  sender learns of it instead of the event being dropped as a "retry".

An entry is only needed while a replay could pass the signature's timestamp check, so it
expires one tolerance after the signing time; later replays are refused as stale anyway.
Keeping the window in memory is what lets a request be judged without a database round trip;
the adapter (``services.ingest.repository``) fills it from the shared table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from services.ingest.domain.signatures import Delivery, SignatureError


class Seen(enum.Enum):
    """What the window says about a delivery."""

    NEW = "new"
    RETRY_OF_ACCEPTED = "retry_of_accepted"


class DeliveryConflict(Exception):
    """The delivery id was already accepted for a different body."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """What is kept of an accepted delivery: enough to tell a replay, a retry and a conflict.

    ``body_sha256`` is None in rows written before body digests were kept; such a delivery's
    later twin is treated as a retry, as it was then.
    """

    content_sha256: str
    body_sha256: str | None
    expires_at: datetime


class DeliveryWindow:
    """Accepted deliveries by (source, delivery id), at most ``capacity`` of them."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._accepted: dict[tuple[str, str], Accepted] = {}

    def __len__(self) -> int:
        return len(self._accepted)

    def verdict(self, source: str, delivery: Delivery) -> Seen:
        """NEW, or a retry of an accepted delivery.

        Raises ``SignatureError("replayed")`` for the same signed content and
        :class:`DeliveryConflict` for a different body under an accepted id.
        """
        accepted = self._accepted.get((source, delivery.delivery_id))
        if accepted is None:
            return Seen.NEW
        if accepted.content_sha256 == delivery.content_sha256:
            raise SignatureError("replayed", "this signed request was already accepted")
        if accepted.body_sha256 not in (None, delivery.body_sha256):
            raise DeliveryConflict
        return Seen.RETRY_OF_ACCEPTED

    def add(self, source: str, delivery_id: str, accepted: Accepted) -> bool:
        """Keep an accepted delivery; the first one kept under an id stays (a concurrent twin
        changes nothing). False when the window is full and the delivery was not kept."""
        key = (source, delivery_id)
        if key in self._accepted:
            return True
        if len(self._accepted) >= self._capacity:
            return False
        self._accepted[key] = accepted
        return True

    def forget_expired(self, now: datetime) -> None:
        """Drop every entry whose replay would be refused as stale by now anyway."""
        expired = [key for key, entry in self._accepted.items() if entry.expires_at < now]
        for key in expired:
            del self._accepted[key]
