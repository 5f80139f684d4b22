"""The SLA monitor as it runs: real Kafka, SQLite and PostgreSQL, an injected clock, no sleeps.

The clock is a fake shared by every instance in a test; moving it is how time passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import Select, func, select

from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.topics import Topic
from leadrelay.runtime.service import Runtime, ServiceSpec, open_runtime, run_services
from leadrelay.settings import load_settings
from leadrelay.store.tables import outbox
from services.scoring.read_model import lead_view as scoring_view
from services.scoring.service import build_service as build_scoring
from services.sla_monitor.domain import ClockKind, SlaClock
from services.sla_monitor.repository import clocks_of_lead
from services.sla_monitor.service import SlaMonitor, build_service
from services.sla_monitor.tables import sla_clocks, sla_parked_activity
from tests.integration.runtime.effects import produce, read_topic, wait_until
from tests.integration.sla_monitor.bulk import insert_pending
from tests.unit.scoring.service_events import ADA_KEY, form
from tests.unit.sla_monitor.helpers import berlin
from tests.unit.sla_monitor.support import (
    FakeClock,
    definitions,
    handing_on,
    lead_assigned,
    lead_recycled,
    marketing_activity,
    rep_updated,
    sales_activity,
)

ASSIGNED = berlin(2026, 1, 13, 10, 0)  # a Tuesday: SDR first touch due 11:00, warning 10:45


@dataclass
class Instance:
    runtime: Runtime
    stop: asyncio.Event
    task: asyncio.Task[None]


@dataclass(frozen=True)
class Cluster:
    """Where the instances of one test run: a broker, a database, a topic prefix, a clock."""

    bootstrap: str
    database_url: str
    prefix: str
    clock: FakeClock

    def topic(self, topic: Topic) -> str:
        return f"{self.prefix}{topic.value}"

    @asynccontextmanager
    async def instance(
        self, spec: Callable[[Runtime], ServiceSpec] | None = None
    ) -> AsyncIterator[Instance]:
        """One monitor process (its own engine, producer and relay), stopped on exit."""
        settings = load_settings(
            kafka_bootstrap=self.bootstrap,
            database_url=self.database_url,
            topic_prefix=self.prefix,
            sla_poll_seconds=0.05,
            outbox_poll_seconds=0.05,
        )
        runtime = await open_runtime(settings, clock=self.clock)
        build = spec or (lambda r: build_service(r, definitions().sla))
        stop = asyncio.Event()
        task = asyncio.create_task(run_services(runtime, [build(runtime)], stop))
        try:
            yield Instance(runtime, stop, task)
        finally:
            stop.set()
            await task
            await runtime.close()

    async def count(self, instance: Instance, query: Select[int]) -> int:
        async with instance.runtime.store.engine.connect() as connection:
            return int(await connection.scalar(query) or 0)


async def cluster(bootstrap: str, database_url: str, prefix: str) -> Cluster:
    await upgrade_async(database_url)
    return Cluster(bootstrap, database_url, prefix, FakeClock(ASSIGNED))


async def events_on(c: Cluster, topic: Topic, expected: int) -> list[CloudEvent]:
    messages = await read_topic(c.bootstrap, c.topic(topic), expected=expected, within=30)
    return [CloudEvent.from_bytes(value) for _key, value, _headers in messages]


CLOCK_ROWS = select(func.count()).select_from(sla_clocks)
PARKED_ROWS = select(func.count()).select_from(sla_parked_activity)
UNSENT = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))


async def stage_is(c: Cluster, instance: Instance, stage: str) -> bool:
    """Whether scoring (sharing the cluster's database) holds the test lead at ``stage``."""
    async with instance.runtime.store.engine.connect() as connection:
        view = await scoring_view(connection, ADA_KEY)
    return view is not None and view["stage"] == stage


async def test_a_clock_that_came_due_while_the_monitor_was_down_fires_once_on_return(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    c = await cluster(kafka_bootstrap, database_url, unique_topic_prefix)
    async with c.instance() as first:
        await produce(
            c.bootstrap, c.topic(Topic.ASSIGNMENTS), [lead_assigned("as-1", "rep-anna", ASSIGNED)]
        )

        async def clocks_started() -> bool:
            return await c.count(first, CLOCK_ROWS) == 2

        await wait_until(clocks_started, within=30)

    c.clock.set(berlin(2026, 1, 13, 11, 5))  # past the deadline while nothing runs
    async with c.instance():
        events = await events_on(c, Topic.SLA_EVENTS, expected=2)
    assert [e.type for e in events] == ["leadrelay.sla_breached.v1", "leadrelay.sla_escalated.v1"]
    assert events[0].data["clock"] == "first_touch"

    async with c.instance() as third:  # and a further restart fires nothing again

        async def relayed() -> bool:
            return await third.runtime.store.outbox_backlog() == 0

        await wait_until(relayed, within=30)
        assert await c.count(third, select(func.count()).select_from(outbox)) == 2


async def test_two_monitor_instances_fire_each_clock_once(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    clocks = 1_000
    c = await cluster(kafka_bootstrap, database_url, unique_topic_prefix)
    due = berlin(2026, 1, 13, 11, 0)

    def small_batches(runtime: Runtime) -> ServiceSpec:
        return SlaMonitor.create(
            runtime.store,
            definitions().sla,
            registry=runtime.registry,
            topic_name=runtime.topic,
            poll_seconds=0.05,
            sweep_seconds=3600.0,
            batch_size=25,
        ).spec()

    async with c.instance(small_batches) as one, c.instance(small_batches) as two:
        await insert_pending(one.runtime.store, clocks, due)
        c.clock.set(due)  # both firing loops now race for the same clocks

        async def breaches_queued() -> list[CloudEvent]:
            # the outbox, not the topic: the at-risk forecaster may announce some clocks too
            async with one.runtime.store.read() as connection:  # SQLite: takes no write lock
                payloads = (await connection.execute(select(outbox.c.payload))).scalars().all()
            events = [CloudEvent.from_bytes(payload) for payload in payloads]
            return [e for e in events if e.type == "leadrelay.sla_breached.v1"]

        # 1,000 clocks on SQLite: minutes of a loaded machine's CPU, well inside pytest-timeout
        await wait_until(lambda: _at_least(breaches_queued, clocks), within=200, interval=0.5)
        await wait_until(lambda: _none_unsent(c, one), within=30)
        breaches = await breaches_queued()
        per_instance = [
            i.runtime.registry.get_sample_value("leadrelay_sla_actions_total", {"step": "breach"})
            for i in (one, two)
        ]
    print(f"\nbreaches fired per instance: {per_instance}")
    assert len(breaches) == clocks  # one breach per clock: nothing fired twice
    assert len({e.data["clock_id"] for e in breaches}) == clocks
    assert len({e.id for e in breaches}) == clocks  # a relay's resend would carry the same id
    assert sum(v or 0 for v in per_instance) == clocks


async def _at_least(events: Callable[[], Awaitable[list[CloudEvent]]], count: int) -> bool:
    return len(await events()) >= count


async def _none_unsent(c: Cluster, instance: Instance) -> bool:
    return await c.count(instance, UNSENT) == 0


async def test_a_rejection_recycles_the_lead_once_and_scoring_moves_it_to_nurture(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    c = await cluster(kafka_bootstrap, database_url, unique_topic_prefix)
    scoring = partial(build_scoring, scorecard=definitions().scorecard)
    async with c.instance() as monitor, c.instance(scoring):
        signed_up = form("form-1", ASSIGNED - timedelta(hours=1))
        await produce(c.bootstrap, c.topic(Topic.FORM_SUBMISSIONS), [signed_up])
        await wait_until(lambda: stage_is(c, monitor, "lead"), within=30)
        assigned = lead_assigned("as-1", "rep-anna", ASSIGNED, lead_key=ADA_KEY)
        await produce(c.bootstrap, c.topic(Topic.ASSIGNMENTS), [assigned])

        async def clocks_started() -> bool:
            return await c.count(monitor, CLOCK_ROWS) == 2

        await wait_until(clocks_started, within=30)
        rejected = sales_activity(
            "rejected",
            "rep-anna",
            berlin(2026, 1, 13, 10, 20),
            reason="wrong country",
            assignment_id="as-1",
            lead_key=ADA_KEY,
        )
        await produce(c.bootstrap, c.topic(Topic.SALES_ACTIVITY), [rejected])
        await wait_until(lambda: stage_is(c, monitor, "recycled"), within=30)

        async def everything_sent() -> bool:  # both services' outboxes share the database
            return await c.count(monitor, UNSENT) == 0

        await wait_until(everything_sent, within=30)
        events = await events_on(c, Topic.RECYCLED, expected=1)
    assert len(events) == 1  # one announcement per rejection, not one per service
    assert events[0].type == "leadrelay.lead_recycled.v1"
    assert events[0].subject == ADA_KEY
    assert (events[0].data["reason"], events[0].data["detail"]) == (
        "rejected_by_sales",
        "wrong country",
    )


async def test_an_acceptance_read_before_its_assignment_stops_the_clocks_it_starts(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    c = await cluster(kafka_bootstrap, database_url, unique_topic_prefix)
    async with c.instance() as monitor:
        accepted = sales_activity(
            "accepted", "rep-anna", berlin(2026, 1, 13, 10, 5), assignment_id="as-1"
        )
        await produce(c.bootstrap, c.topic(Topic.SALES_ACTIVITY), [accepted])

        async def parked() -> bool:
            return await c.count(monitor, PARKED_ROWS) == 1

        await wait_until(parked, within=30)
        await produce(
            c.bootstrap, c.topic(Topic.ASSIGNMENTS), [lead_assigned("as-1", "rep-anna", ASSIGNED)]
        )

        async def applied() -> bool:
            completed = CLOCK_ROWS.where(sla_clocks.c.state == "completed")
            unparked = await c.count(monitor, PARKED_ROWS) == 0
            return unparked and await c.count(monitor, completed) == 2

        await wait_until(applied, within=30)
        # the firing loop only fires clocks with a next step; an accepted lead's have none
        left_to_fire = CLOCK_ROWS.where(sla_clocks.c.next_fire_at.is_not(None))
        assert await c.count(monitor, left_to_fire) == 0
        queued = await c.count(monitor, select(func.count()).select_from(outbox))
    assert queued == 0  # no warning, breach or escalation for a lead already accepted


async def test_a_recycle_on_kafka_ends_the_leads_clocks_so_nothing_fires_after_it(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    c = await cluster(kafka_bootstrap, database_url, unique_topic_prefix)
    sales_only = definitions().sla.model_copy(update={"marketing": None})  # no marketing clock
    async with c.instance(lambda r: build_service(r, sales_only)) as monitor:
        await produce(
            c.bootstrap, c.topic(Topic.ASSIGNMENTS), [lead_assigned("as-1", "rep-anna", ASSIGNED)]
        )

        async def clocks_started() -> bool:
            return await c.count(monitor, CLOCK_ROWS) == 2

        await wait_until(clocks_started, within=30)
        recycled = lead_recycled(berlin(2026, 1, 13, 10, 20), reason="rejected_by_sales")
        await produce(c.bootstrap, c.topic(Topic.RECYCLED), [recycled])

        async def clocks_ended() -> bool:
            stopped = CLOCK_ROWS.where(sla_clocks.c.state == "stopped")
            return await c.count(monitor, stopped) == 2

        await wait_until(clocks_ended, within=30)
        c.clock.set(berlin(2026, 1, 20, 10, 0))  # a week later: every deadline has passed
        left_to_fire = CLOCK_ROWS.where(sla_clocks.c.next_fire_at.is_not(None))
        assert await c.count(monitor, left_to_fire) == 0
        queued = await c.count(monitor, select(func.count()).select_from(outbox))
    assert queued == 0  # no warning, breach or escalation for a recycled lead


AWAY = (berlin(2026, 1, 13, 10, 30), berlin(2026, 1, 13, 14, 0))
GOES_AWAY = berlin(2026, 1, 13, 10, 20)


async def first_touch(instance: Instance, lead_key: str) -> SlaClock | None:
    async with instance.runtime.store.engine.connect() as connection:
        clocks = await clocks_of_lead(connection, lead_key)
    return next((c for c in clocks if c.kind is ClockKind.FIRST_TOUCH), None)


async def test_a_rep_going_out_of_office_mid_clock_pauses_it_so_the_deadline_moves_later(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    c = await cluster(kafka_bootstrap, database_url, unique_topic_prefix)
    async with c.instance() as monitor:
        assigned = lead_assigned("as-1", "rep-anna", ASSIGNED)
        await produce(c.bootstrap, c.topic(Topic.ASSIGNMENTS), [assigned])

        async def started() -> bool:
            clock = await first_touch(monitor, assigned.data["lead_key"])
            return clock is not None and clock.due_at == berlin(2026, 1, 13, 11, 0)

        await wait_until(started, within=30)
        c.clock.set(GOES_AWAY)
        away = rep_updated("rep-anna", GOES_AWAY, [AWAY])
        await produce(c.bootstrap, c.topic(Topic.ROSTER), [away])

        async def paused() -> bool:
            clock = await first_touch(monitor, assigned.data["lead_key"])
            return clock is not None and clock.due_at == berlin(2026, 1, 13, 14, 30)

        await wait_until(paused, within=30)
        c.clock.set(berlin(2026, 1, 13, 14, 31))  # past the moved deadline
        events = await events_on(c, Topic.SLA_EVENTS, expected=2)
    assert [e.type for e in events] == ["leadrelay.sla_breached.v1", "leadrelay.sla_escalated.v1"]
    assert events[0].data["deadline"] == "2026-01-13T13:30:00Z"  # 14:30 Berlin, not 11:00


async def test_a_rep_going_out_of_office_mid_clock_hands_the_lead_on_by_policy(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    c = await cluster(kafka_bootstrap, database_url, unique_topic_prefix)
    handing = handing_on().sla
    async with c.instance(lambda runtime: build_service(runtime, handing)) as monitor:
        assigned = lead_assigned("as-1", "rep-anna", ASSIGNED)
        await produce(c.bootstrap, c.topic(Topic.ASSIGNMENTS), [assigned])

        async def clocks_started() -> bool:
            return await c.count(monitor, CLOCK_ROWS) == 2

        await wait_until(clocks_started, within=30)
        c.clock.set(GOES_AWAY)
        await produce(
            c.bootstrap, c.topic(Topic.ROSTER), [rep_updated("rep-anna", GOES_AWAY, [AWAY])]
        )
        events = await events_on(c, Topic.ASSIGNMENTS, expected=2)
        clock = await first_touch(monitor, assigned.data["lead_key"])
    request = events[1]
    assert request.type == "leadrelay.lead_reassignment_requested.v1"
    assert request.data["reason"] == "out_of_office"
    assert request.data["previous_assignment_id"] == "as-1"
    assert request.data["exclude_rep_ids"] == ["rep-anna"]
    assert clock is not None
    assert not clock.is_open


RECYCLED_AT = berlin(2026, 1, 13, 10, 20)  # a Tuesday: marketing's 2bd ends Thursday 10:20
MARKETING_CLOCK = CLOCK_ROWS.where(sla_clocks.c.role == "marketing")


async def test_a_recycle_starts_marketings_clock_and_the_maps_enrolment_meets_it(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    c = await cluster(kafka_bootstrap, database_url, unique_topic_prefix)
    c.clock.set(RECYCLED_AT)
    async with c.instance() as monitor:
        recycled = lead_recycled(RECYCLED_AT, reason="rejected_by_sales")
        await produce(c.bootstrap, c.topic(Topic.RECYCLED), [recycled])
        await wait_until(lambda: _counted(c, monitor, MARKETING_CLOCK, 1), within=30)
        enrolled = marketing_activity(berlin(2026, 1, 14, 9, 30))
        await produce(c.bootstrap, c.topic(Topic.RECYCLED), [enrolled])
        met = MARKETING_CLOCK.where(sla_clocks.c.state == "completed")
        await wait_until(lambda: _counted(c, monitor, met, 1), within=30)
        c.clock.set(berlin(2026, 1, 20, 10, 0))  # a week later: the deadline has passed
        left_to_fire = CLOCK_ROWS.where(sla_clocks.c.next_fire_at.is_not(None))
        assert await c.count(monitor, left_to_fire) == 0
        queued = await c.count(monitor, select(func.count()).select_from(outbox))
    assert queued == 0  # no warning, no breach: marketing acknowledged in time


async def test_marketing_is_warned_breached_and_escalated_when_the_map_never_acknowledges(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    c = await cluster(kafka_bootstrap, database_url, unique_topic_prefix)
    c.clock.set(RECYCLED_AT)
    async with c.instance() as monitor:
        recycled = lead_recycled(RECYCLED_AT, reason="rejected_by_sales")
        await produce(c.bootstrap, c.topic(Topic.RECYCLED), [recycled])
        await wait_until(lambda: _counted(c, monitor, MARKETING_CLOCK, 1), within=30)
        c.clock.set(berlin(2026, 1, 14, 15, 0))  # past 75% of 16 working hours (Wed 14:20)
        warned = await events_on(c, Topic.SLA_EVENTS, expected=1)
        c.clock.set(berlin(2026, 1, 15, 10, 30))  # past Thursday 10:20
        events = await events_on(c, Topic.SLA_EVENTS, expected=3)
    assert [e.type for e in warned] == ["leadrelay.sla_warning.v1"]
    assert [e.type for e in events] == [
        "leadrelay.sla_warning.v1",
        "leadrelay.sla_breached.v1",
        "leadrelay.sla_escalated.v1",
    ]
    assert events[2].data["escalated_to"] == "marketing-ops"
    breach = events[1].data
    assert (breach["clock"], breach["policy"], breach["rep_id"]) == (
        "marketing_acknowledgement",
        "marketing",
        "marketing",
    )
    assert breach["assignment_id"] == recycled.id
    assert breach["deadline"] == "2026-01-15T09:20:00Z"


async def _counted(c: Cluster, instance: Instance, query: Select[int], expected: int) -> bool:
    return await c.count(instance, query) == expected
