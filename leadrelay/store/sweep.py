"""Deleting what is no longer needed without holding up the services that share the database.

A retention sweep may find a large backlog (the first run after an upgrade, or after downtime).
Deleting it in one transaction would hold locks, and on SQLite the one writer slot, for as long
as that takes; small transactions let the consume loop's own transactions in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from leadrelay.store.unit_of_work import Store, Transaction


async def delete_in_batches(
    store: Store,
    delete_batch: Callable[[Transaction], Awaitable[int]],
    *,
    batch_size: int,
    on_deleted: Callable[[int], None],
    stop: asyncio.Event | None = None,
) -> int:
    """Run ``delete_batch`` (at most ``batch_size`` rows) until a batch falls short; how many.

    ``on_deleted`` hears each committed batch's count, so progress shows in metrics at once.
    Setting ``stop`` ends the sweep after the batch in progress: a first sweep over a large
    backlog must not outlast the shutdown grace period (the rest waits for the next sweep).
    """
    total = 0
    while stop is None or not stop.is_set():
        async with store.transaction() as tx:
            deleted = await delete_batch(tx)
        on_deleted(deleted)
        total += deleted
        if deleted < batch_size:
            break
    return total
