"""A batch of events in one transaction leaves exactly what the same events one at a time do:
the same leads, visitors and published events, identity included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import given, settings
from hypothesis import strategies as st

from leadrelay.contracts.envelope import CloudEvent
from tests.unit.scoring.service_events import (
    ADA_COOKIE,
    ADA_KEY,
    DEMO_AT,
    T0,
    ada_journey,
    form,
    recycled,
    sales,
    web,
)
from tests.unit.scoring.support import TOPICS, scoring_harness
from tests.unit.sla_monitor.support import lead_assigned

BOB = "bob@acme.example"


def story() -> list[CloudEvent]:
    """Anonymous browsing before and after the form that links it, a second person's form on
    the same device, activity keyed by lead, hand-off, a rejection, a recycle of a lead scoring
    never saw, and a redelivery."""
    later = T0 + timedelta(hours=2)
    journey = ada_journey()
    return [
        *journey,
        web("pv-after", later, anonymous_id=ADA_COOKIE),
        form("bob-form", T0 + timedelta(hours=1), BOB, anonymous_id=ADA_COOKIE),
        web("bob-anon", later, anonymous_id="cookie-bob"),
        form("bob-2", later, BOB, anonymous_id="cookie-bob", form_id="demo-request"),
        lead_assigned("as-1", "rep-7", later, lead_key=ADA_KEY),
        sales("accepted", later + timedelta(minutes=5), "accepted"),
        sales("rejected", later + timedelta(minutes=9), "rejected", reason="no budget"),
        recycled("stranger", later, key="lk_never_seen"),
        web("pv-late", later + timedelta(hours=1), key=ADA_KEY),
        journey[0],
    ]


def chunks(events: list[CloudEvent], cuts: list[int]) -> Iterator[list[CloudEvent]]:
    start = 0
    for cut in sorted({c % (len(events) + 1) for c in cuts} | {len(events)}):
        if cut > start:
            yield events[start:cut]
            start = cut


@settings(max_examples=12, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=5))
async def test_batches_leave_what_one_event_at_a_time_leaves(cuts: list[int]) -> None:
    events = story()
    with TemporaryDirectory() as one_dir, TemporaryDirectory() as batch_dir:
        async with (
            scoring_harness(Path(one_dir)) as one,
            scoring_harness(Path(batch_dir)) as batched,
        ):
            for harness in (one, batched):
                harness.clock.now = DEMO_AT + timedelta(hours=3)
            await one.deliver(*events)
            for chunk in chunks(events, cuts):
                await batched.deliver_batch(*chunk)
            expected = await one.everything()
            assert expected["states"][ADA_KEY].anonymous_ids == (ADA_COOKIE,)
            assert {topic for topic, *_ in expected["published"]} == set(vars(TOPICS).values())
            assert await batched.everything() == expected
