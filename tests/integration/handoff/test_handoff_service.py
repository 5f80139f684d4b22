"""The hand-off service on a real Kafka broker, on SQLite and PostgreSQL.

Inputs are produced as scoring and the SLA monitor would produce them; the service runs in-process
exactly as ``leadrelay run handoff`` runs it (``open_runtime`` + ``run_services``).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from fastapi import FastAPI
from sqlalchemy import func, select

from leadrelay.app.definitions import Definitions
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.schemas import validate_event
from leadrelay.contracts.topics import EventType, Topic
from leadrelay.runtime.service import Runtime, open_runtime, run_services
from leadrelay.settings import load_settings
from leadrelay.store.tables import inbox
from services.handoff.api import build_router
from services.handoff.domain import LeadFacts, RepLoad, RoutingState, decide, record_assignment
from services.handoff.service import build_service
from services.handoff.tables import assignments
from services.sla_monitor.domain import AnnouncedDeadlines
from tests.integration.runtime.effects import produce, read_topic, wait_until
from tests.unit.handoff.builders import make_rep
from tests.unit.handoff.support import NOW as DEFINITIONS_NOW
from tests.unit.handoff.support import definitions_with, reassignment, sales_ready
from tests.unit.sla_monitor.support import sales_activity

AssignmentRow = tuple[str, int, int, str | None]
"""``(lead_key, episode, attempt, rep_id)`` of one ``handoff_assignments`` row."""

DEFINITIONS = definitions_with([make_rep("sdr-a"), make_rep("sdr-b"), make_rep("sdr-c")])
TOKEN = "integration-token"


@asynccontextmanager
async def running_handoff(
    bootstrap: str, database_url: str, prefix: str, definitions: Definitions = DEFINITIONS
) -> AsyncIterator[Runtime]:
    """One hand-off instance (its own runtime: engine, producer, registry) until the block ends."""
    settings = load_settings(
        kafka_bootstrap=bootstrap,
        database_url=database_url,
        topic_prefix=prefix,
        retry_backoff_seconds=0.05,
        outbox_poll_seconds=0.05,
    )
    runtime = await open_runtime(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_services(
            runtime,
            [
                build_service(
                    runtime,
                    definitions.routing,
                    definitions.roster,
                    AnnouncedDeadlines(definitions.sla),
                )
            ],
            stop,
        )
    )
    try:
        yield runtime
    finally:
        stop.set()
        await task
        await runtime.close()


def topic(prefix: str, name: Topic) -> str:
    return f"{prefix}{name.value}"


async def assigned_events(bootstrap: str, prefix: str, *, expected: int) -> list[CloudEvent]:
    """The ``lead_assigned`` events on the assignments topic (requests there are left out)."""
    messages = await read_topic(bootstrap, topic(prefix, Topic.ASSIGNMENTS), expected=expected)
    events = [CloudEvent.from_bytes(value) for _, value, _ in messages]
    return [e for e in events if e.type == EventType.LEAD_ASSIGNED.value]


async def wait_for_assignments(runtime: Runtime, count: int, *, within: float = 60.0) -> None:
    async def enough() -> bool:
        async with runtime.store.engine.connect() as connection:
            result = await connection.execute(select(func.count()).select_from(assignments))
            return int(result.scalar_one()) >= count

    await wait_until(enough, within=within)


async def test_a_sales_ready_event_yields_one_complete_assignment_and_a_redelivery_none(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    await upgrade_async(database_url)
    sales_ready_topic = topic(unique_topic_prefix, Topic.SALES_READY)
    async with running_handoff(kafka_bootstrap, database_url, unique_topic_prefix) as runtime:
        await produce(kafka_bootstrap, sales_ready_topic, [sales_ready("lk_ada")])
        await wait_for_assignments(runtime, 1)
        # The same event again, the same episode replayed under a new id, then a marker lead:
        # once the marker is assigned, everything before it on the lead's partition was handled.
        await produce(
            kafka_bootstrap,
            sales_ready_topic,
            [sales_ready("lk_ada"), sales_ready("lk_ada", event_id="replayed")],
        )
        await produce(kafka_bootstrap, sales_ready_topic, [sales_ready("lk_marker")])
        await wait_for_assignments(runtime, 2)

    events = await assigned_events(kafka_bootstrap, unique_topic_prefix, expected=2)
    assert sorted(e.subject or "" for e in events) == ["lk_ada", "lk_marker"]
    ada = next(e for e in events if e.subject == "lk_ada")
    validate_event(ada)
    data = ada.data
    assert data["rep_id"] in {"sdr-a", "sdr-b", "sdr-c"}
    assert (data["route"], data["role"], data["episode"], data["attempt"]) == (
        "round_robin",
        "sdr",
        1,
        1,
    )
    assert data["context"]["profile"]["email"] == "ada@analytical-engines.example"
    assert {"breakdown", "recent_activity", "high_intent", "lifecycle_history"} <= set(
        data["context"]
    )
    assert [s["step"] for s in data["trace"]["steps"]] == [
        "account_match",
        "rule_match",
        "eligibility",
        "round_robin",
    ]
    assert data["trace"]["chosen"]["rep_id"] == data["rep_id"]
    assert data["sla"]["policy"] == "sdr"
    assert data["sla"]["first_touch_due"] > data["assigned_at"]


async def test_a_reassignment_request_picks_a_different_rep(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    await upgrade_async(database_url)
    async with running_handoff(kafka_bootstrap, database_url, unique_topic_prefix) as runtime:
        await produce(
            kafka_bootstrap, topic(unique_topic_prefix, Topic.SALES_READY), [sales_ready("lk_ada")]
        )
        await wait_for_assignments(runtime, 1)
        [first] = await assigned_events(kafka_bootstrap, unique_topic_prefix, expected=1)
        request = reassignment("lk_ada", attempt=2, exclude=[first.data["rep_id"]])
        await produce(kafka_bootstrap, topic(unique_topic_prefix, Topic.ASSIGNMENTS), [request])
        await wait_for_assignments(runtime, 2)

    events = await assigned_events(kafka_bootstrap, unique_topic_prefix, expected=2)
    by_attempt = {e.data["attempt"]: e.data for e in events}
    assert set(by_attempt) == {1, 2}
    assert by_attempt[2]["rep_id"] != by_attempt[1]["rep_id"]
    assert {"rep_id": by_attempt[1]["rep_id"], "reason": "excluded_reassignment"} in by_attempt[2][
        "trace"
    ]["skipped"]


async def test_two_instances_in_one_group_never_assign_a_lead_twice(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    """Each lead's episode is sent twice under different ids to DIFFERENT partitions, so the
    two instances race on the same episode; exactly one assignment per episode must result."""
    await upgrade_async(database_url)
    leads = [f"lk_{n:04d}" for n in range(200)]
    group = f"{unique_topic_prefix}handoff"
    async with AsyncExitStack() as stack:
        runtimes = [
            await stack.enter_async_context(
                running_handoff(kafka_bootstrap, database_url, unique_topic_prefix)
            )
            for _ in range(2)
        ]
        await wait_until(lambda: _group_has_members(kafka_bootstrap, group, 2), within=60)
        await _produce_racing_pairs(
            kafka_bootstrap, topic(unique_topic_prefix, Topic.SALES_READY), leads
        )
        await wait_until(lambda: _inbox_count(runtimes[0], group, 2 * len(leads)), within=120)
        processed = [_sample(r, "leadrelay_messages_processed_total") for r in runtimes]
        rows = await _assignment_rows(runtimes[0])

    assert all(count > 0 for count in processed), f"one instance did nothing: {processed}"
    # Exactly one assignment row per lead: its one episode, first attempt.
    assert sorted(row[:3] for row in rows) == [(lead, 1, 1) for lead in leads]
    events = await assigned_events(kafka_bootstrap, unique_topic_prefix, expected=len(leads))
    assert_one_assignment_per_episode(events, rows)
    # One routing state for both instances: equal weights stay within one lead of each other.
    shares = Counter(rep_id for *_, rep_id in rows)
    assert max(shares.values()) - min(shares.values()) <= 1, shares
    dead = await read_topic(
        kafka_bootstrap, topic(unique_topic_prefix, Topic.DEAD_LETTER), expected=0, within=5
    )
    assert dead == []


FAIR_REPS = [
    make_rep("sdr-w1", weight=1),
    make_rep("sdr-w2", weight=2),
    make_rep("sdr-cap", weight=3, capacity={"open": 4}),
    make_rep("sdr-off", weight=5, working_hours={}),  # a weekday left out is a day off
    make_rep("ae-w1", role="ae", team="enterprise", weight=1),
    make_rep("ae-w3", role="ae", team="enterprise", weight=3),
]
"""Two pools (SDRs; enterprise AEs) with weights, an open-capacity limit and a rep off work."""


async def test_two_instances_rotate_each_pool_by_weight_capacity_and_hours_as_one_would(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    """Two instances decide in parallel, the SDR and AE pools each under its own lock, over
    every partition; each pool still sees one rotation, so the shares are exactly those of
    one instance deciding every lead in turn, capacity and working hours included."""
    await upgrade_async(database_url)
    definitions = definitions_with(FAIR_REPS)
    sdr_leads = [f"lk_sdr_{n:03d}" for n in range(120)]
    ae_leads = [f"lk_ae_{n:03d}" for n in range(80)]
    events = [sales_ready(k) for k in sdr_leads] + [
        sales_ready(k, company_size=5000)
        for k in ae_leads  # enterprise: the AE rule
    ]
    group = f"{unique_topic_prefix}handoff"
    async with AsyncExitStack() as stack:
        runtimes = [
            await stack.enter_async_context(
                running_handoff(kafka_bootstrap, database_url, unique_topic_prefix, definitions)
            )
            for _ in range(2)
        ]
        await wait_until(lambda: _group_has_members(kafka_bootstrap, group, 2), within=60)
        await produce(kafka_bootstrap, topic(unique_topic_prefix, Topic.SALES_READY), events)
        await wait_for_assignments(runtimes[0], len(events), within=120)
        processed = [_sample(r, "leadrelay_messages_processed_total") for r in runtimes]
        rows = await _assignment_rows(runtimes[0])

    assert all(count > 0 for count in processed), f"one instance did nothing: {processed}"
    shares = Counter(rep_id for *_, rep_id in rows)
    assert shares == _one_rotation(definitions, len(sdr_leads), len(ae_leads))
    assert (shares["sdr-cap"], shares["sdr-off"], shares["ae-w3"]) == (4, 0, 60)


def _one_rotation(definitions: Definitions, sdr_leads: int, ae_leads: int) -> Counter[str]:
    """The reps one instance would choose, deciding each lead after the other."""
    routing, reps = definitions.routing, definitions.roster.reps
    state, loads, chosen = RoutingState(), dict[str, RepLoad](), Counter[str]()
    now = datetime.now(UTC)
    for company_size in [850] * sdr_leads + [5000] * ae_leads:
        facts = LeadFacts(lead_key="lk", episode=1, company_size=company_size, country="DE")
        decision = decide(routing, reps, (), facts, state, loads, now)
        assert decision.rep_id is not None
        rep = next(r for r in reps if r.id == decision.rep_id)
        loads[rep.id] = record_assignment(loads.get(rep.id), rep, now)
        state, chosen[rep.id] = decision.new_state, chosen[rep.id] + 1
    return chosen


async def test_a_roster_change_through_the_api_routes_the_next_lead_without_a_restart(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    await upgrade_async(database_url)
    sales_ready_topic = topic(unique_topic_prefix, Topic.SALES_READY)
    async with running_handoff(kafka_bootstrap, database_url, unique_topic_prefix) as runtime:
        app = FastAPI()
        app.state.api_token = TOKEN
        deadlines = AnnouncedDeadlines(DEFINITIONS.sla)
        app.include_router(
            build_router(runtime, DEFINITIONS.routing, DEFINITIONS.roster, deadlines)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://test",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as http:
            await produce(kafka_bootstrap, sales_ready_topic, [sales_ready("lk_1")])
            await wait_for_assignments(runtime, 1)
            [first] = await assigned_events(kafka_bootstrap, unique_topic_prefix, expected=1)
            chosen = first.data["rep_id"]
            others = await _deactivate_all_but(http, chosen)
            leads = [f"lk_{n}" for n in range(2, 6)]
            await produce(kafka_bootstrap, sales_ready_topic, [sales_ready(k) for k in leads])
            await wait_for_assignments(runtime, 5)

    events = await assigned_events(kafka_bootstrap, unique_topic_prefix, expected=5)
    later = [e.data for e in events if e.data["lead_key"] in leads]
    assert [e["rep_id"] for e in later] == [chosen] * 4
    for data in later:
        assert {(s["rep_id"], s["reason"]) for s in data["trace"]["skipped"]} == {
            (rep_id, "inactive") for rep_id in others
        }
    # Each change went out on the roster topic, keyed by the rep, for the SLA monitor.
    roster = await read_topic(
        kafka_bootstrap, topic(unique_topic_prefix, Topic.ROSTER), expected=len(others)
    )
    changes = [CloudEvent.from_bytes(value) for _, value, _ in roster]
    for event in changes:
        validate_event(event)
    assert sorted(key or b"" for key, _, _ in roster) == [r.encode() for r in sorted(others)]
    assert sorted(e.data["rep_id"] for e in changes) == sorted(others)
    assert all(e.type == EventType.REP_UPDATED and e.data["active"] is False for e in changes)
    assert not any(b"@" in value for _, value, _ in roster)  # never a rep's email


def assert_one_assignment_per_episode(
    events: Sequence[CloudEvent], rows: Sequence[AssignmentRow]
) -> None:
    """Each episode was published as ONE assignment, to the one rep the database holds.

    Raw events are counted, never deduplicated by id: the id is derived from (lead, episode,
    attempt), so two assignments of one episode could share it. The two instances' relays take
    turns (an advisory lock on PostgreSQL, a lock file on SQLite), so no row is sent twice.
    """
    published: dict[tuple[str, int], list[CloudEvent]] = defaultdict(list)
    for event in events:
        published[(event.data["lead_key"], event.data["episode"])].append(event)
    stored = {(lead, episode): rep_id for lead, episode, _, rep_id in rows}
    assert set(published) == set(stored)
    for episode, copies in published.items():
        reps = {e.data["rep_id"] for e in copies}
        assert reps == {stored[episode]}, f"{episode} went to {reps}, stored {stored[episode]}"
        facts = {(e.id, json.dumps(e.data, sort_keys=True)) for e in copies}
        assert len(facts) == 1, f"{episode} published as {len(facts)} different assignments"
        assert len(copies) == 1, f"{episode} published {len(copies)} times"


async def _assignment_rows(runtime: Runtime) -> list[AssignmentRow]:
    query = select(
        assignments.c.lead_key, assignments.c.episode, assignments.c.attempt, assignments.c.rep_id
    )
    async with runtime.store.engine.connect() as connection:
        result = await connection.execute(query)
        return [(row.lead_key, row.episode, row.attempt, row.rep_id) for row in result]


async def _deactivate_all_but(http: httpx.AsyncClient, keep: str) -> list[str]:
    reps: list[dict[str, Any]] = (await http.get("/v1/reps")).json()["reps"]
    others = [rep for rep in reps if rep["id"] != keep]
    for rep in others:
        response = await http.put(f"/v1/reps/{rep['id']}", json=rep | {"active": False})
        assert response.status_code == 200, response.text
    return [rep["id"] for rep in others]


async def _produce_racing_pairs(bootstrap: str, topic_name: str, leads: Sequence[str]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic_name))
        half = len(partitions) // 2
        sends = []
        for n, lead in enumerate(leads):
            for copy, event in enumerate(
                [sales_ready(lead), sales_ready(lead, event_id=f"replay-{lead}")]
            ):
                partition = partitions[(n + copy * half) % len(partitions)]
                sends.append(
                    await producer.send(
                        topic_name, event.to_bytes(), key=lead.encode(), partition=partition
                    )
                )
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def _group_has_members(bootstrap: str, group: str, count: int) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    except KafkaError:  # the group's coordinator is still being elected
        return False
    else:
        described = response.to_object()["groups"][0]
        return bool(described["state"] == "Stable" and len(described["members"]) == count)
    finally:
        await admin.close()


async def _inbox_count(runtime: Runtime, group: str, count: int) -> bool:
    async with runtime.store.engine.connect() as connection:
        result = await connection.execute(
            select(func.count()).select_from(inbox).where(inbox.c.consumer == group)
        )
        return int(result.scalar_one()) >= count


def _sample(runtime: Runtime, name: str) -> float:
    return sum(
        sample.value
        for metric in runtime.registry.collect()
        for sample in metric.samples
        if sample.name == name
    )


async def test_a_queued_lead_goes_to_the_rep_whose_capacity_frees_up_oldest_first(
    kafka_bootstrap: str, database_url: str, unique_topic_prefix: str
) -> None:
    await upgrade_async(database_url)
    one_slot = definitions_with(
        [make_rep("sdr-a", capacity={"open": 1})],
        fallback={"queue": "unassigned-leads", "route_again_every": "1s"},
    )
    prefix = unique_topic_prefix
    async with running_handoff(kafka_bootstrap, database_url, prefix, one_slot) as runtime:
        await produce(kafka_bootstrap, topic(prefix, Topic.SALES_READY), [sales_ready("lk_1")])
        await wait_for_assignments(runtime, 1)
        await produce(kafka_bootstrap, topic(prefix, Topic.SALES_READY), [sales_ready("lk_2")])
        await wait_for_assignments(runtime, 2)  # queued: sdr-a holds her one open lead
        won = sales_activity("won", "sdr-a", DEFINITIONS_NOW, lead_key="lk_1")
        await produce(kafka_bootstrap, topic(prefix, Topic.SALES_ACTIVITY), [won])
        await wait_for_assignments(runtime, 3)  # the queue router gave lk_2 to sdr-a

    events = await assigned_events(kafka_bootstrap, prefix, expected=3)
    routed = sorted(
        (e.subject, e.data["attempt"], e.data["route"], e.data["rep_id"]) for e in events
    )
    assert routed == [  # leads sit on different partitions: ordered here by lead and attempt
        ("lk_1", 1, "round_robin", "sdr-a"),
        ("lk_2", 1, "fallback", "unassigned-leads"),
        ("lk_2", 2, "round_robin", "sdr-a"),
    ]
