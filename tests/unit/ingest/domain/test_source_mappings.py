"""HubSpot, Marketo and CRM bodies become schema-valid events with stable ids."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from leadrelay.contracts.errors import ContractError
from leadrelay.contracts.schemas import validate_event
from leadrelay.identity import lead_key
from services.ingest.domain.mapping.common import IngestContext
from services.ingest.domain.mapping.hubspot import map_delivery
from services.ingest.domain.mapping.marketo import map_call
from services.ingest.domain.mapping.profile import company_size, profile_from
from services.ingest.domain.mapping.sales import map_activities

SECRET = "lead-key-secret"
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
CONTEXT = IngestContext(SECRET, NOW)
ADA = lead_key("ada@example.com", SECRET)


def pointers(call) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ContractError) as caught:
        call()
    return [error.pointer for error in caught.value.errors]


def hubspot_event(**fields: Any) -> dict[str, Any]:
    return {
        "eventId": 100,
        "subscriptionId": 7,
        "portalId": 62515,
        "occurredAt": 1_764_000_000_000,
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
        "objectId": 123,
        "changeSource": "CRM_UI",
        **fields,
    }


class TestHubSpotWebhooks:
    def test_contact_creation_is_activity_of_the_hubspot_contact(self) -> None:
        [event] = map_delivery([hubspot_event()], CONTEXT)
        validate_event(event)
        assert event.type == "leadrelay.web_activity.v1"
        assert event.subject == "hubspot-contact:62515:123"
        assert event.data["action"] == "crm_contact_created"
        assert event.data["occurred_at"] == "2025-11-24T16:00:00+00:00"

    def test_an_email_change_identifies_the_contact(self) -> None:
        [event] = map_delivery(
            [
                hubspot_event(
                    subscriptionType="contact.propertyChange",
                    propertyName="email",
                    propertyValue="Ada@Example.com",
                )
            ],
            CONTEXT,
        )
        validate_event(event)
        assert event.subject == ADA
        assert event.data["anonymous_id"] == "hubspot-contact:62515:123"
        assert event.data["email"] == "ada@example.com"
        assert event.data["action"] == "crm_contact_identified"

    def test_other_property_changes_name_the_property_but_not_its_value(self) -> None:
        [event] = map_delivery(
            [
                hubspot_event(
                    subscriptionType="contact.propertyChange",
                    propertyName="phone",
                    propertyValue="+44 20 7946 0000",
                )
            ],
            CONTEXT,
        )
        assert event.data["properties"]["hubspot_property"] == "phone"
        assert "+44 20 7946 0000" not in event.to_bytes().decode()

    def test_generic_object_events_of_contacts_are_mapped_and_others_ignored(self) -> None:
        events = map_delivery(
            [
                hubspot_event(subscriptionType="object.creation", objectTypeId="0-1"),
                hubspot_event(subscriptionType="object.creation", objectTypeId="0-3"),
                hubspot_event(subscriptionType="deal.creation"),
                hubspot_event(subscriptionType="contact.deletion"),
            ],
            CONTEXT,
        )
        assert [e.data["action"] for e in events] == ["crm_contact_created"]

    def test_a_redelivery_maps_to_the_same_event_id(self) -> None:
        [first] = map_delivery([hubspot_event()], CONTEXT)
        [retry] = map_delivery([hubspot_event(attemptNumber=3)], CONTEXT)
        [other] = map_delivery([hubspot_event(eventId=101)], CONTEXT)
        assert first.id == retry.id != other.id

    def test_bad_items_are_named_by_index(self) -> None:
        bad = hubspot_event()
        del bad["eventId"]
        assert pointers(lambda: map_delivery([hubspot_event(), bad], CONTEXT)) == ["/1/eventId"]
        assert pointers(lambda: map_delivery("hello", CONTEXT)) == [""]


def contact_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "vid": 123,
        "portal-id": 62515,
        "properties": {
            "email": {"value": "Ada@Example.com"},
            "firstname": {"value": "Ada"},
            "jobtitle": {"value": "CTO"},
            "numemployees": {"value": "25-50"},
            "country": {"value": "United Kingdom"},
            "lastname": {"value": ""},
        },
        "form-submissions": [
            {
                "form-id": "ebook-download",
                "title": "Ebook",
                "timestamp": 1_764_000_000_000,
                "conversion-id": "c-1",
            },
            {
                "form-id": "demo-request",
                "title": "Demo",
                "timestamp": 1_764_000_100_000,
                "conversion-id": "c-2",
                "page-url": "https://example.com/demo",
            },
        ],
    }
    record.update(changes)
    return record


class TestHubSpotWorkflow:
    def test_the_latest_form_submission_becomes_form_submitted(self) -> None:
        [event] = map_delivery(contact_record(), CONTEXT)
        validate_event(event)
        assert event.type == "leadrelay.form_submitted.v1"
        assert event.subject == ADA
        assert event.data["form_id"] == "demo-request"
        assert event.data["anonymous_id"] == "hubspot-contact:62515:123"
        assert event.data["profile"] == {
            "first_name": "Ada",
            "job_title": "CTO",
            "company_size": 25,
            "extra": {"country_name": "United Kingdom"},
        }

    def test_flat_property_values_are_understood_too(self) -> None:
        record = contact_record(properties={"email": "ada@example.com", "country": "gb"})
        [event] = map_delivery(record, CONTEXT)
        assert event.data["profile"] == {"country": "GB"}

    def test_the_same_submission_maps_to_the_same_id(self) -> None:
        assert (
            map_delivery(contact_record(), CONTEXT)[0].id
            == map_delivery(
                contact_record(), IngestContext(SECRET, datetime(2030, 1, 1, tzinfo=UTC))
            )[0].id
        )

    def test_refusals_point_into_the_record(self) -> None:
        assert pointers(lambda: map_delivery(contact_record(properties={}), CONTEXT)) == [
            "/properties/email"
        ]
        bad_email = contact_record(properties={"email": {"value": "nobody"}})
        assert pointers(lambda: map_delivery(bad_email, CONTEXT)) == ["/properties/email"]
        assert pointers(
            lambda: map_delivery(contact_record(**{"form-submissions": []}), CONTEXT)
        ) == ["/form-submissions"]


def marketo(**fields: Any) -> dict[str, Any]:
    return {
        "id": "1001-2026-11-24 09:00:00",
        "action": "form_submitted",
        "email": "Ada@Example.com",
        "marketo_lead_id": "1001",
        "form_id": "demo-request",
        "form_name": "Demo",
        "first_name": "Ada",
        "company_size": "250",
        "country": "",
        "phone": "",
        **fields,
    }


class TestMarketo:
    def test_a_form_call_becomes_form_submitted(self) -> None:
        event = map_call(marketo(), CONTEXT)
        validate_event(event)
        assert event.subject == ADA
        assert event.data["anonymous_id"] == "marketo-lead:1001"
        assert event.data["profile"] == {"first_name": "Ada", "company_size": 250}
        assert event.data["occurred_at"] == NOW.isoformat()
        assert event.id == map_call(marketo(first_name="Adaline"), CONTEXT).id

    def test_other_actions_become_web_activity_even_without_an_email(self) -> None:
        event = map_call(
            marketo(action="email_click", email="", url="https://e.example/x"), CONTEXT
        )
        validate_event(event)
        assert event.type == "leadrelay.web_activity.v1"
        assert event.subject == "marketo-lead:1001"

    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            ({"emial": "x@example.com"}, ["/emial"]),
            ({"form_id": ""}, ["/form_id"]),
            ({"email": "not an email"}, ["/email"]),
            ({"action": "Fills Out Form"}, ["/action"]),
            ({"id": ""}, ["/id"]),
            ({"action": "page_view", "email": "", "marketo_lead_id": ""}, ["/email"]),
        ],
    )
    def test_refusals_name_the_template_key(
        self, changes: dict[str, Any], expected: list[str]
    ) -> None:
        assert pointers(lambda: map_call(marketo(**changes), CONTEXT)) == expected


class TestSalesActivity:
    def test_the_body_is_the_payload_with_an_email_convenience(self) -> None:
        [event] = map_activities(
            {
                "id": "task-9",
                "email": "ada@example.com",
                "rep_id": "rep-1",
                "outcome": "accepted",
                "crm": "salesforce",
                "occurred_at": "2026-11-24T09:00:00Z",
            },
            CONTEXT,
        )
        validate_event(event)
        assert event.subject == event.data["lead_key"] == ADA
        assert "email" not in event.data
        assert "id" not in event.data
        assert event.time == datetime(2026, 11, 24, 9, tzinfo=UTC)

    def test_without_a_crm_id_the_same_fact_gets_the_same_id(self) -> None:
        body = {
            "lead_key": ADA,
            "rep_id": "rep-1",
            "outcome": "contacted",
            "occurred_at": "2026-11-24T09:00:00Z",
        }
        first = map_activities(body, CONTEXT)[0]
        assert first.id == map_activities(dict(body), CONTEXT)[0].id
        assert first.id != map_activities({**body, "outcome": "accepted"}, CONTEXT)[0].id

    def test_refusals_point_into_the_body(self) -> None:
        good = {
            "lead_key": ADA,
            "rep_id": "rep-1",
            "outcome": "won",
            "occurred_at": "2026-11-24T09:00:00Z",
        }
        bad = {"lead_key": ADA, "outcome": "maybe", "occurred_at": "2026-11-24T09:00:00Z"}
        assert sorted(pointers(lambda: map_activities([good, bad], CONTEXT))) == [
            "/1/outcome",
            "/1/rep_id",
        ]
        assert pointers(lambda: map_activities({**good, "id": 5}, CONTEXT)) == ["/id"]
        assert pointers(lambda: map_activities(42, CONTEXT)) == [""]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (250, 250),
        ("250", 250),
        ("1,000+", 1000),
        ("25-50", 25),
        ("lots", None),
        (True, None),
        (-3, None),
        (12.7, 12),
    ],
)
def test_company_size_is_read_from_what_platforms_hold(value: object, expected: int | None) -> None:
    assert company_size(value) == expected


def test_a_company_size_that_is_not_a_number_is_kept_in_extra() -> None:
    names = {"size": "company_size", "country": "country"}
    profile = profile_from({"size": "about fifty", "country": "Germany"}, names)
    assert profile == {"extra": {"company_size_text": "about fifty", "country_name": "Germany"}}
    assert profile_from({"size": "25-50"}, names) == {"company_size": 25}


def test_an_unparsed_company_size_reaches_the_event() -> None:
    event = map_call(marketo(company_size="Enterprise"), CONTEXT)
    validate_event(event)
    assert event.data["profile"] == {
        "first_name": "Ada",
        "extra": {"company_size_text": "Enterprise"},
    }


def test_overlong_profile_text_is_cut_to_the_contract() -> None:
    profile = profile_from({"n": "x" * 300, "p": "1" * 80}, {"n": "first_name", "p": "phone"})
    assert len(profile["first_name"]) == 256
    assert len(profile["phone"]) == 64


def test_a_hubspot_time_beyond_any_calendar_is_a_bad_field_not_a_crash() -> None:
    """Found by the OpenAPI fuzz run: occurredAt in the year 287396 used to raise a 500."""
    far_future = 9_007_199_254_740_991  # the largest integer a JSON sender can hold exactly
    assert pointers(lambda: map_delivery([hubspot_event(occurredAt=far_future)], CONTEXT)) == [
        "/0/occurredAt"
    ]
