"""The console's routes under ``/console/`` (left out of the OpenAPI document: they are pages).

Pages read the same ``Reports`` as ``/v1/reports`` with the same ``from``/``to``/``by``
parameters and defaults, so a page and its report route show the same numbers. The lead page
reads the same lead view as ``/v1/leads/{id}``; the reps page writes the roster through the
port the composition root gives it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any, Protocol
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.reporting.api import compute, window_of
from services.reporting.console import html, pages
from services.reporting.console import replay as replay_page
from services.reporting.console.session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    csrf_valid,
    new_csrf,
    new_session,
    session_valid,
    token_matches,
)
from services.reporting.domain import (
    Report,
    Window,
    daily_compliance,
    first_touch_distribution,
)
from services.reporting.read_model import REPORTS, Reports

LeadReader = Callable[[str], Awaitable[Mapping[str, Any] | None]]
"""The merged lead view of ``/v1/leads/{id}``; None for an unknown lead."""
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STYLESHEET = files("services.reporting.console") / "static" / "console.css"


class RosterPort(Protocol):
    """The roster as the console reads and switches it (hand-off owns it)."""

    async def reps(self) -> Sequence[pages.RepCard]: ...

    async def set_active(self, rep_id: str, active: bool) -> bool:
        """Mark the rep active or away; False for an unknown rep."""
        ...


@dataclass(frozen=True)
class Console:
    reports: Reports
    lead_view: LeadReader
    roster: RosterPort
    replays: replay_page.ReplayPort | None = None
    """The replay page's port; without one the page is not served."""

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        router.add_api_route("/console", self.home, methods=["GET"])
        router.add_api_route("/console/", self.home, methods=["GET"])
        router.add_api_route("/console/static/console.css", self.stylesheet, methods=["GET"])
        router.add_api_route("/console/login", self.login_form, methods=["GET"])
        router.add_api_route("/console/login", self.login, methods=["POST"])
        router.add_api_route("/console/logout", self.logout, methods=["POST"])
        router.add_api_route("/console/funnel", self.funnel, methods=["GET"])
        router.add_api_route("/console/speed", self.speed, methods=["GET"])
        router.add_api_route("/console/sla", self.sla, methods=["GET"])
        router.add_api_route("/console/routing", self.routing, methods=["GET"])
        router.add_api_route("/console/reps", self.reps, methods=["GET"])
        router.add_api_route("/console/reps/{rep_id}/active", self.switch_rep, methods=["POST"])
        if self.replays is not None:
            router.add_api_route("/console/replay", self.replay_form, methods=["GET"])
            router.add_api_route("/console/replay", self.replay, methods=["POST"])
        router.add_api_route("/console/leads", self.find_lead, methods=["GET"])
        router.add_api_route("/console/leads/{lead_key}", self.lead, methods=["GET"])
        return router

    async def home(self) -> Response:
        return RedirectResponse("/console/funnel", status_code=303)

    async def stylesheet(self) -> Response:
        return Response(STYLESHEET.read_text(), media_type="text/css")

    async def login_form(self, request: Request, error: str | None = None) -> Response:
        csrf = request.cookies.get(CSRF_COOKIE) or new_csrf()
        body = pages.login(csrf, error)
        return self._page(request, html.page("Sign in", body), csrf=csrf)

    async def login(self, request: Request) -> Response:
        """Exchange the API token for a session cookie (the form carries the CSRF token too)."""
        form = await _form(request)
        if not csrf_valid(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
            raise HTTPException(403, "the form is stale: reload the page and sign in again")
        if not token_matches(form.get("token", ""), _api_token(request)):
            return await self.login_form(request, error="That is not the API token.")
        response = RedirectResponse("/console/funnel", status_code=303)
        session = new_session(_api_token(request), self.reports.store.clock())
        _set_cookie(request, response, SESSION_COOKIE, session)
        return response

    async def logout(self, request: Request) -> Response:
        await self._writing_form(request)
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/console")
        return response

    async def funnel(self, request: Request) -> Response:
        return await self._report_page(request, "funnel", "Funnel", pages.funnel)

    async def speed(self, request: Request) -> Response:
        return await self._report_page(
            request, "speed-to-lead", "Speed to lead", None, active="speed"
        )

    async def sla(self, request: Request) -> Response:
        return await self._report_page(request, "sla", "SLA compliance", None)

    async def routing(self, request: Request) -> Response:
        return await self._report_page(request, "routing", "Routing and queues", pages.routing)

    async def reps(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        window = self._window(request)
        routing = await self.reports.report("routing", window, "rep")
        assigned = {str(r["rep"]): int(r["assignments"] or 0) for r in routing.rows
                    if r["kind"] == "rep"}  # fmt: skip
        csrf = self._csrf(request)
        body = pages.reps(await self.roster.reps(), assigned, csrf)
        return self._page(request, html.page("Reps", body, active="reps", csrf=csrf), csrf=csrf)

    async def switch_rep(self, request: Request, rep_id: str) -> Response:
        """The out-of-office switch: a writing form, so signed in and CSRF-checked."""
        form = await self._writing_form(request)
        if not await self.roster.set_active(rep_id, form.get("active") == "true"):
            raise HTTPException(404, f"no rep {rep_id}")
        return RedirectResponse("/console/reps", status_code=303)

    async def replay_form(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        return self._replay_page(request, replay_page.form(self._csrf(request)))

    async def replay(self, request: Request) -> Response:
        """Replay a pasted draft: a writing form (signed in, CSRF-checked), since it runs the
        history twice; a draft that is not a definitions file is shown its problems (422)."""
        form = await self._writing_form(request)
        draft = form.get("definitions", "")
        if len(draft) > replay_page.MAX_DRAFT_CHARS:
            raise HTTPException(413, "that is not a definitions file: it is far too long")
        if self.replays is None:  # the route exists only with a port
            raise HTTPException(404, "no replay here")
        csrf = self._csrf(request)
        try:
            result = await self.replays.replay(draft)
        except ValueError as error:
            body = replay_page.form(csrf, draft, str(error))
            return self._replay_page(request, body, status=422)
        body = replay_page.form(csrf, draft) + replay_page.report(result)
        return self._replay_page(request, body)

    def _replay_page(self, request: Request, body: str, *, status: int = 200) -> Response:
        csrf = self._csrf(request)
        page = html.page("Replay", body, active="replay", csrf=csrf)
        response = self._page(request, page, csrf=csrf)
        response.status_code = status
        return response

    async def find_lead(self, request: Request, key: str = "") -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        return RedirectResponse(f"/console/leads/{quote(key.strip(), safe='')}", status_code=303)

    async def lead(self, request: Request, lead_key: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        view = await self.lead_view(lead_key)
        if view is None:
            raise HTTPException(404, f"no lead {lead_key}")
        csrf = self._csrf(request)
        page = html.page("Lead", pages.lead(view), csrf=csrf)
        return self._page(request, page, csrf=csrf)

    async def _report_page(
        self,
        request: Request,
        name: str,
        title: str,
        render: Callable[[Report], str] | None,
        *,
        active: str | None = None,
    ) -> Response:
        """A report page: the window form, the chart and the table of ``name``."""
        if (refused := self._refused(request)) is not None:
            return refused
        window = self._window(request)
        by = request.query_params.get("by") or None
        report = await compute(self.reports, name, window, by)
        body = await self._body(name, report, window, render)
        key = active or name
        start, end = (t.isoformat(timespec="seconds") for t in (window.start, window.end))
        form = html.window_form(f"/console/{key}", start, end, report.by, REPORTS[name])
        csrf = self._csrf(request)
        page = html.page(title, form + body, active=key, csrf=csrf)
        return self._page(request, page, csrf=csrf)

    async def _body(
        self, name: str, report: Report, window: Window, render: Callable[[Report], str] | None
    ) -> str:
        if render is not None:
            return render(report)
        history = await self.reports.history(window.end)
        if name == "sla":
            return pages.sla(report, daily_compliance(history, window))
        return pages.speed(report, first_touch_distribution(history, window))

    def _window(self, request: Request) -> Window:
        params = request.query_params
        return window_of(_instant(params.get("from")), _instant(params.get("to")),
                         self.reports.store.clock())  # fmt: skip

    def _refused(self, request: Request) -> Response | None:
        """A redirect to the login page unless the request carries a valid session."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if session_valid(cookie, _api_token(request), self.reports.store.clock()):
            return None
        return RedirectResponse("/console/login", status_code=303)

    async def _writing_form(self, request: Request) -> dict[str, str]:
        """The form of a signed-in request with a valid CSRF token; 403 otherwise."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not session_valid(cookie, _api_token(request), self.reports.store.clock()):
            raise HTTPException(403, "sign in first")
        form = await _form(request)
        if not csrf_valid(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
            raise HTTPException(403, "the form is stale: reload the page and try again")
        return form

    def _csrf(self, request: Request) -> str:
        return request.cookies.get(CSRF_COOKIE) or new_csrf()

    def _page(self, request: Request, content: str, *, csrf: str) -> Response:
        response = HTMLResponse(content, headers=SECURITY_HEADERS)
        if request.cookies.get(CSRF_COOKIE) != csrf:
            _set_cookie(request, response, CSRF_COOKIE, csrf)
        return response


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """HttpOnly, SameSite=Strict, scoped to the console; Secure whenever served over HTTPS."""
    response.set_cookie(
        name, value, max_age=SESSION_SECONDS, path="/console", httponly=True,
        samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (the console's forms post nothing else)."""
    parsed = parse_qs((await request.body()).decode(), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def _api_token(request: Request) -> str:
    token: str = request.app.state.api_token
    return token


def _instant(value: str | None) -> datetime | None:
    """``from``/``to`` as the report routes read them; 422 for a bad one."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "+").replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(422, f"not an ISO 8601 instant: {value}") from None
    if parsed.tzinfo is None:
        raise HTTPException(422, "give `from` and `to` with a UTC offset")
    return parsed
