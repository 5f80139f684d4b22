"""The replay window's verdicts: new, a sender's retry, a replay, a conflict; expiry; capacity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.domain.delivery_window import (
    Accepted,
    DeliveryConflict,
    DeliveryWindow,
    Seen,
)
from services.ingest.domain.signatures import Delivery, SignatureError

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def delivery(content: str = "c1", body: str = "b1", delivery_id: str = "msg_1") -> Delivery:
    return Delivery(delivery_id, content, body, NOW)


def window_with(*accepted: tuple[str, Accepted]) -> DeliveryWindow:
    window = DeliveryWindow(capacity=10)
    for delivery_id, entry in accepted:
        assert window.add("generic", delivery_id, entry)
    return window


def test_an_unknown_delivery_is_new() -> None:
    assert DeliveryWindow(capacity=10).verdict("generic", delivery()) is Seen.NEW


def test_the_same_signed_content_again_is_a_replay() -> None:
    window = window_with(("msg_1", Accepted("c1", "b1", NOW + timedelta(minutes=5))))
    with pytest.raises(SignatureError) as refused:
        window.verdict("generic", delivery())
    assert refused.value.reason == "replayed"


def test_the_same_body_signed_anew_is_a_senders_retry() -> None:
    window = window_with(("msg_1", Accepted("c1", "b1", NOW + timedelta(minutes=5))))
    assert window.verdict("generic", delivery(content="c2")) is Seen.RETRY_OF_ACCEPTED


def test_another_body_under_an_accepted_id_is_a_conflict() -> None:
    window = window_with(("msg_1", Accepted("c1", "b1", NOW + timedelta(minutes=5))))
    with pytest.raises(DeliveryConflict):
        window.verdict("generic", delivery(content="c2", body="b2"))


def test_a_row_without_a_body_digest_takes_any_new_body_as_a_retry() -> None:
    window = window_with(("msg_1", Accepted("c1", None, NOW + timedelta(minutes=5))))
    assert window.verdict("generic", delivery(content="c2", body="b2")) is Seen.RETRY_OF_ACCEPTED


def test_ids_are_per_source() -> None:
    window = window_with(("msg_1", Accepted("c1", "b1", NOW + timedelta(minutes=5))))
    assert window.verdict("hubspot", delivery()) is Seen.NEW


def test_the_first_delivery_kept_under_an_id_stays() -> None:
    window = window_with(("msg_1", Accepted("c1", "b1", NOW + timedelta(minutes=5))))
    assert window.add("generic", "msg_1", Accepted("c9", "b9", NOW + timedelta(minutes=9)))
    with pytest.raises(SignatureError):
        window.verdict("generic", delivery())


def test_expired_entries_are_forgotten_and_live_ones_kept() -> None:
    window = window_with(
        ("msg_old", Accepted("c1", "b1", NOW - timedelta(seconds=1))),
        ("msg_live", Accepted("c2", "b2", NOW + timedelta(seconds=1))),
    )
    window.forget_expired(NOW)
    assert len(window) == 1
    assert window.verdict("generic", delivery(delivery_id="msg_old")) is Seen.NEW
    with pytest.raises(SignatureError):
        window.verdict("generic", delivery(content="c2", body="b2", delivery_id="msg_live"))


def test_a_full_window_keeps_what_it_has_and_says_it_did_not_keep_more() -> None:
    window = DeliveryWindow(capacity=1)
    entry = Accepted("c1", "b1", NOW + timedelta(minutes=5))
    assert window.add("generic", "msg_1", entry)
    assert not window.add("generic", "msg_2", entry)
    assert len(window) == 1
    assert window.verdict("generic", delivery(delivery_id="msg_2")) is Seen.NEW
