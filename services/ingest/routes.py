"""The four ingest routes: thin, each a fixed sequence of gateway steps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from leadrelay.api_auth import ApiToken
from leadrelay.contracts.envelope import CloudEvent
from services.ingest import openapi
from services.ingest.domain.mapping import cloudevents, hubspot, marketo, sales
from services.ingest.domain.mapping.common import IngestContext
from services.ingest.domain.signatures import (
    HUBSPOT_HEADERS,
    MARKETO_TOKEN,
    STANDARD_WEBHOOK_HEADERS,
    Delivery,
    unambiguous,
    verify_hubspot_v3,
    verify_shared_token,
    verify_standard_webhook,
)
from services.ingest.gateway import Gateway
from services.ingest.openapi import CLOUDEVENT_BATCH_JSON, CLOUDEVENT_JSON, JSON

EVENTS, HUBSPOT, MARKETO, SALES = (
    "/v1/events",
    "/v1/webhooks/hubspot",
    "/v1/webhooks/marketo",
    "/v1/sales-activity",
)
GENERIC_SOURCE, HUBSPOT_SOURCE = "generic", "hubspot"
REFUSALS = (400, 401, 413, 415, 422, 503)
Endpoint = Callable[..., Awaitable[JSONResponse]]


def ingest_router(gateway: Gateway) -> APIRouter:
    """The ingest routes on ``gateway``, each answering 202 once its events are durable."""
    router = APIRouter(tags=["ingest"])
    routes = (
        (EVENTS, openapi.STANDARD_WEBHOOKS, (*REFUSALS, 409), generic_events(gateway)),
        (HUBSPOT, openapi.HUBSPOT, REFUSALS, hubspot_deliveries(gateway)),
        (MARKETO, openapi.MARKETO, REFUSALS, marketo_calls(gateway)),
        (SALES, openapi.SALES_ACTIVITY, REFUSALS, sales_activities(gateway)),
    )
    for path, extra, refusals, endpoint in routes:
        router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            status_code=202,
            response_model=openapi.Accepted,
            openapi_extra=extra,
            responses=openapi.problem_responses(*sorted(refusals)),
        )
    return router


def generic_events(gateway: Gateway) -> Endpoint:
    """``POST /v1/events``."""

    async def post_events(request: Request) -> JSONResponse:
        """Accept one CloudEvent or a batch from a source signed per Standard Webhooks."""
        media_type = gateway.media_type(request, (CLOUDEVENT_JSON, CLOUDEVENT_BATCH_JSON))
        body = await gateway.read_body(request)
        delivery = gateway.authentic(EVENTS, lambda: standard_webhook(gateway, request, body))
        seen = await gateway.history(EVENTS, GENERIC_SOURCE, delivery)
        raw = gateway.parse_json(body)
        batch = media_type == CLOUDEVENT_BATCH_JSON
        events = gateway.map(lambda context: cloudevents_of(raw, context, batch=batch))
        return await gateway.accept(
            EVENTS, events, source=GENERIC_SOURCE, delivery=delivery, seen=seen
        )

    return post_events


def hubspot_deliveries(gateway: Gateway) -> Endpoint:
    """``POST /v1/webhooks/hubspot``."""

    async def post_hubspot(request: Request) -> JSONResponse:
        """Accept a HubSpot webhook or workflow delivery verified by its v3 signature."""
        gateway.media_type(request, (JSON,))
        body = await gateway.read_body(request)
        delivery = gateway.authentic(HUBSPOT, lambda: hubspot_v3(gateway, request, body))
        seen = await gateway.history(HUBSPOT, HUBSPOT_SOURCE, delivery)
        raw = gateway.parse_json(body)
        events = gateway.map(lambda context: hubspot.map_delivery(raw, context))
        return await gateway.accept(
            HUBSPOT, events, source=HUBSPOT_SOURCE, delivery=delivery, seen=seen
        )

    return post_hubspot


def marketo_calls(gateway: Gateway) -> Endpoint:
    """``POST /v1/webhooks/marketo``."""

    async def post_marketo(request: Request) -> JSONResponse:
        """Accept a Marketo webhook call (the documented template) with the shared token."""
        gateway.media_type(request, (JSON,))
        body = await gateway.read_body(request)
        gateway.authentic(MARKETO, lambda: marketo_token(gateway, request))
        raw = gateway.parse_json(body)
        events = gateway.map(lambda context: [marketo.map_call(raw, context)])
        return await gateway.accept(MARKETO, events)

    return post_marketo


def sales_activities(gateway: Gateway) -> Endpoint:
    """``POST /v1/sales-activity``."""

    async def post_sales_activity(request: Request, _: ApiToken) -> JSONResponse:
        """Accept sales feedback from a CRM (one activity or an array), bearer-authenticated."""
        gateway.media_type(request, (JSON,))
        body = await gateway.read_body(request)
        raw = gateway.parse_json(body)
        events = gateway.map(lambda context: sales.map_activities(raw, context))
        return await gateway.accept(SALES, events)

    return post_sales_activity


def cloudevents_of(raw: object, context: IngestContext, *, batch: bool) -> list[CloudEvent]:
    """A structured CloudEvent or a batch of them, as LeadRelay events."""
    return cloudevents.map_batch(raw, context) if batch else [cloudevents.map_event(raw, context)]


def standard_webhook(gateway: Gateway, request: Request, body: bytes) -> Delivery:
    """The Standard Webhooks check of a request (each header sent once, or the same twice)."""
    return verify_standard_webhook(
        unambiguous(request.headers.items(), STANDARD_WEBHOOK_HEADERS),
        body,
        gateway.webhook_keys,
        now=gateway.wall_clock(),
        tolerance=gateway.tolerance,
    )


def hubspot_v3(gateway: Gateway, request: Request, body: bytes) -> Delivery:
    """HubSpot's v3 check of a request, against every URL HubSpot may have signed."""
    return verify_hubspot_v3(
        unambiguous(request.headers.items(), HUBSPOT_HEADERS),
        request.method,
        hubspot_uris(request, gateway.public_url, gateway.trusted_proxies),
        body,
        gateway.hubspot_secret,
        now=gateway.wall_clock(),
        tolerance=gateway.tolerance,
    )


def marketo_token(gateway: Gateway, request: Request) -> None:
    """Marketo's shared-token check of a request."""
    headers = unambiguous(request.headers.items(), (MARKETO_TOKEN,))
    verify_shared_token(headers.get(MARKETO_TOKEN), gateway.marketo_token)


def hubspot_uris(
    request: Request, public_url: str | None, trusted_proxies: Sequence[IPv4Network | IPv6Network]
) -> list[str]:
    """The URLs HubSpot may have signed: as received, under ``LEADRELAY_PUBLIC_URL``, and,
    only when the peer is a trusted proxy, as its ``X-Forwarded-Host``/``-Proto`` say.

    Behind a TLS-terminating proxy the app sees ``http://`` and maybe an internal host, while
    HubSpot signed the public ``https://`` URL. Forwarded headers from anyone else are
    ignored: they would let a caller choose the URL its signature is checked against.
    """
    url = request.url
    uris = [str(url)]
    if public_url:
        uris.append(public_url.rstrip("/") + url.path + (f"?{url.query}" if url.query else ""))
    if is_trusted_proxy(request, trusted_proxies):
        host = _first(request.headers.get("x-forwarded-host")) or url.netloc
        scheme = _first(request.headers.get("x-forwarded-proto")) or url.scheme
        uris.append(str(url.replace(scheme=scheme, netloc=host)))
    return uris


def is_trusted_proxy(
    request: Request, trusted_proxies: Sequence[IPv4Network | IPv6Network]
) -> bool:
    """Whether the peer's address lies in one of ``LEADRELAY_TRUSTED_PROXIES``' networks."""
    if request.client is None or not trusted_proxies:
        return False
    try:
        peer = ip_address(request.client.host)
    except ValueError:
        return False
    return any(peer in network for network in trusted_proxies)


def _first(value: str | None) -> str:
    """The first entry of a comma-separated forwarded header (the client-facing proxy's)."""
    return (value or "").split(",")[0].strip()
