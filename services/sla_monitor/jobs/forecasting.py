"""The forecaster: finds running clocks that will not be met and acts before they breach.

Every round reads up to a batch of running sales clocks not yet found at risk, the soonest to
fire first, and forecasts each (``domain/at_risk.py``): the rep's calendar and absences come from
the monitor's copy of the roster (``sla_reps``: hand-off's ``rep_updated``, else the snapshot of
the rep's latest assignment), their load and pace from their clocks. The forecast reads without
locks; a clock found at risk is then acted on in a transaction of its own that holds the lead
(as every handler does) and re-reads its clocks: if the clock is still running and unflagged, the
flag is kept (``sla_forecasts``), ``sla_at_risk`` is queued and, where the policy says
``at_risk: reassign``, the lead is handed on (``lead_reassignment_requested`` with reason
``sla_at_risk``, the assignment's clocks stopped), all in that one transaction. So a clock is
announced once, even with several monitor instances, and a crash announces it on the next round.

A clock forecast to make it is looked at again next round (the rep's shift end comes nearer).
``now`` is the store's clock, as for the firing loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from leadrelay.calendar import BusinessCalendar
from leadrelay.contracts.events import RepUpdated
from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.periodic import repeat
from leadrelay.store.unit_of_work import Store, Transaction
from services.sla_monitor import repository
from services.sla_monitor.domain import DEFAULT, SlaClock, SlaConfig, SlaPolicy, to_utc
from services.sla_monitor.domain.at_risk import (
    PACE_WINDOW,
    AtRisk,
    assess,
    hand_on_at_risk,
    outlook,
)
from services.sla_monitor.domain.rep import assignment_calendar
from services.sla_monitor.messages import ActionPublisher, at_risk_payload
from services.sla_monitor.metrics import SlaMetrics
from services.sla_monitor.repository import StoredClock

log = logging.getLogger(__name__)

FORECAST_BATCH = 1000


@dataclass(frozen=True)
class ForecastReport:
    """What one round did: clocks forecast, found at risk (and announced), leads handed on."""

    forecast: int = 0
    at_risk: int = 0
    reassigned: int = 0


@dataclass(frozen=True)
class AtRiskForecaster:
    """Forecasts running clocks every ``every_seconds`` and acts on those at risk."""

    store: Store
    sla: SlaConfig
    publisher: ActionPublisher
    metrics: SlaMetrics
    every_seconds: float
    batch: int = FORECAST_BATCH
    backoff: BackoffPolicy | None = field(default=None)

    async def run(self, stop: asyncio.Event) -> None:
        await repeat(
            stop, self.forecast, every=self.every_seconds, name="SLA forecast", backoff=self.backoff
        )

    async def forecast(self) -> ForecastReport:
        """One round (see module)."""
        now = to_utc(self.store.clock())
        async with self.store.read() as connection:
            candidates = await repository.forecast_candidates(connection, self.batch)
            reps = sorted({s.clock.rep_id for s in candidates})
            rep_clocks = await repository.clocks_of_reps(connection, reps, now - PACE_WINDOW)
            kept = {rep_id: await repository.load_rep(connection, rep_id) for rep_id in reps}
        risks = [
            risk
            for stored in candidates
            if (risk := self._assess(stored, kept[stored.clock.rep_id], rep_clocks, now))
        ]
        acted = [risk for risk in risks if await self._act(risk)]
        reassigned = sum(1 for risk in acted if risk.reassign)
        if acted:
            log.info("%d SLA clock(s) at risk, %d lead(s) handed on", len(acted), reassigned)
        return ForecastReport(len(candidates), len(acted), reassigned)

    def _assess(
        self,
        stored: StoredClock,
        rep: RepUpdated | None,
        rep_clocks: dict[str, list[SlaClock]],
        now: datetime,
    ) -> AtRisk | None:
        clock = stored.clock
        policy = self._policy(clock.policy_id)
        calendar = self._calendar(rep, policy)
        absences = [(a.start, a.end) for a in rep.out_of_office] if rep is not None else []
        view = outlook(clock, calendar, absences, rep_clocks.get(clock.rep_id, []), now)
        return assess(clock, policy, view, now)

    def _policy(self, policy_id: str) -> SlaPolicy:
        policy = self.sla.policy(policy_id) or self.sla.policy(DEFAULT)
        assert policy is not None  # the configuration always has a default policy
        return policy

    def _calendar(self, rep: RepUpdated | None, policy: SlaPolicy) -> BusinessCalendar | None:
        """The rep's hours (with the policy calendar's holidays); None: unknown, taken as in."""
        return assignment_calendar(rep.rep, policy, self.sla) if rep is not None else None

    async def _act(self, risk: AtRisk) -> bool:
        """Announce ``risk`` (and hand the lead on) unless the clock moved on or was announced."""
        async with self.store.transaction() as tx:
            await repository.lock_lead(tx.connection, risk.clock.lead_key)
            loaded = await repository.load_lead(tx.connection, risk.clock.lead_key)
            current = next((s for s in loaded if s.clock.clock_id == risk.clock.clock_id), None)
            if current is None or current.clock != risk.clock:
                return False  # it changed since the forecast: the next round looks again
            payload = at_risk_payload(risk)
            if not await repository.record_at_risk(tx.connection, risk.clock, payload):
                return False
            await self.publisher.publish_at_risk(tx, payload)
            if risk.reassign:
                await self._hand_on(tx, loaded, risk)
            self._count(tx, risk, current.team)
        return True

    async def _hand_on(self, tx: Transaction, loaded: Sequence[StoredClock], risk: AtRisk) -> None:
        """Stop the assignment's clocks and ask hand-off for another rep."""
        clocks, request = hand_on_at_risk([s.clock for s in loaded], risk)
        after = [s.replace(c) for s, c in zip(loaded, clocks, strict=True)]
        await repository.save_changed(tx.connection, loaded, after)
        team = next(s.team for s in loaded if s.clock.clock_id == risk.clock.clock_id)
        await self.publisher.publish(tx, [(request, team)])

    def _count(self, tx: Transaction, risk: AtRisk, team: str | None) -> None:
        labels = (risk.clock.policy_id, team or "", "reassigned" if risk.reassign else "announced")
        tx.after_commit(lambda: self.metrics.at_risk.labels(*labels).inc())
