"""Load bookkeeping: which outcomes free a rep, and how a lead moving between reps counts."""

from __future__ import annotations

import pytest

from services.handoff.domain import RepLoad
from services.handoff.domain.loads import loads_after, releases_the_lead

from ..builders import NOW, make_rep


@pytest.mark.parametrize(
    ("outcome", "frees"),
    [("won", True), ("lost", True), ("rejected", True), ("disqualified", True),
     ("contacted", False), ("accepted", False), ("qualified", False)],
)  # fmt: skip
def test_only_final_outcomes_free_the_rep(outcome: str, frees: bool) -> None:
    assert releases_the_lead(outcome) is frees


def test_a_reassigned_lead_leaves_the_old_rep_and_counts_for_the_new() -> None:
    old, new = make_rep("old"), make_rep("new")
    loads = {"old": RepLoad(rep_id="old", day=NOW.date(), assigned_on_day=1, open_leads=1)}
    changed = {load.rep_id: load for load in loads_after("old", new, loads, NOW)}
    assert changed["old"].open_leads == 0
    assert (changed["new"].open_leads, changed["new"].assigned_on_day) == (1, 1)
    assert old.id not in {load.rep_id for load in loads_after(None, new, loads, NOW)}


def test_open_leads_never_go_below_zero() -> None:
    loads = {"old": RepLoad(rep_id="old", day=NOW.date(), assigned_on_day=0, open_leads=0)}
    (load,) = loads_after("old", None, loads, NOW)
    assert load.open_leads == 0
