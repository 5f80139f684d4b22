"""What the SLA monitor needs from the roster: a rep's business calendar and their manager.

The roster lives in hand-off's tables (seeded from the definitions file, then edited through
``PUT /v1/reps/{id}``); the definitions file's roster is the fallback for a rep hand-off has not
stored (yet). The calendar choice is hand-off's shared ``sla_calendar``, so the deadlines the
assignment event announces are exactly the ones this monitor enforces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy.ext.asyncio import AsyncConnection

from services.handoff.domain.config import Rep
from services.handoff.domain.sla_calendar import sla_calendar
from services.handoff.roster_store import load_rep
from services.sla_monitor.domain import BusinessCalendar, SlaConfig, SlaPolicy

MANAGER = "manager"
"""The escalation target that means "this rep's manager"."""


@dataclass(frozen=True)
class RosterReader:
    """Reads reps as the roster holds them now, with the definitions file as the fallback."""

    seed: Mapping[str, Rep]

    @classmethod
    def of(cls, seed: Iterable[Rep]) -> RosterReader:
        return cls(MappingProxyType({rep.id: rep for rep in seed}))

    async def rep(self, connection: AsyncConnection, rep_id: str) -> Rep | None:
        stored = await load_rep(connection, rep_id)
        return stored if stored is not None else self.seed.get(rep_id)

    async def calendar(
        self, connection: AsyncConnection, rep_id: str, policy: SlaPolicy, sla: SlaConfig
    ) -> BusinessCalendar:
        """The rep's own calendar; the policy's for an unknown rep or one without work hours."""
        return sla_calendar(await self.rep(connection, rep_id), policy, sla)


def escalation_target(to: str, rep: Rep | None, team: str | None) -> str:
    """Who an escalation goes to: ``manager`` becomes the rep's manager from the roster.

    Without one, the rep's team (whose lead reads the team's escalations), else ``manager``.
    """
    if to != MANAGER:
        return to
    if rep is not None and rep.manager:
        return rep.manager
    return team or MANAGER
