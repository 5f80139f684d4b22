"""Marketo webhook calls: the JSON template documented in ``docs/integrations.md``.

Marketo sends whatever template its admin pasted, with ``{{lead.*}}`` tokens filled in, and
an empty string where the lead has no value. So empty strings count as absent, and unknown
keys are refused (a misspelt key in the template would otherwise be dropped silently).
``action: "form_submitted"`` becomes ``leadrelay.form_submitted.v1``; any other action
becomes ``leadrelay.web_activity.v1``. The event id derives from the template's ``id``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from leadrelay.contracts.envelope import CloudEvent, stable_event_id
from leadrelay.contracts.errors import ContractError, FieldError, from_pydantic
from leadrelay.contracts.topics import EventType
from services.ingest.domain.mapping.common import (
    SOURCE_URI,
    IngestContext,
    envelope,
    identify,
    raise_if,
    repoint,
    validated,
    without_none,
)
from services.ingest.domain.mapping.profile import profile_from

MARKETO = "marketo"
SOURCE = SOURCE_URI + MARKETO
FORM_SUBMITTED = "form_submitted"

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
Scalar = str | int | float | bool


class MarketoCall(BaseModel):
    """The body of one Marketo webhook call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    action: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
    email: Text | None = None
    marketo_lead_id: Text | None = None
    form_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    form_name: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    url: Text | None = None
    occurred_at: AwareDatetime | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    company: Text | None = None
    job_title: Text | None = None
    company_size: int | str | None = None
    industry: Text | None = None
    country: Text | None = None
    phone: Text | None = None
    properties: (
        Annotated[
            dict[Annotated[str, Field(min_length=1, max_length=100)], Scalar], Field(max_length=100)
        ]
        | None
    ) = None

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, raw: Any) -> Any:
        """Marketo renders a token without a value as ``""``."""
        if isinstance(raw, dict):
            return {k: v for k, v in raw.items() if not (isinstance(v, str) and not v.strip())}
        return raw


_PROFILE = {
    name: name
    for name in (
        "first_name",
        "last_name",
        "company",
        "job_title",
        "company_size",
        "industry",
        "country",
        "phone",
    )
}


def map_call(raw: object, context: IngestContext) -> CloudEvent:
    """One call -> one event; ``ContractError`` with pointers into the body."""
    if not isinstance(raw, dict):
        raise ContractError([FieldError("", "must be a JSON object (the Marketo template)")])
    try:
        call = MarketoCall.model_validate(raw)
    except ValidationError as error:
        raise from_pydantic(error) from None
    occurred_at = (call.occurred_at or context.now).isoformat()
    visitor = f"marketo-lead:{call.marketo_lead_id}" if call.marketo_lead_id else None
    if call.action == FORM_SUBMITTED:
        event_type, data = EventType.FORM_SUBMITTED, _form(call, visitor, occurred_at)
    else:
        event_type, data = EventType.WEB_ACTIVITY, _activity(call, visitor, occurred_at)
    raise_if(repoint(identify(data, context), "/data", ""))
    event_id = stable_event_id(MARKETO, call.id)
    try:
        return validated(envelope(event_type, SOURCE, event_id, data, occurred_at))
    except ContractError as error:
        raise ContractError(repoint(error.errors, "/data", "")) from None


def _form(call: MarketoCall, visitor: str | None, occurred_at: str) -> dict[str, Any]:
    errors = [
        FieldError(f"/{name}", f"is required when action is {FORM_SUBMITTED}")
        for name in ("email", "form_id")
        if getattr(call, name) is None
    ]
    raise_if(errors)
    return without_none(
        {
            "email": call.email,
            "anonymous_id": visitor,
            "form_id": call.form_id,
            "form_name": call.form_name,
            "occurred_at": occurred_at,
            "source": MARKETO,
            "profile": profile_from(call.model_dump(), _PROFILE),
        }
    )


def _activity(call: MarketoCall, visitor: str | None, occurred_at: str) -> dict[str, Any]:
    if call.email is None and visitor is None:
        raise ContractError([FieldError("/email", "needs email or marketo_lead_id")])
    properties = dict(call.properties or {})
    if call.form_id is not None:
        properties.setdefault("form_id", call.form_id)
    return without_none(
        {
            "email": call.email,
            "anonymous_id": visitor,
            "action": call.action,
            "url": call.url,
            "occurred_at": occurred_at,
            "source": MARKETO,
            "properties": properties or None,
        }
    )
