"""RFC 9457 problem details: every refusal of ingest, as data.

A :class:`Problem` says what went wrong (``title``), why (``detail``) and, for bad input, which
fields (``errors``: a JSON pointer into the request body and what was expected). Details never
repeat the offending value: it may be an email address or a secret. Nor do pointers: a member
name that looks like an email address (a Marketo template whose key is an address) is shown as
``*``, so the pointer still says where, without saying who.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from leadrelay.contracts.errors import FieldError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://leadrelay.dev/problems/"
RETRY_AFTER_SECONDS = 5
"""What a 503 asks the sender to wait; a broker failover usually takes a few seconds."""


@dataclass(frozen=True)
class Problem:
    """One refusal: HTTP status, a stable ``slug`` (the problem type), and the details."""

    status: int
    slug: str
    title: str
    detail: str
    errors: tuple[FieldError, ...] = ()
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def body(self) -> dict[str, Any]:
        """The ``application/problem+json`` document."""
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = [
                {"pointer": shown_pointer(e.pointer), "detail": e.message} for e in self.errors
            ]
        return body


class ProblemError(Exception):
    """Raised anywhere in a request; the app's handler answers with ``problem``."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def shown_pointer(pointer: str) -> str:
    """``pointer`` with each segment that may be personal data (holding ``@``) shown as ``*``."""
    return "/".join("*" if "@" in part else part for part in pointer.split("/"))


def malformed(detail: str) -> Problem:
    """400: the body is not JSON (or not UTF-8)."""
    return Problem(400, "malformed-body", "Malformed request body", detail)


def invalid(errors: Sequence[FieldError], detail: str | None = None) -> Problem:
    """422: well-formed JSON that breaks the contract; one entry per bad field."""
    found = tuple(unique(errors))
    return Problem(
        422,
        "invalid-event",
        "Request body violates the event contract",
        detail or f"{len(found)} field(s) are invalid; see errors",
        found,
    )


def too_many_events(limit: int) -> Problem:
    """413: a batch of more than ``LEADRELAY_MAX_BATCH_EVENTS`` items."""
    return Problem(
        413,
        "too-many-events",
        "Too many events in one request",
        f"a request carries at most {limit} events; split the batch",
    )


def event_too_large(pointer: str, limit: int) -> Problem:
    """413: one event is larger than the broker takes (``LEADRELAY_MAX_EVENT_BYTES``)."""
    return Problem(
        413,
        "event-too-large",
        "Event too large",
        f"an event may be at most {limit} bytes once encoded; nothing was accepted",
        (FieldError(pointer, f"encodes to more than {limit} bytes"),),
    )


def internal_error(correlation_id: str) -> Problem:
    """500: a bug; the correlation id is in the log line that describes it."""
    return Problem(
        500,
        "internal-error",
        "Internal server error",
        f"nothing was accepted; retry later. Correlation id: {correlation_id}",
        headers=MappingProxyType({"X-Correlation-Id": correlation_id}),
    )


def unauthorized(detail: str) -> Problem:
    """401: missing, wrong, stale or replayed credentials."""
    return Problem(401, "unauthorized", "Authentication failed", detail)


def conflict() -> Problem:
    """409: the ``webhook-id`` was accepted before for another body; a new event needs a new id."""
    return Problem(
        409,
        "delivery-id-conflict",
        "Delivery id already used",
        "this webhook-id was already used for different content; nothing was accepted. "
        "A retry must repeat the same body; a new event needs a new webhook-id",
    )


def too_large(limit: int) -> Problem:
    """413: above ``LEADRELAY_MAX_BODY_BYTES``."""
    return Problem(
        413,
        "body-too-large",
        "Request body too large",
        f"the body exceeds the limit of {limit} bytes",
    )


def unsupported_media_type(accepted: Iterable[str]) -> Problem:
    """415: naming the media types the route takes."""
    names = ", ".join(accepted)
    return Problem(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        f"Content-Type must be one of: {names}",
    )


def unavailable(detail: str) -> Problem:
    """503: nothing was accepted; retry the same request (same ids) later."""
    return Problem(
        503,
        "unavailable",
        "Service unavailable",
        detail,
        headers=MappingProxyType({"Retry-After": str(RETRY_AFTER_SECONDS)}),
    )


def prefixed(errors: Iterable[FieldError], prefix: str) -> list[FieldError]:
    """Errors of one item of a batch, located inside the whole body (``/2/data/email``)."""
    return [FieldError(prefix + e.pointer, e.message) for e in errors]


def unique(errors: Iterable[FieldError]) -> list[FieldError]:
    """One entry per bad field (the first message found for it), in order of discovery."""
    seen: dict[str, FieldError] = {}
    for error in errors:
        seen.setdefault(error.pointer, error)
    return list(seen.values())
