"""Generic CloudEvents become LeadRelay events: identity, keys, ids, and located errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from leadrelay.contracts.envelope import stable_event_id
from leadrelay.contracts.errors import ContractError
from leadrelay.contracts.schemas import validate_event
from leadrelay.identity import lead_key
from services.ingest.domain.mapping.cloudevents import map_batch, map_event
from services.ingest.domain.mapping.common import IngestContext

SECRET = "lead-key-secret"
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
CONTEXT = IngestContext(SECRET, NOW)


def web_activity(**data: Any) -> dict[str, Any]:
    payload = {"action": "pricing_page_view", "occurred_at": "2026-11-24T09:00:00Z", **data}
    return {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "https://site.example/tracker",
        "type": "leadrelay.web_activity.v1",
        "data": payload,
    }


def pointers(call) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ContractError) as caught:
        call()
    return [error.pointer for error in caught.value.errors]


def test_email_is_normalised_and_keys_the_event() -> None:
    event = map_event(web_activity(email="  Ada@Example.COM "), CONTEXT)
    key = lead_key("ada@example.com", SECRET)
    assert event.data["email"] == "ada@example.com"
    assert event.data["lead_key"] == key
    assert event.subject == key
    assert event.data["source"] == "generic"
    validate_event(event)


def test_event_id_derives_from_the_senders_source_and_id() -> None:
    event = map_event(web_activity(email="ada@example.com"), CONTEXT)
    again = map_event(web_activity(email="ada@example.com"), CONTEXT)
    assert (
        event.id == again.id == stable_event_id("generic", "https://site.example/tracker", "evt-1")
    )
    other_source = map_event({**web_activity(email="ada@example.com"), "source": "/other"}, CONTEXT)
    assert other_source.id != event.id


def test_missing_time_is_stamped_with_the_time_of_receipt_and_given_time_is_kept() -> None:
    assert map_event(web_activity(anonymous_id="v-1"), CONTEXT).time == NOW
    sent = {**web_activity(anonymous_id="v-1"), "time": "2026-11-24T08:00:00Z"}
    assert map_event(sent, CONTEXT).time == datetime(2026, 11, 24, 8, tzinfo=UTC)


def test_anonymous_activity_is_keyed_by_the_visitor_id_whatever_subject_was_sent() -> None:
    event = map_event({**web_activity(anonymous_id="visitor-42"), "subject": "wrong"}, CONTEXT)
    assert event.subject == "visitor-42"
    assert "lead_key" not in event.data


def test_extension_attributes_are_kept() -> None:
    event = map_event({**web_activity(anonymous_id="v"), "traceparent": "00-abc-def-01"}, CONTEXT)
    assert event.to_dict()["traceparent"] == "00-abc-def-01"


def test_sales_activity_may_name_the_lead_by_email() -> None:
    raw = {
        "specversion": "1.0",
        "id": "crm-7",
        "source": "/crm",
        "type": "leadrelay.sales_activity.v1",
        "data": {
            "email": "Bob@Example.com",
            "rep_id": "rep-1",
            "outcome": "contacted",
            "occurred_at": "2026-11-24T09:00:00Z",
        },
    }
    event = map_event(raw, CONTEXT)
    assert event.data["lead_key"] == lead_key("bob@example.com", SECRET)
    assert "email" not in event.data


def test_the_maps_acknowledgement_of_a_recycled_lead_is_taken_by_email() -> None:
    raw = {
        "specversion": "1.0",
        "id": "map-9",
        "source": "/marketo",
        "type": "leadrelay.marketing_activity.v1",
        "data": {
            "email": "Bob@Example.com",
            "activity": "nurture_enrolled",
            "program": "recycled-nurture",
            "occurred_at": "2026-11-24T09:00:00Z",
        },
    }
    event = map_event(raw, CONTEXT)
    assert event.data["lead_key"] == lead_key("bob@example.com", SECRET)
    assert "email" not in event.data
    assert "source" not in event.data  # not web activity: the schema has no source


@pytest.mark.parametrize(
    "event_type", ["leadrelay.lead_scored.v1", "com.example.unknown", "leadrelay.lead_assigned.v1"]
)
def test_only_ingestible_types_are_taken(event_type: str) -> None:
    assert pointers(
        lambda: map_event({**web_activity(anonymous_id="v"), "type": event_type}, CONTEXT)
    ) == ["/type"]


def test_every_bad_field_is_named_once_in_one_answer() -> None:
    raw = web_activity(
        email="not-an-email", action="Page View!", occurred_at="yesterday", colour="blue"
    )
    del raw["source"]
    assert sorted(pointers(lambda: map_event(raw, CONTEXT))) == [
        "/data/action",
        "/data/colour",
        "/data/email",
        "/data/occurred_at",
        "/source",
    ]


def test_a_lead_key_that_does_not_belong_to_the_email_is_refused() -> None:
    assert pointers(
        lambda: map_event(web_activity(email="ada@example.com", lead_key="lk_x"), CONTEXT)
    ) == ["/data/lead_key"]


def test_activity_without_anyone_to_attach_it_to_is_refused() -> None:
    assert pointers(lambda: map_event(web_activity(), CONTEXT)) == ["/data"]


def test_a_batch_names_bad_items_by_index_and_is_refused_whole() -> None:
    batch = [
        web_activity(anonymous_id="v1"),
        web_activity(anonymous_id="v2"),
        web_activity(email="nope"),
        "not an object",
    ]
    assert pointers(lambda: map_batch(batch, CONTEXT)) == ["/2/data/email", "/3"]


def test_a_batch_must_be_an_array_and_a_single_event_an_object() -> None:
    assert pointers(lambda: map_batch(web_activity(anonymous_id="v"), CONTEXT)) == [""]
    assert pointers(lambda: map_event([web_activity(anonymous_id="v")], CONTEXT)) == [""]
    assert map_batch([], CONTEXT) == []
