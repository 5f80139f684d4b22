"""HubSpot deliveries: the Webhooks API's event arrays and a workflow's contact record.

Two shapes reach ``POST /v1/webhooks/hubspot``:

* **Webhooks API** (an app's subscriptions): a JSON array of up to 100 events such as
  ``{"eventId": 1, "subscriptionType": "contact.creation", "portalId": 62515, "objectId": 123,
  "occurredAt": 1564113600000, ...}``. These carry the contact's id, not its email, so they
  become ``web_activity`` of the visitor ``hubspot-contact:<portal>:<contact id>``; the one
  exception is a change of the ``email`` property, which identifies the contact (lead key and
  visitor id together, so scoring can link the earlier activity). Events about other objects
  (deals, companies, ...) are acknowledged and ignored.
* **Workflow "Send a webhook"** (enrolment on a form submission, "include all properties"): a
  JSON object, the contact record with ``properties`` and ``form-submissions``. It becomes one
  ``form_submitted`` for the most recent submission.

Event ids come from HubSpot's own ids (portal, subscription type, object, event id, time; the
``attemptNumber`` is left out), so HubSpot's redeliveries are recognised downstream.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leadrelay.contracts.envelope import CloudEvent, stable_event_id
from leadrelay.contracts.errors import ContractError, FieldError, from_pydantic
from leadrelay.contracts.topics import EventType
from leadrelay.identity import InvalidEmailError, normalise_email
from services.ingest.domain.mapping.common import (
    SOURCE_URI,
    IngestContext,
    envelope,
    identify,
    raise_if,
    repoint,
    validated,
    without_id_conflicts,
    without_none,
)
from services.ingest.domain.mapping.profile import profile_from
from services.ingest.domain.problems import prefixed

HUBSPOT = "hubspot"
SOURCE = SOURCE_URI + HUBSPOT
CONTACT_OBJECT_TYPE_ID = "0-1"
CREATED, PROPERTY_CHANGED, IDENTIFIED = (
    "crm_contact_created",
    "crm_property_changed",
    "crm_contact_identified",
)


MAX_EPOCH_MILLIS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: HubSpot sends epoch milliseconds; beyond this no datetime exists."""


class _Lenient(BaseModel):
    """HubSpot adds fields over time; only the ones used are read."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class WebhookEvent(_Lenient):
    """One element of a Webhooks API delivery."""

    event_id: int = Field(alias="eventId")
    portal_id: int = Field(alias="portalId")
    occurred_at: int = Field(alias="occurredAt", ge=0, le=MAX_EPOCH_MILLIS)
    subscription_type: str = Field(alias="subscriptionType", min_length=1)
    object_id: int = Field(alias="objectId")
    object_type_id: str | None = Field(default=None, alias="objectTypeId")
    property_name: str | None = Field(default=None, alias="propertyName")
    property_value: str | None = Field(default=None, alias="propertyValue")
    change_source: str | None = Field(default=None, alias="changeSource")

    @property
    def kind(self) -> str | None:
        """``creation`` / ``propertyChange`` for contact events, None for anything else."""
        family, _, kind = self.subscription_type.partition(".")
        is_contact = family == "contact" or (
            family == "object" and self.object_type_id == CONTACT_OBJECT_TYPE_ID
        )
        return kind if is_contact and kind in ("creation", "propertyChange") else None


class FormSubmission(_Lenient):
    """One entry of a contact record's ``form-submissions``."""

    form_id: str = Field(alias="form-id", min_length=1)
    title: str | None = None
    timestamp: int | None = Field(default=None, ge=0, le=MAX_EPOCH_MILLIS)
    conversion_id: str | None = Field(default=None, alias="conversion-id")
    page_url: str | None = Field(default=None, alias="page-url")


class ContactRecord(_Lenient):
    """A workflow's contact record (HubSpot's contact JSON)."""

    vid: int | None = None
    object_id: int | None = Field(default=None, alias="objectId")
    portal_id: int | None = Field(default=None, alias="portal-id")
    properties: dict[str, Any] = Field(default_factory=dict)
    form_submissions: list[FormSubmission] = Field(default_factory=list, alias="form-submissions")


def map_delivery(raw: object, context: IngestContext) -> list[CloudEvent]:
    """Either shape; ``ContractError`` with pointers into the body."""
    if isinstance(raw, list):
        return _map_webhook_events(raw, context)
    if isinstance(raw, dict):
        return [_map_contact_record(raw, context)]
    raise ContractError(
        [
            FieldError(
                "",
                "must be a JSON array of webhook events or a workflow's contact record (an object)",
            )
        ]
    )


def _map_webhook_events(items: list[Any], context: IngestContext) -> list[CloudEvent]:
    events: list[tuple[int, CloudEvent]] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        try:
            parsed = WebhookEvent.model_validate(item)
            if parsed.kind is not None:
                events.append((index, _activity(parsed, context)))
        except ValidationError as error:
            errors.extend(from_pydantic(error, (index,)).errors)
        except ContractError as error:
            errors.extend(prefixed(error.errors, f"/{index}"))
    raise_if(errors)
    return without_id_conflicts(events)


def _activity(event: WebhookEvent, context: IngestContext) -> CloudEvent:
    visitor = f"hubspot-contact:{event.portal_id}:{event.object_id}"
    data: dict[str, Any] = without_none(
        {
            "anonymous_id": visitor,
            "action": CREATED if event.kind == "creation" else PROPERTY_CHANGED,
            "occurred_at": datetime.fromtimestamp(event.occurred_at / 1000, UTC).isoformat(),
            "source": HUBSPOT,
            "properties": without_none(
                {
                    "hubspot_portal_id": event.portal_id,
                    "hubspot_contact_id": event.object_id,
                    "hubspot_property": event.property_name,
                    "change_source": event.change_source,
                }
            ),
        }
    )
    if event.kind == "propertyChange" and event.property_name == "email":
        data.update(_identity(event.property_value, context))
    event_id = stable_event_id(
        HUBSPOT,
        str(event.portal_id),
        event.subscription_type,
        str(event.object_id),
        str(event.event_id),
        str(event.occurred_at),
    )
    raw = envelope(EventType.WEB_ACTIVITY, SOURCE, event_id, data, data["occurred_at"])
    return validated(raw)


def _identity(value: str | None, context: IngestContext) -> dict[str, Any]:
    """The lead behind a new email value; an empty or invalid one identifies nobody."""
    try:
        email = normalise_email(value or "")
    except InvalidEmailError:
        return {}
    found: dict[str, Any] = {"email": email}
    identify(found, context)
    return {**found, "action": IDENTIFIED}


def _map_contact_record(raw: dict[str, Any], context: IngestContext) -> CloudEvent:
    try:
        record = ContactRecord.model_validate(raw)
    except ValidationError as error:
        raise from_pydantic(error) from None
    properties = {name: _value(v) for name, v in record.properties.items()}
    if not record.form_submissions:
        raise ContractError(
            [
                FieldError(
                    "/form-submissions",
                    "needs at least one form submission (enrol the workflow on form submissions)",
                )
            ]
        )
    if not isinstance(properties.get("email"), str):
        raise ContractError([FieldError("/properties/email", "is required")])
    latest = max(record.form_submissions, key=lambda s: s.timestamp or 0)
    submitted_at = (
        datetime.fromtimestamp(latest.timestamp / 1000, UTC)
        if latest.timestamp is not None
        else context.now
    )
    contact_id = record.vid if record.vid is not None else record.object_id
    data = without_none(
        {
            "email": properties["email"],
            "anonymous_id": (
                f"hubspot-contact:{record.portal_id}:{contact_id}"
                if contact_id is not None and record.portal_id is not None
                else None
            ),
            "form_id": latest.form_id,
            "form_name": latest.title or None,
            "occurred_at": submitted_at.isoformat(),
            "source": HUBSPOT,
            "profile": profile_from(properties, _HUBSPOT_PROFILE),
        }
    )
    errors = repoint(identify(data, context), "/data/email", "/properties/email")
    raise_if(errors)
    event_id = stable_event_id(
        HUBSPOT,
        "form",
        latest.conversion_id or "",
        str(contact_id),
        latest.form_id,
        str(latest.timestamp),
    )
    try:
        return validated(envelope(EventType.FORM_SUBMITTED, SOURCE, event_id, data, submitted_at))
    except ContractError as error:
        raise ContractError(prefixed(error.errors, "/event")) from None


_HUBSPOT_PROFILE = {
    "firstname": "first_name",
    "lastname": "last_name",
    "company": "company",
    "jobtitle": "job_title",
    "numemployees": "company_size",
    "industry": "industry",
    "country": "country",
    "phone": "phone",
}
"""HubSpot's internal property names -> LeadRelay profile fields."""


def _value(property_value: Any) -> Any:
    """The legacy contact JSON wraps each value as ``{"value": ...}``; newer bodies do not."""
    if isinstance(property_value, dict):
        return property_value.get("value")
    return property_value


__all__ = ["HUBSPOT", "map_delivery"]
