"""The CloudEvent envelope: what goes on the wire comes back unchanged."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadrelay.contracts import CloudEvent, ContractError, new_event, stable_event_id
from leadrelay.contracts.envelope import uuid5_text
from leadrelay.contracts.events import LeadRecycled

from .support import example

NOW = datetime(2024, 5, 6, 9, 15, tzinfo=UTC)


def test_bytes_to_event_to_bytes_is_lossless() -> None:
    original = CloudEvent.from_dict(example("leadrelay.lead_assigned.v1")).to_bytes()
    assert CloudEvent.from_bytes(original).to_bytes() == original


def test_wire_format_is_structured_json_with_rfc3339_time() -> None:
    event = new_event(
        "leadrelay.lead_recycled.v1",
        "/leadrelay/sla-monitor",
        {"lead_key": "lk_1", "reason": "manual", "recycled_at": "2024-05-06T09:15:00Z"},
        subject="lk_1",
        id="evt-1",
        time=NOW,
    )
    wire = json.loads(event.to_bytes().decode("utf-8"))
    assert wire == {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/leadrelay/sla-monitor",
        "type": "leadrelay.lead_recycled.v1",
        "time": "2024-05-06T09:15:00Z",
        "subject": "lk_1",
        "datacontenttype": "application/json",
        "dataschema": "https://leadrelay.dev/schemas/leadrelay.lead_recycled.v1.json",
        "data": {"lead_key": "lk_1", "reason": "manual", "recycled_at": "2024-05-06T09:15:00Z"},
    }


def test_a_time_zone_offset_survives_the_round_trip() -> None:
    berlin = NOW.astimezone(timezone(timedelta(hours=2)))
    event = new_event("x.y", "/t", {}, subject=None, id="1", time=berlin)
    assert CloudEvent.from_bytes(event.to_bytes()).time == berlin
    assert b'"time":"2024-05-06T11:15:00+02:00"' in event.to_bytes()


def test_model_payloads_leave_absent_optional_fields_out() -> None:
    payload = LeadRecycled(lead_key="lk_1", reason="manual", recycled_at=NOW)
    event = new_event(LeadRecycled.EVENT_TYPE, "/ops", payload, subject="lk_1", id="e", time=NOW)
    assert event.data == {
        "lead_key": "lk_1",
        "reason": "manual",
        "recycled_at": "2024-05-06T09:15:00Z",
    }


def test_extension_attributes_are_kept_through_a_round_trip() -> None:
    raw = example("leadrelay.lead_recycled.v1") | {"traceparent": "00-4bf92f35-00f067aa-01"}
    event = CloudEvent.from_dict(raw)
    assert json.loads(CloudEvent.from_bytes(event.to_bytes()).to_bytes()) == raw


def test_without_an_id_each_event_gets_a_fresh_uuid() -> None:
    first, second = (new_event("x.y", "/t", {}, subject=None, time=NOW) for _ in range(2))
    assert first.id != second.id
    assert uuid.UUID(first.id).version == 4


def test_stable_ids_are_the_same_for_the_same_fact_only() -> None:
    assert stable_event_id("hubspot", "123") == stable_event_id("hubspot", "123")
    assert stable_event_id("hubspot", "123") != stable_event_id("hubspot", "1", "23")


@given(namespace=st.uuids(), name=st.text())
def test_stable_ids_are_rfc_4122_name_based_sha1_uuids(namespace: uuid.UUID, name: str) -> None:
    """Ids published before the fast derivation must come out the same after it."""
    assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ContractError) as caught:
        new_event("x.y", "/t", {}, subject=None, id="1", time=datetime(2024, 5, 6, 9, 15))
    assert [e.pointer for e in caught.value.errors] == ["/time"]


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xff\xfe", b"[1, 2]", b'{"specversion": "1.0", "id": "1"}', b"not json"],
)
def test_bytes_that_are_not_a_cloudevent_raise_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match="/"):
        CloudEvent.from_bytes(raw)


def test_events_are_immutable() -> None:
    event = CloudEvent.from_dict(example("leadrelay.lead_recycled.v1"))
    with pytest.raises(ValueError, match="frozen"):
        event.id = "other"  # type: ignore[misc]
