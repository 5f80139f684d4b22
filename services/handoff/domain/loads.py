"""Load bookkeeping: how an assignment or a sales outcome changes what each rep holds.

Pure: the handlers load the reps' loads under the routing-state lock, apply these rules and save
what changed, so the read-modify-write is safe with several instances.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from services.handoff.domain.config import Rep
from services.handoff.domain.decision import RepLoad, record_assignment

RELEASING_OUTCOMES: Final = frozenset({"rejected", "disqualified", "won", "lost"})
"""Sales outcomes after which the rep no longer works the lead (it stops counting as open)."""


def releases_the_lead(outcome: str) -> bool:
    """Whether a rep reporting ``outcome`` is done with the lead, freeing open capacity."""
    return outcome in RELEASING_OUTCOMES


def loads_after(
    previous_rep_id: str | None, rep: Rep | None, loads: Mapping[str, RepLoad], now: datetime
) -> list[RepLoad]:
    """The loads that change when a lead moves from ``previous_rep_id`` (who held it until now,
    if anyone) to ``rep``: the former gives up one open lead, the new rep takes it (daily count
    and open leads)."""
    changed: dict[str, RepLoad] = {}
    if previous_rep_id is not None and previous_rep_id in loads:
        load = loads[previous_rep_id]
        changed[previous_rep_id] = load.model_copy(
            update={"open_leads": max(load.open_leads - 1, 0)}
        )
    if rep is not None:
        changed[rep.id] = record_assignment(changed.get(rep.id) or loads.get(rep.id), rep, now)
    return list(changed.values())
