"""Every routing decision keeps what it saw, and re-deriving it from that gives it exactly."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.contracts.events import LeadAssigned
from services.handoff.domain.inputs import (
    DecisionInputs,
    RosterSnapshot,
    rederive,
    routing_version,
)
from services.handoff.tables import decision_inputs, roster_snapshots
from tests.unit.handoff.builders import make_rep
from tests.unit.handoff.support import definitions_with, handoff_harness, reassignment, sales_ready


async def test_each_decision_is_re_derived_exactly_from_the_inputs_it_kept(
    tmp_path: Path,
) -> None:
    reps = [make_rep("sdr-a", weight=3), make_rep("sdr-b", weight=2), make_rep("sdr-c")]
    definitions = definitions_with(reps)
    async with handoff_harness(tmp_path, definitions) as handoff:
        for n in range(7):
            handoff.clock.now += timedelta(minutes=5)
            await handoff.deliver(sales_ready(f"lk_{n}"))
        handoff.clock.now += timedelta(minutes=5)
        first = LeadAssigned.model_validate((await handoff.assigned())[0].data)
        await handoff.deliver(reassignment("lk_0", attempt=2, exclude=[first.rep_id]))
        published = [LeadAssigned.model_validate(e.data) for e in await handoff.assigned()]
        async with handoff.store.engine.connect() as connection:
            kept = [await kept_inputs(connection, a.assignment_id) for a in published]
            rosters = await connection.scalar(select(func.count()).select_from(roster_snapshots))

    assert len(published) == 8
    assert {a.rep_id for a in published} == {"sdr-a", "sdr-b", "sdr-c"}
    assert rosters == 1  # one roster seen by every decision, kept once
    states = []
    for assigned, record in zip(published, kept, strict=True):
        assert record is not None
        inputs, roster = record
        assert inputs.routing_version == routing_version(definitions.routing)
        again = rederive(definitions.routing, roster, inputs)
        assert (again.rep_id, again.route) == (assigned.rep_id, assigned.route)
        assert again.trace.chosen_reason == assigned.trace.chosen.reason
        assert [(s.rep_id, s.reason) for s in again.trace.skipped] == [
            (s.rep_id, s.reason) for s in assigned.trace.skipped
        ]
        states.append((inputs.state, again.new_state))
    # the rotation state each decision saw is the one the previous decision left
    for (_, left), (seen, _) in itertools.pairwise(states):
        assert seen.pools == left.pools
    assert kept[-1] is not None
    assert first.rep_id in kept[-1][0].facts.excluded_rep_ids  # the reassignment's exclusion


async def kept_inputs(
    connection: AsyncConnection, assignment_id: str
) -> tuple[DecisionInputs, RosterSnapshot] | None:
    """What hand-off stored for the decision behind ``assignment_id``, read from its tables."""
    row = (
        await connection.execute(
            select(decision_inputs.c.document, roster_snapshots.c.document.label("roster"))
            .join(roster_snapshots, roster_snapshots.c.version == decision_inputs.c.roster_version)
            .where(decision_inputs.c.assignment_id == assignment_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return DecisionInputs.model_validate(row.document), RosterSnapshot.model_validate(row.roster)
