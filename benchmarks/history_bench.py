"""Scoring's cost per event as a lead's history grows: 10, 100, 1,000 and 10,000 prior events.

Run from the repository root::

    python -m benchmarks.history_bench                  # domain + JSON, and the handler on SQLite
    python -m benchmarks.history_bench --postgres-url postgresql+asyncpg://...   # and PostgreSQL

For each history length a lead is given that many prior web activities (the scoring bench's
mix of actions, one an hour), then more events are applied to it one at a time and timed:

- ``domain``: the stored state read from JSON, the activity applied and scored, the state written
  back to JSON (with the store's own JSON column codec, orjson): what the handler does per event
  besides SQL, Kafka and the outbox.
- ``handler``: the scoring handler in its own transaction on the database (load the row locked,
  apply, save, queue the score), as the consume loop calls it for a batch of one.
- ``full list``: for comparison in the same run, what keeping every activity costs: the whole
  list read from JSON, scored by ``evaluate_engagement`` (the definition) and written back.

Costs are CPU seconds of this process per event (the handler's include the database driver's
thread; PostgreSQL's own work is not in them), the fastest of ``--rounds`` batches of ten, the
lengths taking turns: on a shared machine wall time swings with whatever else runs. The ratio
column is each history length's cost against the 10-event one (goal: within 1.5x at 10,000).
A figure, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry

from benchmarks.scoring_bench import ACTIONS
from leadrelay.app.definitions import load_definitions
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.contracts.topics import EventType
from leadrelay.store.engine import (
    create_engine_for,
    encoded_json,
    json_column_text,
    json_column_value,
)
from leadrelay.store.unit_of_work import Store
from services.scoring.domain import (
    Activity,
    LeadState,
    Profile,
    Scorecard,
    Stage,
    apply_activity,
    evaluate_engagement,
    load_state,
    state_json,
)
from services.scoring.handlers import OutputTopics, ScoringHandlers
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import lock_rows, write_rows

HISTORIES = (10, 100, 1_000, 10_000)
BATCH = 10
"""Events per timed batch (CPU time has a coarse clock on some systems)."""
PROFILE = Profile(email="bench@company.example", company_size=120, industry="software")
TOPICS = OutputTopics(scores="scores", sales_ready="ready", recycled="recycled", lifecycle="life")


@dataclass(frozen=True)
class Row:
    history: int
    domain: float
    full_list: float
    handlers: dict[str, float]


def activity(n: int, start: datetime) -> Activity:
    """The n-th activity of a lead whose history started at ``start``: one an hour."""
    return Activity(
        f"ev-{n:06}",
        ACTIONS[n % len(ACTIONS)],
        start + timedelta(hours=n),
        url=f"https://www.example.com/p/{n % 50}",
    )


def history(scorecard: Scorecard, length: int, start: datetime) -> LeadState:
    """A known lead after ``length`` activities, each applied when it occurred."""
    state = LeadState(f"lk_bench_{length}", stage=Stage.LEAD, profile=PROFILE)
    for n in range(length):
        done = activity(n, start)
        state = apply_activity(scorecard, state, done, done.occurred_at).state
    return state


Step = Callable[[int], Awaitable[None]]
"""Apply the lead's n-th activity."""
Reset = Callable[[], Awaitable[None]]
"""Put the lead back to its seeded history (before a round, untimed)."""


async def interleaved(steps: dict[int, tuple[Reset, Step]], rounds: int) -> dict[int, float]:
    """CPU seconds per event for each history length: in each round every length, reset to its
    seeded history, runs a batch of ``BATCH`` events, and each length keeps its fastest batch,
    so a burst of load from elsewhere on the machine hits every length alike and is left out."""
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for length, (reset, step) in steps.items():
            await reset()
            started = time.process_time()
            for n in range(length, length + BATCH):
                await step(n)
            best[length] = min(best[length], (time.process_time() - started) / BATCH)
    return best


def domain_step(scorecard: Scorecard, state: LeadState, start: datetime) -> tuple[Reset, Step]:
    """Read the stored state from JSON, apply and score the n-th activity, write it back."""
    seeded = json_column_text(encoded_json(state_json(state)))
    stored = seeded

    async def reset() -> None:
        nonlocal stored
        stored = seeded

    async def step(n: int) -> None:
        nonlocal stored
        done = activity(n, start)
        decided = apply_activity(
            scorecard, load_state(json_column_value(stored)), done, done.occurred_at
        )
        stored = json_column_text(encoded_json(state_json(decided.state)))

    return reset, step


def full_list_step(scorecard: Scorecard, length: int, start: datetime) -> tuple[Reset, Step]:
    """Every activity kept in the state, read, scored from scratch and written back."""
    activities = [activity(n, start) for n in range(length)]
    seeded = json_column_text(
        encoded_json(state_json(LeadState("lk_full", Stage.LEAD, PROFILE, tuple(activities))))
    )
    stored = seeded

    async def reset() -> None:
        nonlocal stored
        stored = seeded

    async def step(n: int) -> None:
        nonlocal stored
        done = activity(n, start)
        state = load_state(json_column_value(stored))
        kept = (*state.activities, done)
        evaluate_engagement(scorecard, kept, done.occurred_at)
        stored = json_column_text(
            encoded_json(state_json(LeadState(state.lead_key, state.stage, state.profile, kept)))
        )

    return reset, step


def handler_step(
    store: Store, clock: _Clock, handlers: ScoringHandlers, state: LeadState, start: datetime
) -> tuple[Reset, Step]:
    """The web-activity handler, one event per transaction, on a lead seeded with ``state``."""

    async def reset() -> None:
        async with store.transaction() as tx:
            rows = await lock_rows(tx.connection, (), lambda _: ({state.lead_key}, set()), tx.now())
            rows.save_lead(state, None)
            await write_rows(tx.connection, rows, tx.now())

    async def step(n: int) -> None:
        done = activity(n, start)
        clock.now = done.occurred_at
        async with store.transaction() as tx:
            await handlers.apply([_web_activity(state.lead_key, done)], tx)

    return reset, step


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _web_activity(lead_key: str, done: Activity) -> CloudEvent:
    data = {"lead_key": lead_key, "action": done.action, "source": "simulator", "url": done.url,
            "occurred_at": done.occurred_at}  # fmt: skip
    event = new_event(EventType.WEB_ACTIVITY.value, "benchmark", data, id=done.event_id,
                      subject=lead_key, time=done.occurred_at)  # fmt: skip
    return CloudEvent.from_bytes(event.to_bytes())


async def main(args: argparse.Namespace) -> list[Row]:
    scorecard = load_definitions().scorecard
    start = datetime(2026, 1, 1, tzinfo=UTC)
    states = {length: history(scorecard, length, start) for length in HISTORIES}
    domain = await interleaved(
        {n: domain_step(scorecard, state, start) for n, state in states.items()}, args.rounds
    )
    full = await interleaved(
        {n: full_list_step(scorecard, n, start) for n in HISTORIES}, max(args.rounds // 4, 2)
    )
    handlers: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory() as directory:
        databases = {"SQLite": f"sqlite+aiosqlite:///{Path(directory) / 'history.db'}"}
        if args.postgres_url:
            databases["PostgreSQL"] = args.postgres_url
        for name, url in databases.items():
            handlers[name] = await _on_database(url, scorecard, states, start, args.rounds)
    return [
        Row(n, domain[n], full[n], {name: costs[n] for name, costs in handlers.items()})
        for n in HISTORIES
    ]


async def _on_database(
    url: str, scorecard: Scorecard, states: dict[int, LeadState], start: datetime, rounds: int
) -> dict[int, float]:
    await upgrade_async(url)
    clock = _Clock(start)
    engine = create_engine_for(url)
    store = Store(engine, clock=clock)
    handlers = ScoringHandlers(scorecard, TOPICS, ScoringMetrics.create(CollectorRegistry()))
    run = uuid.uuid4().hex[:6]
    try:
        steps = {
            n: handler_step(
                store, clock, handlers, replace(s, lead_key=f"{s.lead_key}_{run}"), start
            )
            for n, s in states.items()
        }
        return await interleaved(steps, rounds)
    finally:
        await engine.dispose()


def report(rows: list[Row]) -> None:
    base = rows[0]
    names = list(base.handlers)
    header = f"{'prior events':>12}{'domain us':>11}{'ratio':>7}{'full list us':>14}{'ratio':>8}"
    for name in names:
        header += f"{'handler ' + name + ' us':>24}{'ratio':>7}"
    print(header)
    for row in rows:
        line = (f"{row.history:>12,}{row.domain * 1e6:>11.0f}{row.domain / base.domain:>6.2f}x"
                f"{row.full_list * 1e6:>14.0f}{row.full_list / base.full_list:>7.1f}x")  # fmt: skip
        for name in names:
            cost, first = row.handlers[name], base.handlers[name]
            line += f"{cost * 1e6:>24.0f}{cost / first:>6.2f}x"
        print(line)
    last = rows[-1]
    handlers = "".join(
        f", handler on {n} {last.handlers[n] / base.handlers[n]:.2f}x" for n in names
    )
    full = last.full_list / base.full_list
    print(f"10,000 vs 10: domain {last.domain / base.domain:.2f}x{handlers} (goal: within 1.5x);"
          f" keeping the full list: {full:.0f}x")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.history_bench",
        description=__doc__.split("\n")[0] if __doc__ else None,
    )
    parser.add_argument("--postgres-url", help="also time the handler on this PostgreSQL")
    parser.add_argument("--rounds", type=int, default=20, help="batches of ten per length")
    return parser.parse_args()


if __name__ == "__main__":
    report(asyncio.run(main(parse_args())))
