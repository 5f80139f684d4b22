"""Who sent this request: Standard Webhooks, HubSpot v3 and Marketo shared-token checks.

Pure: bytes, headers and an injected ``now`` in, a verdict out. Every comparison of a secret
or a signature is constant-time (``hmac.compare_digest``), and no error message ever carries
a secret, a signature or the body: the ``reason`` of a :class:`SignatureError` is a short
label suitable for a metric.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = timedelta(minutes=5)
MAX_DELIVERY_ID_LENGTH = 300

WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"
HUBSPOT_SIGNATURE = "x-hubspot-signature-v3"
HUBSPOT_TIMESTAMP = "x-hubspot-request-timestamp"
MARKETO_TOKEN = "x-marketo-token"  # noqa: S105 - a header name
STANDARD_WEBHOOK_HEADERS = (WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE)
HUBSPOT_HEADERS = (HUBSPOT_SIGNATURE, HUBSPOT_TIMESTAMP)


class SignatureError(Exception):
    """The request is not authentic; ``reason`` is a metric label, never a secret."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Delivery:
    """An authentic request: its id, and digests that tell a replay from a retry or a conflict.

    ``content_sha256`` covers what was signed (timestamp included), so only a byte-for-byte
    replay repeats it; ``body_sha256`` covers the body alone, so a sender's retry, re-signed
    with a new timestamp, repeats it while different content under the same id does not.
    """

    delivery_id: str
    content_sha256: str
    body_sha256: str
    signed_at: datetime


def unambiguous(pairs: Iterable[tuple[str, str]], names: Collection[str]) -> dict[str, str]:
    """The headers ``names`` (lower-case) of a request, each with its one value.

    A header repeated with another value is refused: which one was signed, and which one a
    proxy or the framework would pick, is anybody's guess.
    """
    found: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in names and found.setdefault(key, value) != value:
            raise SignatureError(
                "ambiguous_headers", f"the {key} header is repeated with another value"
            )
    return found


def sign_standard_webhook(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value a sender computes (one ``v1,<base64>`` entry)."""
    digest = hmac.new(key, _signed_content(webhook_id, timestamp, body), hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def verify_standard_webhook(
    headers: Mapping[str, str],
    body: bytes,
    keys: Sequence[bytes],
    *,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> Delivery:
    """Check a Standard Webhooks request against every configured key (rotation).

    ``headers`` must be case-insensitive or lower-case. The timestamp must lie within
    ``tolerance`` of ``now`` on either side (a future timestamp is as suspect as an old one).
    """
    webhook_id = headers.get(WEBHOOK_ID, "")
    raw_timestamp = headers.get(WEBHOOK_TIMESTAMP, "")
    raw_signatures = headers.get(WEBHOOK_SIGNATURE, "")
    if not (webhook_id and raw_timestamp and raw_signatures):
        raise SignatureError(
            "missing_headers",
            "webhook-id, webhook-timestamp and webhook-signature headers are required",
        )
    if len(webhook_id) > MAX_DELIVERY_ID_LENGTH:
        raise SignatureError("malformed_headers", "webhook-id is too long")
    if "." in webhook_id:  # the signed content is id.timestamp.body: a dot would blur the parts
        raise SignatureError("malformed_headers", "webhook-id must not contain '.'")
    timestamp = _integer(raw_timestamp, WEBHOOK_TIMESTAMP)
    signed_at = _check_timestamp(timestamp, now, tolerance)
    content = _signed_content(webhook_id, timestamp, body)
    expected = [hmac.new(key, content, hashlib.sha256).digest() for key in keys]
    if not _any_matches(_v1_signatures(raw_signatures), expected):
        raise SignatureError("bad_signature", "no webhook-signature matches a configured secret")
    return Delivery(webhook_id, _sha256(content), _sha256(body), signed_at)


def sign_hubspot_v3(secret: bytes, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    """HubSpot's ``X-HubSpot-Signature-v3``: base64 HMAC-SHA256 of method+uri+body+timestamp."""
    content = _hubspot_content(method, uri, body, timestamp_ms)
    return base64.b64encode(hmac.new(secret, content, hashlib.sha256).digest()).decode("ascii")


def verify_hubspot_v3(
    headers: Mapping[str, str],
    method: str,
    uris: Sequence[str],
    body: bytes,
    secret: bytes,
    *,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> Delivery:
    """Check HubSpot's v3 signature; ``uris`` are the URLs HubSpot may have called.

    HubSpot signs the full URL it was configured with; behind a TLS-terminating proxy the
    app sees another scheme or host, so the caller passes each plausible spelling. HubSpot
    decodes a fixed set of percent-escapes before signing, which is applied here too.
    """
    signature = headers.get(HUBSPOT_SIGNATURE, "")
    raw_timestamp = headers.get(HUBSPOT_TIMESTAMP, "")
    if not (signature and raw_timestamp):
        raise SignatureError(
            "missing_headers",
            "X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp headers are required",
        )
    timestamp_ms = _integer(raw_timestamp, "X-HubSpot-Request-Timestamp")
    signed_at = _check_timestamp(timestamp_ms / 1000, now, tolerance)
    given = _b64(signature)
    for uri in dict.fromkeys(hubspot_uri(u) for u in uris):
        content = _hubspot_content(method, uri, body, timestamp_ms)
        if given is not None and hmac.compare_digest(
            hmac.new(secret, content, hashlib.sha256).digest(), given
        ):
            return Delivery(
                signature[:MAX_DELIVERY_ID_LENGTH], _sha256(content), _sha256(body), signed_at
            )
    raise SignatureError("bad_signature", "X-HubSpot-Signature-v3 does not match")


_HUBSPOT_DECODED = (
    "%3A",
    "%2F",
    "%3F",
    "%40",
    "%21",
    "%24",
    "%27",
    "%28",
    "%29",
    "%2A",
    "%2C",
    "%3B",
)


def hubspot_uri(uri: str) -> str:
    """The URI as HubSpot signs it: these escapes decoded (``:/?@!$'()*,;``), others kept."""
    for escape in _HUBSPOT_DECODED:
        for spelling in (escape, escape.lower()):
            uri = uri.replace(spelling, unquote(escape))
    return uri


def verify_shared_token(given: str | None, expected: str) -> None:
    """Marketo's scheme: a secret header compared in constant time."""
    if not given:
        raise SignatureError("missing_headers", "the X-Marketo-Token header is required")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise SignatureError("bad_token", "X-Marketo-Token does not match")


def _signed_content(webhook_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{webhook_id}.{timestamp}.".encode() + body


def _hubspot_content(method: str, uri: str, body: bytes, timestamp_ms: int) -> bytes:
    return method.upper().encode() + uri.encode("utf-8") + body + str(timestamp_ms).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _integer(text: str, header: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 16:
        raise SignatureError("malformed_headers", f"{header} must be an integer timestamp")
    return int(text)


def _check_timestamp(seconds: float, now: datetime, tolerance: timedelta) -> datetime:
    """The signing time, if within ``tolerance`` of ``now`` (either way)."""
    if abs(seconds - now.timestamp()) > tolerance.total_seconds():
        raise SignatureError(
            "stale_timestamp",
            f"the request timestamp is outside the {int(tolerance.total_seconds())}s tolerance",
        )
    return datetime.fromtimestamp(seconds, UTC)


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded ``v1,`` entries of a space-separated list; other versions are skipped."""
    found = []
    for entry in header.split(" "):
        version, comma, value = entry.partition(",")
        decoded = _b64(value) if comma and version == SIGNATURE_VERSION else None
        if decoded is not None:
            found.append(decoded)
    return found


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _any_matches(given: Sequence[bytes], expected: Sequence[bytes]) -> bool:
    """Compare every pair, without stopping early on the first mismatch."""
    matched = False
    for signature in given:
        for digest in expected:
            matched |= hmac.compare_digest(signature, digest)
    return matched
