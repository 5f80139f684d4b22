"""A production history generated for the replay and calibration tests: leads of known kinds.

Under the default scorecard (``sales_ready.min_engagement`` 50, grade B at least):

* ``borderline``: grade A, engagement reaches 54 and stops: an MQL, but not at a threshold of 60;
* ``strong``: grade A, 36 points, then a contact form lifts engagement to 66 in one event: the
  same MQL at 50 and at 60;
* ``fast``: grade C, a demo request: a fast-track MQL whatever the threshold;
* ``cold``: a student on a free mail address: never an MQL.

Some leads browse anonymously before their form (the visitor-linking path). What sales does
with the leads handed off is not planned here but played by the reps of ``reps.py`` as the
assignments arrive (each lead has its :data:`FATES` entry), so the sales activity names real
reps and assignments. Each lead's events keep their order (Kafka's per-key order); leads
interleave at random.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.identity import lead_key
from leadrelay.settings import DEV_SECRET
from tests.unit.scoring.service_events import ADA_PROFILE, T0, form, web

FAST_PROFILE: dict[str, Any] = {"job_title": "Sales Manager", "country": "US"}
"""Fit 20: grade C (fast track only)."""
COLD_PROFILE: dict[str, Any] = {"job_title": "Student"}


@dataclass(frozen=True)
class Lead:
    kind: str
    key: str
    fate: str
    """What its first rep does with it (:data:`FATES`)."""
    events: tuple[tuple[timedelta, CloudEvent], ...]
    """Each event with its offset from the lead's start."""


def _minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def _lead(kind: str, n: int, rng: random.Random) -> Lead:
    email = f"{kind}{n}@buyer{n}.example" if kind != "cold" else f"cold{n}@gmail.com"
    key, p = lead_key(email, DEV_SECRET), f"{kind}{n}"
    start = T0 + timedelta(hours=rng.uniform(0, 72))
    cookie = f"cookie-{p}" if rng.random() < 0.5 else None
    steps: list[tuple[float, CloudEvent]] = []

    def add(offset: float, make: Any) -> None:
        steps.append((offset, make(start + _minutes(offset))))

    profile = {"borderline": ADA_PROFILE, "strong": ADA_PROFILE, "fast": FAST_PROFILE,
               "cold": COLD_PROFILE}[kind]  # fmt: skip
    if cookie is not None:
        add(0, lambda t: web(f"{p}-anon", t, anonymous_id=cookie))
    add(1, lambda t: form(f"{p}-form", t, email, anonymous_id=cookie, profile=profile))
    if kind in ("borderline", "strong"):
        for i in range(3):
            add(2 + i, lambda t, i=i: web(f"{p}-dl{i}", t, "content_download", key=key))
    if kind == "borderline":
        add(6, lambda t: web(f"{p}-price", t, "pricing_page_view", key=key))
        for i in range(10 if cookie is None else 9):
            add(7 + i, lambda t, i=i: web(f"{p}-pv{i}", t, key=key))
    elif kind == "strong":
        add(6, lambda t: web(f"{p}-pv0", t, key=key))
        if cookie is None:
            add(7, lambda t: web(f"{p}-pv1", t, key=key))
        add(8, lambda t: form(f"{p}-contact", t, email, form_id="contact-us", profile=profile))
    elif kind == "fast":
        add(3, lambda t: web(f"{p}-demo", t, "demo_request", key=key))
    else:
        for i in range(4):
            add(2 + i, lambda t, i=i: web(f"{p}-pv{i}", t, key=key))
    return Lead(kind, key, FATES[n % len(FATES)], tuple((_minutes(o), e) for o, e in steps))


FATES = ("quick", "slow", "silent", "rejecter")
"""What the first rep a lead is assigned to does (``reps.py`` plays them): touches and accepts
in minutes, touches after 45 minutes (inside an SDR's 1bh, outside 30bm), never reacts (the
ladder escalates and reassigns), or rejects it. A lead reassigned gets a quick rep."""


def generate(seed: int = 17, per_kind: int = 6) -> tuple[list[Lead], list[CloudEvent]]:
    """The leads and every event in arrival order (each lead's own order kept)."""
    rng = random.Random(seed)
    leads = [_lead(k, n, rng) for k in ("borderline", "strong", "fast", "cold")
             for n in range(per_kind)]  # fmt: skip
    timed = [(e.time, e.id, e) for lead in leads for _, e in lead.events]
    return leads, [e for _, _, e in sorted(timed, key=lambda t: (t[0], t[1]))]
