"""``leadrelay simulate``: realistic, signed traffic against a running LeadRelay, and a funnel.

Visitors browse anonymously; some identify through a form, some of those ask for a demo. Reps
then react to the leads assigned to them: most contact and accept, some reject, some do nothing
and miss their SLA (visible quickly when the instance runs an accelerated clock,
``LEADRELAY_CLOCK_SPEED``). The summary reads every lead back through ``GET /v1/leads``.

Every timestamp the simulator sends is in the instance's clock (``GET /healthz`` tells it), as a
CRM synchronised with the instance would send them: on an accelerated clock the wall clock is
hours behind, and sales activity stamped with it would read as earlier than its assignment.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx

from leadrelay.contracts.events import SlaClock
from leadrelay.credentials import bearer_header_word, parse_secret
from leadrelay.identity import lead_key
from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.settings import Settings
from services.ingest.domain.signatures import sign_standard_webhook

MARKETING_CLOCK: SlaClock = "marketing_acknowledgement"
"""Marketing's clock on a recycled lead: the funnel counts it apart from the sales clocks."""

CONCURRENCY = 8
CLOUDEVENT = "application/cloudevents+json"
SEND_BACKOFF = BackoffPolicy(0.2, 2.0)
"""How long a sender waits after a 503 (the instance still starting), as the runtime waits."""
SEND_ATTEMPTS = 10
"""How many times a sender posts one event while the instance answers 503."""


@dataclass(frozen=True)
class Persona:
    """A kind of visitor: who they are and how likely they are to act."""

    name: str
    share: float
    job_titles: Sequence[str]
    company_size: tuple[int, int]
    industries: Sequence[str]
    countries: Sequence[str]
    domain: Callable[[random.Random, int], str]
    identify: float
    demo: float


PERSONAS = (
    Persona(
        "ideal buyer",
        0.25,
        ["VP Marketing", "Head of Sales", "CTO", "Director of Revenue"],
        (200, 1500),
        ["software", "saas", "fintech"],
        ["US", "CA", "DE", "GB", "FR"],
        lambda rng, n: f"company{n}.example",
        identify=0.8,
        demo=0.5,
    ),
    Persona(
        "mid fit",
        0.35,
        ["Marketing Manager", "Analyst", "Sales Manager"],
        (20, 180),
        ["retail", "manufacturing", "software"],
        ["US", "GB", "NL", "AU", "JP"],
        lambda rng, n: f"firm{n}.example",
        identify=0.5,
        demo=0.1,
    ),
    Persona(
        "student",
        0.25,
        ["Student", "Intern"],
        (1, 5),
        ["education"],
        ["US", "IN", "BR"],
        lambda rng, n: rng.choice(["gmail.com", "yahoo.com", "uni.edu"]),
        identify=0.4,
        demo=0.02,
    ),
    Persona(
        "account customer",
        0.15,
        ["Director of Operations", "Procurement Manager"],
        (2000, 5000),
        ["software"],
        ["US"],
        lambda rng, n: "example-customer.com",
        identify=0.9,
        demo=0.4,
    ),
)
BROWSING = ("/", "/product", "/features", "/blog/lead-scoring", "/customers", "/integrations")


@dataclass
class Journey:
    """One visitor's planned events, and what became of them."""

    number: int
    persona: Persona
    anonymous_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    email: str | None = None
    lead_key: str | None = None
    view: dict[str, Any] | None = None
    rep_reaction: str | None = None


def plan_journeys(
    count: int,
    rng: random.Random,
    settings: Settings,
    now: datetime,
    *,
    run: str,
    personas: Sequence[Persona] = PERSONAS,
) -> list[Journey]:
    """Plan every visitor's events, oldest first, over the last few days.

    ``rng`` (seeded) decides the shape of the traffic: who comes, what they do, when. ``run``
    goes into every cookie and email, so a second run against the same instance brings new
    people rather than replays the instance deduplicates and leads it already handed off.
    """
    shares = [p.share for p in personas]
    journeys = []
    for number in range(count):
        persona = rng.choices(personas, weights=shares)[0]
        journey = Journey(number, persona, anonymous_id=f"sim-{run}-{number}")
        _plan(journey, rng, settings, run, now - timedelta(hours=rng.uniform(1, 72)))
        journeys.append(journey)
    return journeys


def new_run_id() -> str:
    """A fresh id for one run of the simulator (not drawn from the seeded generator)."""
    return uuid.uuid4().hex[:8]


def _plan(
    journey: Journey, rng: random.Random, settings: Settings, run: str, start: datetime
) -> None:
    persona, moment = journey.persona, start
    for _ in range(rng.randint(2, 7)):
        moment += timedelta(minutes=rng.uniform(1, 20))
        journey.events.append(_web(journey, "page_view", moment, rng.choice(BROWSING)))
    if rng.random() < 0.5:
        moment += timedelta(minutes=rng.uniform(1, 20))
        journey.events.append(_web(journey, "pricing_page_view", moment, "/pricing"))
    if rng.random() >= persona.identify:
        return
    journey.email = f"visitor{journey.number}.{run}@{persona.domain(rng, journey.number)}"
    journey.lead_key = lead_key(journey.email, settings.lead_key_secret.get_secret_value())
    wants_demo = rng.random() < persona.demo
    moment += timedelta(minutes=rng.uniform(1, 30))
    form = "demo-request" if wants_demo else rng.choice(["ebook-download", "contact-us"])
    journey.events.append(_form(journey, rng, form, moment))
    if wants_demo:
        journey.events.append(
            _web(journey, "demo_request", moment + timedelta(seconds=5), "/demo", identified=True)
        )


def _web(
    journey: Journey, action: str, at: datetime, path: str, *, identified: bool = False
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "anonymous_id": journey.anonymous_id,
        "action": action,
        "url": f"https://www.example.com{path}",
        "occurred_at": _iso(at),
        "source": "simulator",
    }
    if identified and journey.email:
        data["email"] = journey.email
    return _cloudevent("leadrelay.web_activity.v1", journey, len(journey.events), data, at)


def _form(journey: Journey, rng: random.Random, form_id: str, at: datetime) -> dict[str, Any]:
    persona = journey.persona
    data = {
        "email": journey.email,
        "anonymous_id": journey.anonymous_id,
        "form_id": form_id,
        "occurred_at": _iso(at),
        "source": "simulator",
        "profile": {
            "first_name": f"Visitor{journey.number}",
            "last_name": "Example",
            "company": f"Company {journey.number}",
            "job_title": rng.choice(persona.job_titles),
            "company_size": rng.randint(*persona.company_size),
            "industry": rng.choice(persona.industries),
            "country": rng.choice(persona.countries),
        },
    }
    return _cloudevent("leadrelay.form_submitted.v1", journey, len(journey.events), data, at)


def _cloudevent(
    event_type: str, journey: Journey, index: int, data: dict[str, Any], at: datetime
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{journey.anonymous_id}-{index}",
        "source": "leadrelay-simulator",
        "type": event_type,
        "time": _iso(at),
        "data": data,
    }


def _status(response: httpx.Response) -> int:
    return response.status_code


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


Answer = TypeVar("Answer")


async def send_signed(
    post: Callable[[dict[str, str]], Awaitable[Answer]],
    status_of: Callable[[Answer], int],
    key: bytes,
    webhook_id: str,
    body: bytes,
) -> Answer:
    """``post`` a CloudEvent ``body`` with these headers, signed with ``key`` as a source signs
    it (Standard Webhooks, signed afresh each try), again while the instance answers 503 (still
    starting, or its broker slow to acknowledge): up to :data:`SEND_ATTEMPTS` tries, waiting
    :data:`SEND_BACKOFF` (the runtime's back-off policy) between them. The last answer."""
    for attempt in range(1, SEND_ATTEMPTS + 1):
        timestamp = int(time.time())
        headers = {
            "content-type": CLOUDEVENT,
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard_webhook(key, webhook_id, timestamp, body),
        }
        answer = await post(headers)
        if status_of(answer) != 503 or attempt == SEND_ATTEMPTS:
            return answer
        await asyncio.sleep(SEND_BACKOFF.delay(attempt))
    raise AssertionError("unreachable: the last attempt returns")


class Simulator:
    """Talks to one running instance over HTTP, as MAPs and CRMs do."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self._http = http
        self._webhook_key = parse_secret(settings.webhook_secrets[0].get_secret_value())
        self._api_headers = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}

    async def send_event(self, event: dict[str, Any]) -> None:
        """POST one signed CloudEvent, retrying while the instance answers 503."""
        body = json.dumps(event).encode()

        async def post(headers: dict[str, str]) -> httpx.Response:
            return await self._http.post("/v1/events", content=body, headers=headers)

        response = await send_signed(post, _status, self._webhook_key, f"msg_{event['id']}", body)
        if response.status_code != 202:
            raise RuntimeError(
                f"event {event['id']} refused: {response.status_code} {response.text[:300]}"
            )

    async def service_now(self) -> datetime:
        """What time the instance's clock shows (it runs fast under ``LEADRELAY_CLOCK_SPEED``)."""
        response = await self._http.get("/healthz")
        response.raise_for_status()
        return datetime.fromisoformat(response.json()["now"])

    async def lead(self, key: str) -> dict[str, Any] | None:
        """The lead view, or None while the pipeline has not created the lead yet."""
        response = await self._http.get(f"/v1/leads/{key}", headers=self._api_headers)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        view: dict[str, Any] = response.json()
        return view

    async def report_sales_activity(
        self, key: str, assignment: dict[str, Any], outcome: str, reason: str | None = None
    ) -> None:
        """What a CRM sends when the rep of ``assignment`` acts on a lead, stamped in the
        instance's clock and naming the assignment it is about."""
        body: dict[str, Any] = {
            "lead_key": key,
            "rep_id": assignment["rep_id"],
            "assignment_id": assignment["assignment_id"],
            "outcome": outcome,
            "occurred_at": _iso(await self.service_now()),
            "crm": "simulator",
        }
        if reason:
            body["reason"] = reason
        response = await self._http.post("/v1/sales-activity", json=body, headers=self._api_headers)
        if response.status_code != 202:
            raise RuntimeError(
                f"sales activity refused: {response.status_code} {response.text[:300]}"
            )


async def run_simulation(
    url: str, settings: Settings, *, visitors: int, seed: int, within: float
) -> bool:
    """Send the traffic, let reps react, print the funnel; False if the instance misbehaved."""
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=url, timeout=15.0) as http:
        simulator = Simulator(http, settings)
        if not await _reachable(http, url):
            return False
        now = await simulator.service_now()
        journeys = plan_journeys(visitors, rng, settings, now, run=new_run_id())
        events = [e for j in journeys for e in j.events]
        await _bounded(events, simulator.send_event, "sending events")
        known = [j for j in journeys if j.lead_key]
        await _wait_for_leads(simulator, known, within)
        await _reps_react(simulator, known, rng)
        await _settle(simulator, known, within)
    print(funnel_report(journeys))
    print(_example_lookup(journeys, url))
    return True


def _example_lookup(journeys: Sequence[Journey], url: str) -> str:
    """A command to look at one assigned lead (lead keys are opaque, so show one)."""
    assigned = [j for j in journeys if j.view and j.view.get("assignment")]
    if not assigned:
        return ""
    return (
        "\nLook at one of them:\n"
        f"  curl -H {bearer_header_word()} {url}/v1/leads/{assigned[0].lead_key}"
    )


async def _reachable(http: httpx.AsyncClient, url: str) -> bool:
    try:
        response = await http.get("/readyz")
    except httpx.HTTPError as error:
        print(
            f"cannot reach LeadRelay at {url}: {error}. Is `leadrelay up` running?", file=sys.stderr
        )
        return False
    if response.status_code != 200:
        print(f"LeadRelay at {url} is not ready: {response.text}", file=sys.stderr)
        return False
    return True


async def _bounded(
    items: Sequence[Any], action: Callable[[Any], Awaitable[None]], label: str
) -> None:
    progress = Progress(label, len(items))
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(item: Any) -> None:
        async with semaphore:
            await action(item)
            progress.advance()

    await asyncio.gather(*(one(item) for item in items))
    progress.close()


async def _wait_for_leads(simulator: Simulator, journeys: Sequence[Journey], within: float) -> None:
    """Poll until every identified visitor's lead shows all its events as activities and, if
    an MQL, its assignment: a lead read before scoring reached its demo request would look
    settled at stage ``lead``, and then get no rep reaction."""
    progress = Progress("waiting for scoring and hand-off", len(journeys))
    deadline = time.monotonic() + within
    pending = list(journeys)
    while pending and time.monotonic() < deadline:
        still = []
        for journey in pending:
            journey.view = await simulator.lead(journey.lead_key or "")
            if lead_settled(journey, journey.view):
                progress.advance()
            else:
                still.append(journey)
        pending = still
        if pending:
            await asyncio.sleep(0.5)
    progress.close()


def lead_settled(journey: Journey, view: dict[str, Any] | None) -> bool:
    """Whether the lead view shows every planned event of ``journey`` and, for an MQL, its
    assignment: what the simulator waits for before the reps react."""
    if view is None:
        return False
    # ingest gives each event an id of its own, so count: each planned event is one activity
    # (a journey plans at most ten; a lead keeps its last 50 activities)
    activities = [e for e in view.get("timeline", []) if e.get("kind") == "activity"]
    if len(activities) < len(journey.events):
        return False
    return view.get("stage") != "mql" or bool(view.get("assignment"))


async def _reps_react(
    simulator: Simulator, journeys: Sequence[Journey], rng: random.Random
) -> None:
    """Reps contact and accept most leads, reject some, and ignore some (missing the SLA)."""
    for journey in journeys:
        assignment = (journey.view or {}).get("assignment") or {}
        if not assignment.get("rep_id") or not journey.lead_key:
            continue
        journey.rep_reaction = rng.choices(["accept", "reject", "ignore"], [0.6, 0.2, 0.2])[0]
        if journey.rep_reaction == "accept":
            await simulator.report_sales_activity(journey.lead_key, assignment, "contacted")
            await simulator.report_sales_activity(journey.lead_key, assignment, "accepted")
        elif journey.rep_reaction == "reject":
            await simulator.report_sales_activity(
                journey.lead_key, assignment, "rejected", reason="no budget this year"
            )


async def _settle(simulator: Simulator, journeys: Sequence[Journey], within: float) -> None:
    """Wait until reps' activity is applied and every ignored lead's SLA has breached.

    Breaches come in business time: on a real clock that is hours, so the wait ends at
    ``within``; an instance started with ``LEADRELAY_CLOCK_SPEED=600`` shows them in seconds.
    """
    watched = [j for j in journeys if j.rep_reaction is not None]
    progress = Progress("waiting for reps' activity and SLAs", len(watched))
    deadline = time.monotonic() + within
    settled: set[int] = set()
    while time.monotonic() < deadline and len(settled) < len(watched):
        for journey in watched:
            if journey.number in settled:
                continue
            journey.view = await simulator.lead(journey.lead_key or "")
            if reaction_visible(journey.rep_reaction, journey.view):
                settled.add(journey.number)
                progress.advance()
        if len(settled) < len(watched):
            await asyncio.sleep(0.5)
    progress.close()
    if len(settled) < len(watched):
        print(
            f"{len(watched) - len(settled)} leads still pending after {within:.0f}s; SLA "
            "breaches take business hours unless the instance runs with "
            "LEADRELAY_CLOCK_SPEED=600",
            file=sys.stderr,
        )
    for journey in journeys:
        journey.view = await simulator.lead(journey.lead_key or "")


def reaction_visible(reaction: str | None, view: dict[str, Any] | None) -> bool:
    """Whether the lead view shows the rep's reaction had its effect, so waiting can stop.

    An accepted lead is an SAL, a rejected one recycled; an ignored one shows a breached SLA
    clock, or waits in the fallback queue because no rep could take it.
    """
    view = view or {}
    if reaction == "accept":
        return view.get("stage") == "sal"
    if reaction == "reject":
        return view.get("stage") == "recycled"
    queued = (view.get("assignment") or {}).get("route") == "fallback"
    return queued or any(_breached(clock) for clock in view.get("sla_clocks", []))


def funnel_report(journeys: Sequence[Journey]) -> str:
    """The funnel as a person reads it: visitors to leads to MQLs to reps, and the SLA."""
    views = [j.view for j in journeys if j.view]
    stages = Counter(v.get("stage") for v in views)
    reps = Counter(_owner(v["assignment"]) for v in views if v.get("assignment"))
    clocks = [c for v in views for c in v.get("sla_clocks", [])]
    sales_clocks = [c for c in clocks if c.get("kind") != MARKETING_CLOCK]
    marketing_clocks = [c for c in clocks if c.get("kind") == MARKETING_CLOCK]
    mqls = sum(1 for v in views if v.get("episode", 0) >= 1)
    lines = [
        "",
        "LeadRelay simulation",
        f"  visitors                    {len(journeys)}",
        f"  identified leads            {len(views)}",
        f"  sales-ready (MQL)           {mqls}",
        f"  assigned                    {sum(reps.values())}",
        *(f"    {owner:<26}{count}" for owner, count in sorted(reps.items())),
        f"  stages now                  {_counts(stages.items())}",
        f"  SLA clocks                  {_clock_summary(sales_clocks)}",
        f"  recycled                    {stages['recycled']}",
        f"  marketing's SLA clocks      {_clock_summary(marketing_clocks)}",
    ]
    return "\n".join(lines)


def _clock_summary(clocks: Sequence[dict[str, Any]]) -> str:
    """``met N, breached N, running N``: met in time, breached at least once, still running."""
    states = Counter(c.get("state") for c in clocks)
    breached = sum(1 for c in clocks if _breached(c))
    running = states["running"] + states["warned"]
    return f"met {states['completed']}, breached {breached}, running {running}"


def _owner(assignment: dict[str, Any]) -> str:
    """The rep who has the lead now, or the queue it waits in when nobody was eligible."""
    rep_id: str | None = assignment.get("rep_id")
    return rep_id or f"queue {assignment.get('fallback_queue') or 'fallback'}"


def _breached(clock: dict[str, Any]) -> bool:
    return any(
        step.get("step") == "breach" if isinstance(step, dict) else "breach" in step
        for step in clock.get("steps_taken", [])
    )


def _counts(items: Iterable[tuple[Any, int]]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(items, key=lambda i: str(i[0])))


class Progress:
    """A one-line progress bar on stderr, redrawn in place on a terminal (once, elsewhere)."""

    WIDTH = 30

    def __init__(self, label: str, total: int) -> None:
        self._label, self._total, self._done = label, max(total, 1), 0
        self._live = sys.stderr.isatty()
        if self._live:
            self._draw()

    def advance(self) -> None:
        self._done += 1
        if self._live:
            self._draw()

    def close(self) -> None:
        if not self._live:
            self._draw()
        sys.stderr.write("\n")

    def _draw(self) -> None:
        filled = self.WIDTH * self._done // self._total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        sys.stderr.write(f"\r{self._label:<36} [{bar}] {self._done}/{self._total}")
        sys.stderr.flush()
