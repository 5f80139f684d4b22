"""The four ingest routes: thin, each a fixed sequence of gateway steps."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from leadrelay.api_auth import ApiToken
from services.ingest import openapi
from services.ingest.gateway import Gateway
from services.ingest.mapping import cloudevents, hubspot, marketo, sales
from services.ingest.openapi import CLOUDEVENT_BATCH_JSON, CLOUDEVENT_JSON, JSON
from services.ingest.signatures import (
    MARKETO_TOKEN,
    verify_hubspot_v3,
    verify_shared_token,
    verify_standard_webhook,
)

EVENTS, HUBSPOT, MARKETO, SALES = (
    "/v1/events",
    "/v1/webhooks/hubspot",
    "/v1/webhooks/marketo",
    "/v1/sales-activity",
)
GENERIC_SOURCE, HUBSPOT_SOURCE = "generic", "hubspot"


def ingest_router(gateway: Gateway) -> APIRouter:
    """The ingest routes on ``gateway``."""
    router = APIRouter(tags=["ingest"])

    @router.post(
        EVENTS,
        status_code=202,
        response_model=openapi.Accepted,
        openapi_extra=openapi.STANDARD_WEBHOOKS,
        responses=openapi.problem_responses(400, 401, 409, 413, 415, 422, 503),
    )
    async def post_events(request: Request) -> JSONResponse:
        """Accept one CloudEvent or a batch from a source signed per Standard Webhooks."""
        media_type = gateway.media_type(request, (CLOUDEVENT_JSON, CLOUDEVENT_BATCH_JSON))
        body = await gateway.read_body(request)
        delivery = gateway.authentic(
            EVENTS,
            lambda: verify_standard_webhook(
                request.headers,
                body,
                gateway.webhook_keys,
                now=gateway.wall_clock(),
                tolerance=gateway.tolerance,
            ),
        )
        seen = await gateway.history(EVENTS, GENERIC_SOURCE, delivery)
        raw = gateway.parse_json(body)
        if media_type == CLOUDEVENT_BATCH_JSON:
            events = gateway.map(lambda context: cloudevents.map_batch(raw, context))
        else:
            events = gateway.map(lambda context: [cloudevents.map_event(raw, context)])
        return await gateway.accept(
            EVENTS, events, source=GENERIC_SOURCE, delivery=delivery, seen=seen
        )

    @router.post(
        HUBSPOT,
        status_code=202,
        response_model=openapi.Accepted,
        openapi_extra=openapi.HUBSPOT,
        responses=openapi.problem_responses(400, 401, 413, 415, 422, 503),
    )
    async def post_hubspot(request: Request) -> JSONResponse:
        """Accept a HubSpot webhook or workflow delivery verified by its v3 signature."""
        gateway.media_type(request, (JSON,))
        body = await gateway.read_body(request)
        delivery = gateway.authentic(
            HUBSPOT,
            lambda: verify_hubspot_v3(
                request.headers,
                request.method,
                hubspot_uris(request),
                body,
                gateway.hubspot_secret,
                now=gateway.wall_clock(),
                tolerance=gateway.tolerance,
            ),
        )
        seen = await gateway.history(HUBSPOT, HUBSPOT_SOURCE, delivery)
        raw = gateway.parse_json(body)
        events = gateway.map(lambda context: hubspot.map_delivery(raw, context))
        return await gateway.accept(
            HUBSPOT, events, source=HUBSPOT_SOURCE, delivery=delivery, seen=seen
        )

    @router.post(
        MARKETO,
        status_code=202,
        response_model=openapi.Accepted,
        openapi_extra=openapi.MARKETO,
        responses=openapi.problem_responses(400, 401, 413, 415, 422, 503),
    )
    async def post_marketo(request: Request) -> JSONResponse:
        """Accept a Marketo webhook call (the documented template) with the shared token."""
        gateway.media_type(request, (JSON,))
        body = await gateway.read_body(request)
        gateway.authentic(
            MARKETO,
            lambda: verify_shared_token(request.headers.get(MARKETO_TOKEN), gateway.marketo_token),
        )
        raw = gateway.parse_json(body)
        events = gateway.map(lambda context: [marketo.map_call(raw, context)])
        return await gateway.accept(MARKETO, events)

    @router.post(
        SALES,
        status_code=202,
        response_model=openapi.Accepted,
        openapi_extra=openapi.SALES_ACTIVITY,
        responses=openapi.problem_responses(400, 401, 413, 415, 422, 503),
    )
    async def post_sales_activity(request: Request, _: ApiToken) -> JSONResponse:
        """Accept sales feedback from a CRM (one activity or an array), bearer-authenticated."""
        gateway.media_type(request, (JSON,))
        body = await gateway.read_body(request)
        raw = gateway.parse_json(body)
        events = gateway.map(lambda context: sales.map_activities(raw, context))
        return await gateway.accept(SALES, events)

    return router


def hubspot_uris(request: Request) -> list[str]:
    """The URLs HubSpot may have signed: as received, as forwarded by a proxy, and https.

    Behind a TLS-terminating proxy the app sees ``http://`` (and maybe an internal host),
    while HubSpot signed the public ``https://`` URL. Each candidate is still checked by HMAC,
    so trying them widens nothing an attacker could use without the client secret.
    """
    url = request.url
    host = request.headers.get("x-forwarded-host") or url.netloc
    schemes = dict.fromkeys([request.headers.get("x-forwarded-proto") or url.scheme, "https"])
    return [str(url), *(str(url.replace(scheme=scheme, netloc=host)) for scheme in schemes)]
