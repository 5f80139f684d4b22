"""The console in a real headless browser (Debian's chromium, driven by Playwright).

The API process's console and report routes are served on 127.0.0.1 over the known history;
the browser signs in, opens every page and reads the numbers each table shows, which must equal
the report route's JSON for the same window; the lead page must say why this rep; the reps page's
out-of-office switch must work (and refuse a post without its CSRF token); the replay page must
show the figures of the report ``leadrelay replay --format json`` prints for the pasted draft,
the problems of a draft that is not a definitions file, and refuse a post without its token.
Every request the browser makes is intercepted: one for anywhere but 127.0.0.1 is aborted and
fails the test.
Screenshots are kept under ``test-artifacts/console/``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from leadrelay.app.replay import Assignment, ClockOutcome, SandboxRun
from leadrelay.app.replay_report import compare
from leadrelay.app.schema import upgrade_async
from leadrelay.process import serve_http
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store
from services.reporting.api import reports_router
from services.reporting.console.pages import RepCard
from services.reporting.console.routes import Console
from services.reporting.messages import fact_of
from services.reporting.repository import save_facts
from tests.unit.reporting.history import ROSTER, WINDOW, known_history, reports_on

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
"""``--disable-dev-shm-usage`` always: Debian's launcher adds it only when it can parse the size
of /dev/shm, and a container's small /dev/shm otherwise kills the renderer on its first page."""
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
TOKEN = "console-browser-test-token"
PARAMS = f"from={WINDOW.start.isoformat()}&to={WINDOW.end.isoformat()}".replace("+", "%2B")
PAGES = (("funnel", "funnel", None), ("speed", "speed-to-lead", "rep"),
         ("sla", "sla", "rep"), ("routing", "routing", None))  # fmt: skip
"""(console page, report route, by)."""

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


class MemoryRoster:
    """The roster port on a dict (hand-off's store is not what this test is about)."""

    def __init__(self) -> None:
        self.cards = {
            rep: RepCard(rep, f"Rep {rep[-1]}", "sdr", entry.team, entry.weight, 20, 8, True)
            for rep, entry in ROSTER.items()
        }

    async def reps(self) -> Sequence[RepCard]:
        return list(self.cards.values())

    async def set_active(self, rep_id: str, active: bool) -> bool:
        if rep_id not in self.cards:
            return False
        self.cards[rep_id] = dataclasses.replace(self.cards[rep_id], active=active)
        return True


ANA = Assignment(1, 1, "sdr-ana", "sdr-amer", "round_robin")
LIVE = SandboxRun({}, (), {"lk_a": (ANA,), "lk_b": (ANA,)},
                  {"lk_a": (ClockOutcome(1, 1, "first_touch", "sdr", "met"),)})  # fmt: skip
DRAFT = SandboxRun({}, (), {"lk_a": (dataclasses.replace(ANA, rep_id="sdr-chloe"),),
                            "lk_b": (ANA,)},
                   {"lk_a": (ClockOutcome(1, 1, "first_touch", "sdr", "breached"),)})  # fmt: skip
REPLAYED = compare(LIVE, DRAFT, {})
"""What the replay port answers for any draft: the report ``leadrelay replay`` computes."""


class FixedReplay:
    """The replay port without a history: the pure report of two known runs."""

    async def replay(self, draft: str) -> Mapping[str, Any]:
        if not draft.lstrip().startswith("lifecycle:"):
            raise ValueError("the draft must be a mapping with the sections lifecycle, ...")
        return REPLAYED


async def lead_b(lead_key: str) -> Mapping[str, Any] | None:
    """Lead B as ``/v1/leads`` shows it, its assignment being the known history's ``a3``."""
    if lead_key != "B":
        return None
    assignment = next(e for e in known_history() if e.data.get("assignment_id") == "a3").data
    view = {**assignment, "assigned_at": assignment["assigned_at"]}
    return {"lead_key": "B", "stage": "mql", "grade": "B", "fit_score": 50.0,
            "engagement_score": 55.0, "scorecard_version": "v1",
            "profile": {"first_name": "Bo", "company": "Initech", "country": "US"},
            "breakdown": [{"rule": "pricing_page", "axis": "engagement", "points": 4.2,
                           "raw_points": 5.0, "decay_factor": 0.84}],
            "timeline": [{"kind": "stage_change", "at": "2024-06-03T10:00:00+00:00",
                          "from_stage": "lead", "to_stage": "mql", "rule": "thresholds"}],
            "assignment": view, "assignments": [view],
            "sla_clocks": [{"kind": "first_touch", "rep_id": "rep-1", "policy": "sdr-standard",
                            "due_at": "2024-06-03T12:03:00+00:00", "state": "stopped",
                            "steps_taken": []}]}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def console_url(tmp_path: Path) -> AsyncIterator[str]:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    await upgrade_async(database_url)
    store = Store(create_engine_for(database_url), clock=lambda: WINDOW.end)
    async with store.transaction() as tx:
        await save_facts(tx.connection, [f for e in known_history() if (f := fact_of(e))])
    reports = reports_on(store)
    app = FastAPI()
    app.state.api_token = TOKEN
    app.include_router(reports_router(reports))
    app.include_router(Console(reports, lead_b, MemoryRoster(), FixedReplay()).router())
    port, stop, started = _free_port(), asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve_http(app, "127.0.0.1", port, stop, started))
    await started.wait()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await server
        await store.dispose()


def _raw(value: object) -> str:
    """A JSON value as the console's ``data-value`` holds it."""
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


async def _shown_rows(page: Any) -> list[dict[str, str]]:
    rows = await page.locator("table.report tbody tr").all()
    shown = []
    for row in rows:
        cells = await row.locator("td[data-value]").all()
        shown.append({await c.get_attribute("data-col"): await c.get_attribute("data-value")
                      for c in cells})  # fmt: skip
    return shown


async def _live_page(playwright: Any) -> tuple[Any, Any, Any]:
    """A browser whose first page has rendered ``about:blank``: a chromium that dies while it
    starts (before the console is asked for anything) is started again, at most three times."""
    from playwright.async_api import Error as PlaywrightError

    for attempt in range(3):
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            await page.goto("about:blank")
            return browser, context, page
        except PlaywrightError:
            await browser.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def test_the_console_shows_the_report_numbers_and_why_this_rep(console_url: str) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []

    async def only_local(route: Any) -> None:
        if urlsplit(route.request.url).hostname != "127.0.0.1":
            outside.append(route.request.url)
            await route.abort()
        else:
            await route.continue_()

    api = httpx.AsyncClient(base_url=console_url, headers={"Authorization": f"Bearer {TOKEN}"})
    async with async_playwright() as playwright:
        browser, context, page = await _live_page(playwright)
        await context.route("**/*", only_local)
        try:
            await page.goto(f"{console_url}/console/")
            assert page.url.endswith("/console/login")
            await page.fill("#token", "not-the-token")
            await page.click("button:has-text('Sign in')")
            assert await page.locator("[role=alert]").inner_text() == "That is not the API token."
            await page.fill("#token", TOKEN)
            await page.click("button:has-text('Sign in')")
            assert page.url.endswith("/console/funnel")
            cookies = {c["name"]: c for c in await context.cookies()}
            session = cookies["leadrelay_session"]
            assert (session["httpOnly"], session["sameSite"]) == (True, "Strict")
            assert TOKEN not in session["value"]

            for name, report, by in PAGES:
                query = PARAMS + (f"&by={by}" if by else "")
                await page.goto(f"{console_url}/console/{name}?{query}")
                await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
                api_rows = (await api.get(f"/v1/reports/{report}?{query}")).json()["rows"]
                expected = [{k: _raw(v) for k, v in row.items()} for row in api_rows]
                assert await _shown_rows(page) == expected, name
                assert await page.locator("svg.chart").count() >= 1, name

            await page.goto(f"{console_url}/console/sla?{PARAMS}")
            assert await page.locator("td[data-col=compliance]").first.inner_text() == "75.0%"

            await page.goto(f"{console_url}/console/leads/B")
            await page.screenshot(path=str(ARTIFACTS / "lead.png"), full_page=True)
            reason = await page.locator("#routing-reason").inner_text()
            assert reason.startswith("Assigned to rep-1 because next in the weighted round robin")
            assert "rep-2 was passed over: excluded" in await page.content()

            await page.goto(f"{console_url}/console/reps?{PARAMS}")
            row = page.locator("table.reps tr", has_text="rep-2")
            await row.locator("button", has_text="Mark away").click()
            assert (
                await page.locator("table.reps tr", has_text="rep-2").locator(".bad").count() == 1
            )
            await page.screenshot(path=str(ARTIFACTS / "reps.png"), full_page=True)
            forged = await page.request.post(
                f"{console_url}/console/reps/rep-1/active", form={"active": "false"}
            )
            assert forged.status == 403

            await _replay_page_shows_the_json_figures(page, console_url)
        finally:
            await browser.close()
            await api.aclose()
    assert outside == []


async def _replay_page_shows_the_json_figures(page: Any, console_url: str) -> None:
    await page.goto(f"{console_url}/console/replay")
    await page.fill("#definitions", "- not a mapping")
    await page.click("button:has-text('Replay')")
    assert "must be a mapping" in await page.locator("[role=alert]").inner_text()
    await page.fill("#definitions", "lifecycle: {}\n")
    await page.click("button:has-text('Replay')")
    await page.screenshot(path=str(ARTIFACTS / "replay.png"), full_page=True)
    assert await page.locator("#changed").get_attribute("data-value") == str(REPLAYED["changed"])
    for name in ("assignments_by_rep", "assignments_by_team", "sla_outcomes"):
        for side in ("live", "draft"):
            cells = page.locator(f"section[data-figure={name}] [data-side={side}]")
            shown = [await c.get_attribute("data-value") for c in await cells.all()]
            figures = REPLAYED[side][name]
            keys = sorted({*REPLAYED["live"][name], *REPLAYED["draft"][name]})
            assert shown == [str(figures.get(k, 0)) for k in keys], (name, side)
    assert await page.locator("table.changed tbody tr").count() == REPLAYED["changed"]
    forged = await page.request.post(f"{console_url}/console/replay", form={"definitions": "x"})
    assert forged.status == 403
