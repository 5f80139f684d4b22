"""Standard Webhooks, HubSpot v3 and Marketo token checks, on fixed inputs and an injected clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from leadrelay.credentials import parse_secret
from services.ingest.domain.signatures import (
    Delivery,
    SignatureError,
    hubspot_uri,
    sign_hubspot_v3,
    sign_standard_webhook,
    verify_hubspot_v3,
    verify_shared_token,
    verify_standard_webhook,
)

# The Standard Webhooks reference libraries' own test vector.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SIGNED_AT = datetime.fromtimestamp(SPEC_TIMESTAMP, UTC)


def spec_headers(**changes: str) -> dict[str, str]:
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    headers.update(changes)
    return headers


def reason_of(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureError) as caught:
        call()
    return caught.value.reason


def test_signing_reproduces_the_specification_test_vector() -> None:
    key = parse_secret(SPEC_SECRET)
    assert sign_standard_webhook(key, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_the_test_vector_verifies_within_the_tolerance() -> None:
    delivery = verify_standard_webhook(
        spec_headers(),
        SPEC_BODY,
        [parse_secret(SPEC_SECRET)],
        now=SIGNED_AT + timedelta(seconds=299),
    )
    assert delivery.delivery_id == SPEC_ID
    assert delivery.signed_at == SIGNED_AT
    expected = hashlib.sha256(f"{SPEC_ID}.{SPEC_TIMESTAMP}.".encode() + SPEC_BODY).hexdigest()
    assert delivery.content_sha256 == expected


@pytest.mark.parametrize(
    ("headers", "body", "secret", "now", "reason"),
    [
        pytest.param(
            spec_headers(),
            b'{"test": 2432232315}',
            SPEC_SECRET,
            SIGNED_AT,
            "bad_signature",
            id="tampered-body",
        ),
        pytest.param(
            spec_headers(),
            SPEC_BODY,
            "whsec_" + base64.b64encode(b"x" * 24).decode(),
            SIGNED_AT,
            "bad_signature",
            id="wrong-secret",
        ),
        pytest.param(
            spec_headers(**{"webhook-id": "msg_other"}),
            SPEC_BODY,
            SPEC_SECRET,
            SIGNED_AT,
            "bad_signature",
            id="other-id",
        ),
        pytest.param(
            spec_headers(),
            SPEC_BODY,
            SPEC_SECRET,
            SIGNED_AT + timedelta(seconds=301),
            "stale_timestamp",
            id="too-old",
        ),
        pytest.param(
            spec_headers(),
            SPEC_BODY,
            SPEC_SECRET,
            SIGNED_AT - timedelta(seconds=301),
            "stale_timestamp",
            id="too-new",
        ),
        pytest.param(
            spec_headers(**{"webhook-timestamp": "16142653e3"}),
            SPEC_BODY,
            SPEC_SECRET,
            SIGNED_AT,
            "malformed_headers",
            id="non-integer-timestamp",
        ),
        pytest.param(
            {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP)},
            SPEC_BODY,
            SPEC_SECRET,
            SIGNED_AT,
            "missing_headers",
            id="no-signature",
        ),
        pytest.param(
            spec_headers(**{"webhook-signature": "v1a," + SPEC_SIGNATURE[3:]}),
            SPEC_BODY,
            SPEC_SECRET,
            SIGNED_AT,
            "bad_signature",
            id="only-other-scheme",
        ),
        pytest.param(
            spec_headers(**{"webhook-signature": "v1,not base64!"}),
            SPEC_BODY,
            SPEC_SECRET,
            SIGNED_AT,
            "bad_signature",
            id="garbage-signature",
        ),
    ],
)
def test_inauthentic_requests_are_refused_with_a_reason(
    headers: dict[str, str], body: bytes, secret: str, now: datetime, reason: str
) -> None:
    assert (
        reason_of(lambda: verify_standard_webhook(headers, body, [parse_secret(secret)], now=now))
        == reason
    )


def test_any_matching_entry_of_a_signature_list_is_enough() -> None:
    signatures = " ".join(
        [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v1a,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "junk",
            SPEC_SIGNATURE,
        ]
    )
    delivery = verify_standard_webhook(
        spec_headers(**{"webhook-signature": signatures}),
        SPEC_BODY,
        [parse_secret(SPEC_SECRET)],
        now=SIGNED_AT,
    )
    assert delivery.delivery_id == SPEC_ID


def test_a_retry_resigned_later_keeps_its_body_digest_but_not_its_signed_one() -> None:
    """The replay history tells a retry (same body) from new content by the body digest."""
    key = parse_secret(SPEC_SECRET)

    def delivered(timestamp: int, body: bytes) -> Delivery:
        signature = sign_standard_webhook(key, SPEC_ID, timestamp, body)
        headers = spec_headers(
            **{"webhook-timestamp": str(timestamp), "webhook-signature": signature}
        )
        return verify_standard_webhook(headers, body, [key], now=SIGNED_AT)

    first, retry = delivered(SPEC_TIMESTAMP, SPEC_BODY), delivered(SPEC_TIMESTAMP + 60, SPEC_BODY)
    assert retry.body_sha256 == first.body_sha256 == hashlib.sha256(SPEC_BODY).hexdigest()
    assert retry.content_sha256 != first.content_sha256
    assert delivered(SPEC_TIMESTAMP, b'{"test": 1}').body_sha256 != first.body_sha256


def test_during_a_rotation_a_request_signed_with_either_secret_passes() -> None:
    old, new = parse_secret(SPEC_SECRET), parse_secret("a raw secret, not base64")
    for key in (old, new):
        headers = spec_headers(
            **{"webhook-signature": sign_standard_webhook(key, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)}
        )
        assert verify_standard_webhook(headers, SPEC_BODY, [old, new], now=SIGNED_AT)


def test_secrets_with_the_prefix_are_base64_and_without_it_raw_bytes() -> None:
    assert parse_secret("whsec_aGVsbG8") == b"hello"  # unpadded base64 is accepted
    assert parse_secret("hello") == b"hello"
    with pytest.raises(ValueError, match="base64"):
        parse_secret("whsec_not*base64")
    with pytest.raises(ValueError, match="empty"):
        parse_secret("")


HUBSPOT_SECRET = b"yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
HUBSPOT_URI = "https://ingest.example.com/v1/webhooks/hubspot"
HUBSPOT_BODY = b'[{"eventId":1,"subscriptionType":"contact.creation","objectId":123}]'
HUBSPOT_MS = 1_700_000_000_123
HUBSPOT_NOW = datetime.fromtimestamp(HUBSPOT_MS / 1000, UTC)


def hubspot_headers(signature: str, timestamp: int = HUBSPOT_MS) -> dict[str, str]:
    return {"x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": str(timestamp)}


def test_hubspot_v3_is_base64_hmac_of_method_uri_body_timestamp() -> None:
    content = b"POST" + HUBSPOT_URI.encode() + HUBSPOT_BODY + str(HUBSPOT_MS).encode()
    expected = base64.b64encode(hmac.new(HUBSPOT_SECRET, content, hashlib.sha256).digest())
    signature = sign_hubspot_v3(HUBSPOT_SECRET, "POST", HUBSPOT_URI, HUBSPOT_BODY, HUBSPOT_MS)
    assert signature == expected.decode()
    delivery = verify_hubspot_v3(
        hubspot_headers(signature),
        "POST",
        [HUBSPOT_URI],
        HUBSPOT_BODY,
        HUBSPOT_SECRET,
        now=HUBSPOT_NOW,
    )
    assert delivery.delivery_id == signature


def test_hubspot_signature_matches_any_of_the_candidate_urls() -> None:
    signature = sign_hubspot_v3(HUBSPOT_SECRET, "POST", HUBSPOT_URI, HUBSPOT_BODY, HUBSPOT_MS)
    internal = "http://10.0.0.7:8000/v1/webhooks/hubspot"
    assert verify_hubspot_v3(
        hubspot_headers(signature),
        "POST",
        [internal, HUBSPOT_URI],
        HUBSPOT_BODY,
        HUBSPOT_SECRET,
        now=HUBSPOT_NOW,
    )
    assert (
        reason_of(
            lambda: verify_hubspot_v3(
                hubspot_headers(signature),
                "POST",
                [internal],
                HUBSPOT_BODY,
                HUBSPOT_SECRET,
                now=HUBSPOT_NOW,
            )
        )
        == "bad_signature"
    )


def test_hubspot_signs_uris_with_some_escapes_decoded() -> None:
    assert hubspot_uri("https://x.example/h?next=%2Fa%3Fb%40c%20d") == (
        "https://x.example/h?next=/a?b@c%20d"
    )


@pytest.mark.parametrize(
    ("body", "secret", "now", "reason"),
    [
        pytest.param(
            HUBSPOT_BODY + b" ", HUBSPOT_SECRET, HUBSPOT_NOW, "bad_signature", id="tampered-body"
        ),
        pytest.param(
            HUBSPOT_BODY, b"another-secret", HUBSPOT_NOW, "bad_signature", id="wrong-secret"
        ),
        pytest.param(
            HUBSPOT_BODY,
            HUBSPOT_SECRET,
            HUBSPOT_NOW + timedelta(minutes=5, seconds=1),
            "stale_timestamp",
            id="older-than-5-minutes",
        ),
    ],
)
def test_hubspot_refusals(body: bytes, secret: bytes, now: datetime, reason: str) -> None:
    signature = sign_hubspot_v3(HUBSPOT_SECRET, "POST", HUBSPOT_URI, HUBSPOT_BODY, HUBSPOT_MS)
    assert (
        reason_of(
            lambda: verify_hubspot_v3(
                hubspot_headers(signature), "POST", [HUBSPOT_URI], body, secret, now=now
            )
        )
        == reason
    )


def test_hubspot_without_its_headers_is_refused() -> None:
    assert reason_of(
        lambda: verify_hubspot_v3(
            {}, "POST", [HUBSPOT_URI], HUBSPOT_BODY, HUBSPOT_SECRET, now=HUBSPOT_NOW
        )
    ) == ("missing_headers")


def test_marketo_token_must_be_present_and_equal() -> None:
    verify_shared_token("s3cret", "s3cret")
    assert reason_of(lambda: verify_shared_token(None, "s3cret")) == "missing_headers"
    assert reason_of(lambda: verify_shared_token("s3cre", "s3cret")) == "bad_token"


def test_no_error_message_repeats_a_secret_or_signature() -> None:
    with pytest.raises(SignatureError) as caught:
        verify_standard_webhook(spec_headers(), b"{}", [parse_secret(SPEC_SECRET)], now=SIGNED_AT)
    assert SPEC_SIGNATURE[3:] not in str(caught.value)
    assert "MfKQ9r8" not in str(caught.value)
