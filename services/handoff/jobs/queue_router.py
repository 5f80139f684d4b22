"""The queue router: queued leads go to a rep as soon as one can take them.

Every ``routing.fallback.route_again_every`` it routes the fallback queues' leads again, oldest
first, in one transaction per pass; a lead nobody can take yet stays queued (no new row, no
event). This covers every way a rep becomes eligible (capacity freed, a shift starting, back
from out-of-office, a rep added through the API) without an event for each.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from leadrelay.runtime.periodic import repeat
from leadrelay.store.unit_of_work import Store
from services.handoff.handlers import HandoffHandlers


@dataclass(frozen=True)
class QueueRouter:
    store: Store
    handlers: HandoffHandlers
    every_seconds: float

    async def run(self, stop: asyncio.Event) -> None:
        await repeat(stop, self.route_once, every=self.every_seconds, name="queue router")

    async def route_once(self) -> int:
        """One pass over the queues; how many leads went to a rep."""
        async with self.store.transaction() as tx:
            return await self.handlers.route_queued(tx)
