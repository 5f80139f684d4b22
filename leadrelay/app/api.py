"""The public HTTP API: ingest's routes, the lead view, each service's routes, operations.

The caller (``leadrelay run ingest``, ``leadrelay up``, tests) opens the runtime and closes it;
the app only borrows it, so there is no lifespan work here. Every error the app answers,
including those of mounted routers and unhandled exceptions, is ``application/problem+json``
(RFC 9457). There are no redirects: ``/v1/events/`` is a 404, not a 307 to ``/v1/events``.
This app faces the internet (HubSpot and Marketo must reach it), so ``/metrics`` is not here:
it is on the metrics listener (:func:`leadrelay.ops.ops_app`, ``LEADRELAY_METRICS_PORT``).
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from http import HTTPStatus

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import services.ingest.api
from leadrelay.api_docs import docs_router
from leadrelay.app.console import console_router
from leadrelay.app.definitions import Definitions
from leadrelay.app.lead_view import lead_view_router
from leadrelay.app.registry import REGISTRY
from leadrelay.contracts.errors import FieldError, json_pointer
from leadrelay.ops import health_router
from leadrelay.runtime.service import Runtime
from services.ingest.domain import problems
from services.ingest.domain.problems import PROBLEM_MEDIA_TYPE, Problem, ProblemError
from services.ingest.metrics import IngestMetrics

log = logging.getLogger(__name__)

DESCRIPTION = """\
Marketing automation platforms and CRMs send LeadRelay what leads do and what sales did with
them. `202 Accepted` means the events are durably in Kafka (acks=all); `503` means nothing was
accepted and the same request should be retried. Refusals are `application/problem+json`.
"""


def create_api(runtime: Runtime, definitions: Definitions) -> FastAPI:
    """The API on an open ``runtime``: ingest's routes, then every registered service's."""
    metrics = IngestMetrics.create(runtime.registry)
    app = FastAPI(
        title="LeadRelay",
        version="1",
        description=DESCRIPTION,
        docs_url=None,  # /docs is served locally (leadrelay.api_docs): Swagger UI loads from a CDN
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.api_token = runtime.settings.api_token.get_secret_value()
    app.include_router(services.ingest.api.build_router(runtime, metrics))
    app.include_router(health_router(runtime.readiness_checks(), runtime.store.clock))
    for router in service_routers(runtime, definitions):
        app.include_router(router)
    app.add_exception_handler(ProblemError, _problem_handler)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.add_middleware(ServerErrors)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def service_routers(runtime: Runtime, definitions: Definitions) -> list[APIRouter]:
    """The lead view (every service's part), the local API reference, each service's own routes
    (the roster, the reports) and the console."""
    parts = [e.lead_view(runtime, definitions) for e in REGISTRY if e.lead_view is not None]
    routers = [lead_view_router(runtime.store, parts), docs_router()]
    routers += [e.router(runtime, definitions) for e in REGISTRY if e.router is not None]
    routers.append(console_router(runtime, definitions, parts))
    return routers


def problem_response(problem: Problem) -> JSONResponse:
    """A problem as an HTTP response."""
    return JSONResponse(
        problem.body(),
        status_code=problem.status,
        headers=dict(problem.headers),
        media_type=PROBLEM_MEDIA_TYPE,
    )


async def _problem_handler(_: Request, error: ProblemError) -> JSONResponse:
    return problem_response(error.problem)


async def _http_handler(_: Request, error: HTTPException) -> JSONResponse:
    """Errors raised by FastAPI itself and by mounted routers (401 bearer, 404, 405)."""
    phrase = HTTPStatus(error.status_code).phrase
    slug = phrase.lower().replace(" ", "-").replace("'", "")
    problem = Problem(
        error.status_code, slug, phrase, str(error.detail), headers=dict(error.headers or {})
    )
    return problem_response(problem)


async def _validation_handler(_: Request, error: RequestValidationError) -> JSONResponse:
    """Parameter and body validation of mounted routers; body errors point into the body."""
    found = []
    for item in error.errors():
        where, *path = item["loc"]
        parts = path if where == "body" else [where, *path]
        found.append(FieldError(json_pointer(parts), str(item["msg"])))
    return problem_response(problems.invalid(found))


class ServerErrors:
    """Any unhandled exception becomes a problem+json 500 whose correlation id is logged.

    The log line carries the exception's type and where it was raised, not its message nor
    source lines: a message may quote a value from the request (an email address). The
    connection stays usable.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_and_note(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except Exception as error:  # noqa: BLE001 - the last line of defence, logged below
            correlation_id = uuid.uuid4().hex
            log.error(
                "unhandled %s on %s %s (correlation id %s)\n%s",
                type(error).__name__,
                scope.get("method"),
                getattr(scope.get("route"), "path", "unmatched"),
                correlation_id,
                _frames(error),
            )
            if not started:
                response = problem_response(problems.internal_error(correlation_id))
                await response(scope, receive, send)


def _frames(error: BaseException) -> str:
    """Where ``error`` was raised: file, line and function of each frame, no source text."""
    frames = traceback.extract_tb(error.__traceback__)
    return "\n".join(f"  {f.filename}:{f.lineno} in {f.name}" for f in frames)


class RequestMetrics:
    """Counts every answer by route template and status, and times it (pure ASGI)."""

    def __init__(self, app: ASGIApp, metrics: IngestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = HTTPStatus.INTERNAL_SERVER_ERROR.value

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
