"""Acting before a breach, as it runs: hand-off and the SLA monitor on real Kafka, SQLite and
PostgreSQL, sharing an injected clock.

Anna works 09:00-17:00 and takes about 40 minutes to touch a lead; Ben works 09:00-22:00. A lead
Anna gets at 16:30 under a two-hour first-touch SLA (due 18:30) would wait for her until the next
morning: the monitor announces it at risk and, as the policy allows, hand-off gives it to Ben at
once, long before Anna's clock would have breached.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select

from leadrelay.app.definitions import Definitions
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.topics import EventType, Topic
from leadrelay.runtime.service import Runtime, open_runtime, run_services
from leadrelay.settings import load_settings
from services.handoff.service import build_service as build_handoff
from services.sla_monitor.domain import (
    AnnouncedDeadlines,
    ClockKind,
    ClockState,
    SlaClock,
    parse_duration,
)
from services.sla_monitor.service import build_service as build_monitor
from services.sla_monitor.tables import sla_clocks
from tests.integration.runtime.effects import produce, read_topic, wait_until
from tests.unit.handoff.builders import make_rep
from tests.unit.handoff.support import definitions_with, sales_ready
from tests.unit.sla_monitor.helpers import berlin
from tests.unit.sla_monitor.support import FakeClock, sales_activity

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def definitions() -> Definitions:
    """Anna (weighted to be picked first) and Ben; the SDR policy: two hours to first touch,
    reassign before the breach when at risk."""
    anna = make_rep(
        "sdr-anna",
        time_zone="Europe/Berlin",
        working_hours={d: ["09:00-17:00"] for d in WEEKDAYS},
        weight=100,
    )
    ben = make_rep(
        "sdr-ben", time_zone="Europe/Berlin", working_hours={d: ["09:00-22:00"] for d in WEEKDAYS}
    )
    shipped = definitions_with([anna, ben])
    policies = tuple(
        p.model_copy(
            update={
                "first_touch": p.first_touch.model_copy(update={"within": parse_duration("2h")}),
                "at_risk": "reassign",
            }
        )
        if p.id == "sdr" and p.first_touch is not None
        else p
        for p in shipped.sla.policies
    )
    sla = shipped.sla.model_copy(update={"policies": policies})
    return shipped.model_copy(update={"sla": sla})


@asynccontextmanager
async def pipeline(
    bootstrap: str, database_url: str, prefix: str, clock: FakeClock
) -> AsyncIterator[Runtime]:
    settings = load_settings(
        kafka_bootstrap=bootstrap,
        database_url=database_url,
        topic_prefix=prefix,
        sla_poll_seconds=0.05,
        sla_forecast_seconds=0.05,
        outbox_poll_seconds=0.05,
        retry_backoff_seconds=0.05,
    )
    runtime = await open_runtime(settings, clock=clock)
    defs = definitions()
    specs = [
        build_handoff(runtime, defs.routing, defs.roster, AnnouncedDeadlines(defs.sla)),
        build_monitor(runtime, defs.sla),
    ]
    stop = asyncio.Event()
    task = asyncio.create_task(run_services(runtime, specs, stop))
    try:
        yield runtime
    finally:
        stop.set()
        await task
        await runtime.close()


async def events_on(bootstrap: str, prefix: str, topic: Topic, expected: int) -> list[CloudEvent]:
    messages = await read_topic(bootstrap, f"{prefix}{topic.value}", expected=expected, within=60)
    return [CloudEvent.from_bytes(value) for _key, value, _headers in messages]


async def first_touch_clock(runtime: Runtime, assignment_id: str) -> SlaClock | None:
    async with runtime.store.engine.connect() as connection:
        rows = await connection.execute(
            select(sla_clocks.c.document).where(sla_clocks.c.assignment_id == assignment_id)
        )
        clocks = [SlaClock.model_validate(document) for (document,) in rows]
    return next((c for c in clocks if c.kind is ClockKind.FIRST_TOUCH), None)


async def test_an_at_risk_clock_is_reassigned_before_it_breaches(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    await upgrade_async(database_url)
    clock = FakeClock(berlin(2026, 1, 13, 10, 0))  # a Tuesday morning
    async with pipeline(kafka_bootstrap, database_url, unique_topic_prefix, clock) as runtime:
        ready = f"{unique_topic_prefix}{Topic.SALES_READY.value}"
        await produce(kafka_bootstrap, ready, [sales_ready("lk_morning", time=clock())])
        [morning] = await events_on(kafka_bootstrap, unique_topic_prefix, Topic.ASSIGNMENTS, 1)
        assert morning.data["rep_id"] == "sdr-anna"
        morning_id = morning.data["assignment_id"]

        async def clock_started() -> bool:
            return await first_touch_clock(runtime, morning_id) is not None

        await wait_until(clock_started)
        touched = berlin(2026, 1, 13, 10, 40)  # Anna's pace: 40 minutes
        clock.set(touched)
        contacted = sales_activity(
            "contacted", "sdr-anna", touched, assignment_id=morning_id, lead_key="lk_morning"
        )
        await produce(
            kafka_bootstrap, f"{unique_topic_prefix}{Topic.SALES_ACTIVITY.value}", [contacted]
        )

        async def met() -> bool:
            found = await first_touch_clock(runtime, morning_id)
            return found is not None and found.state is ClockState.COMPLETED

        await wait_until(met)

        clock.set(berlin(2026, 1, 13, 16, 30))  # half an hour before Anna's shift ends
        await produce(kafka_bootstrap, ready, [sales_ready("lk_late", time=clock())])
        assignments = await events_on(kafka_bootstrap, unique_topic_prefix, Topic.ASSIGNMENTS, 4)
        [at_risk] = await events_on(kafka_bootstrap, unique_topic_prefix, Topic.SLA_EVENTS, 1)
        late = [e.data for e in assignments if e.data["lead_key"] == "lk_late"]
        anna_id = late[0]["assignment_id"]
        anna_clock = await first_touch_clock(runtime, anna_id)

        clock.set(berlin(2026, 1, 13, 18, 31))  # past the deadline Anna would have missed
        later = await events_on(kafka_bootstrap, unique_topic_prefix, Topic.SLA_EVENTS, 3)

    # one lead's events keep their order (one key, one partition); two leads' need not
    assert [e.type for e in assignments if e.data["lead_key"] == "lk_late"] == [
        EventType.LEAD_ASSIGNED.value,
        EventType.LEAD_REASSIGNMENT_REQUESTED.value,
        EventType.LEAD_ASSIGNED.value,
    ]
    assert late[0]["rep_id"] == "sdr-anna"
    request, ben = late[1], late[2]
    assert request["reason"] == "sla_at_risk"
    assert request["previous_assignment_id"] == anna_id
    assert request["exclude_rep_ids"] == ["sdr-anna"]
    assert ben["rep_id"] == "sdr-ben"

    assert at_risk.type == EventType.SLA_AT_RISK.value
    assert at_risk.data["assignment_id"] == anna_id
    assert at_risk.data["clock"] == "first_touch"
    assert at_risk.data["deadline"] == "2026-01-13T17:30:00Z"  # 18:30 Berlin
    assert at_risk.data["reasons"] == ["off_shift_before_due"]
    assert at_risk.data["expected_at"] == "2026-01-14T08:10:00Z"  # 09:10 Berlin the next day
    assert at_risk.data["reassignment_requested"] is True

    assert anna_clock is not None
    assert anna_clock.state is ClockState.STOPPED
    assert not anna_clock.was_breached
    # Ben, idle and in hours, was not at risk; he never touched the lead either, so his clock
    # breaches (its warning, due with it, is passed over): the firing loop ran past 18:30, and
    # Anna's clock fired nothing.
    assert [(e.type, e.data["assignment_id"]) for e in later[1:]] == [
        (EventType.SLA_BREACHED.value, ben["assignment_id"]),
        (EventType.SLA_ESCALATED.value, ben["assignment_id"]),
    ]
