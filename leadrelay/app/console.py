"""The console wired on the API process: reporting's pages on the lead view, hand-off's roster
and the replay.

The console belongs to reporting but shows what other services know (the lead view), switches
a rep's availability (hand-off's roster) and replays history through a pasted draft (the
composition root's ``leadrelay replay``); the composition root is the one place allowed to
connect them, through the console's ports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter

from leadrelay.app.definitions import Definitions, parse_definitions
from leadrelay.app.lead_view import read_lead
from leadrelay.app.registry import business_time, marketing_sla, roster_weights
from leadrelay.app.replay import evaluate
from leadrelay.runtime.service import Runtime
from leadrelay.store.read_model import LeadViewPart
from leadrelay.store.unit_of_work import Store
from services.handoff.domain import Rep, RosterConfig
from services.handoff.repository import load_roster, put_rep
from services.reporting.console.pages import RepCard
from services.reporting.console.routes import Console
from services.reporting.read_model import Reports

log = logging.getLogger(__name__)


def console_router(
    runtime: Runtime, definitions: Definitions, parts: Sequence[LeadViewPart]
) -> APIRouter:
    """``/console/`` on the runtime's store, reading leads through ``parts``."""

    async def lead(lead_key: str) -> dict[str, Any] | None:
        return await read_lead(runtime.store, parts, lead_key)

    reports = Reports(
        runtime.store,
        business_time(definitions),
        roster_weights(definitions),
        marketing_sla(definitions),
    )
    roster = HandoffRoster(runtime.store, definitions.roster)
    replays = DraftReplay(runtime.settings.database_url, runtime.settings.topic_prefix, definitions)
    return Console(reports, lead, roster, replays).router()


@dataclass(frozen=True)
class DraftReplay:
    """The console's replay port: what ``leadrelay replay --format json`` prints for a draft,
    against the definitions this process runs with."""

    database_url: str
    topic_prefix: str
    live: Definitions

    one_at_a_time: asyncio.Lock = field(default_factory=asyncio.Lock, compare=False)
    """Replays queue: each runs the whole history twice."""

    async def replay(self, draft: str) -> dict[str, Any]:
        """Raises ``DefinitionsError`` (a ``ValueError``) naming each problem of the draft.

        The sandbox runs on a thread and event loop of its own: its services' pure domains are
        CPU work that would otherwise hold up this process's API (ingest among it) meanwhile.
        """
        definitions = parse_definitions(draft, source="the draft")
        log.info("console: replaying the history through a draft definitions file")
        async with self.one_at_a_time:
            return await asyncio.to_thread(lambda: asyncio.run(self._evaluate(definitions)))

    async def _evaluate(self, draft: Definitions) -> dict[str, Any]:
        return await evaluate(self.database_url, self.live, draft, topic_prefix=self.topic_prefix)


@dataclass(frozen=True)
class HandoffRoster:
    """The console's roster port on hand-off's roster (seeded first, as its own API does)."""

    store: Store
    seed: RosterConfig

    async def reps(self) -> list[RepCard]:
        async with self.store.transaction() as tx:
            roster = await load_roster(tx.connection, self.seed, tx.now())
        return [_card(rep) for rep in roster.reps]

    async def set_active(self, rep_id: str, active: bool) -> bool:
        async with self.store.transaction() as tx:
            roster = await load_roster(tx.connection, self.seed, tx.now())
            rep = next((r for r in roster.reps if r.id == rep_id), None)
            if rep is None:
                return False
            await put_rep(tx.connection, rep.model_copy(update={"active": active}), tx.now())
        log.info("console: rep %s marked %s", rep_id, "active" if active else "away")
        return True


def _card(rep: Rep) -> RepCard:
    capacity = rep.capacity
    return RepCard(rep.id, rep.name, rep.role, rep.team, rep.weight, capacity.daily,
                   capacity.open, rep.active)  # fmt: skip
