"""The public HTTP API: ingest's routes, the lead view, each service's routes, operations.

The caller (``leadrelay run ingest``, ``leadrelay up``, tests) opens the runtime and closes it;
the app only borrows it, so there is no lifespan work here. Every error the app answers,
including those of mounted routers, is ``application/problem+json`` (RFC 9457).
"""

from __future__ import annotations

import time
from http import HTTPStatus

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import services.ingest.api
from leadrelay.app.definitions import Definitions
from leadrelay.app.lead_view import lead_view_router
from leadrelay.app.registry import REGISTRY
from leadrelay.contracts.errors import FieldError, json_pointer
from leadrelay.ops import ops_router
from leadrelay.runtime.service import Runtime
from services.ingest import problems
from services.ingest.metrics import IngestMetrics
from services.ingest.problems import PROBLEM_MEDIA_TYPE, Problem, ProblemError

DESCRIPTION = """\
Marketing automation platforms and CRMs send LeadRelay what leads do and what sales did with
them. `202 Accepted` means the events are durably in Kafka (acks=all); `503` means nothing was
accepted and the same request should be retried. Refusals are `application/problem+json`.
"""


def create_api(runtime: Runtime, definitions: Definitions) -> FastAPI:
    """The API on an open ``runtime``: ingest's routes, then every registered service's."""
    metrics = IngestMetrics.create(runtime.registry)
    app = FastAPI(title="LeadRelay", version="1", description=DESCRIPTION)
    app.state.api_token = runtime.settings.api_token.get_secret_value()
    app.include_router(services.ingest.api.build_router(runtime, metrics))
    app.include_router(
        ops_router(runtime.registry, runtime.readiness_checks(), runtime.store.clock)
    )
    for router in service_routers(runtime, definitions):
        app.include_router(router)
    app.add_exception_handler(ProblemError, _problem_handler)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def service_routers(runtime: Runtime, definitions: Definitions) -> list[APIRouter]:
    """The lead view (every service's part) and each service's own routes (the roster)."""
    parts = [e.lead_view(runtime, definitions) for e in REGISTRY if e.lead_view is not None]
    routers = [lead_view_router(runtime.store, parts)]
    routers += [e.router(runtime, definitions) for e in REGISTRY if e.router is not None]
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
