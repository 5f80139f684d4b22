"""Replay is faithful: the live definitions reproduce production's recorded outcomes exactly (each
lead's stages, assignments and SLA outcomes), and a draft changes exactly what it should: a
higher MQL threshold loses the leads below it (and moves the round robin's turns for the
others), a rep moved to another territory loses exactly the leads they had, a shorter deadline
breaches exactly the clocks met between the two."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

from leadrelay.app.cli import main
from leadrelay.app.definitions import (
    Definitions,
    default_definitions_text,
    load_definitions,
    parse_definitions,
)
from leadrelay.app.replay import SandboxRun, load_history, load_times, replay
from leadrelay.app.replay_report import compare, sources_of, trail
from leadrelay.store.tables import inbox, outbox
from services.archive.repository import ArchivedEvent
from tests.integration.replay.conftest import Production
from tests.integration.replay.history import Lead

CHLOE_EVERYWHERE = "territories: []             # no territories"
SDR_FIRST_TOUCH = "first_touch:\n        within: 1bh"


def raised_threshold(minimum: float) -> Definitions:
    live = load_definitions()
    sales_ready = live.scorecard.sales_ready.model_copy(update={"min_engagement": minimum})
    scorecard = live.scorecard.model_copy(update={"sales_ready": sales_ready})
    return live.model_copy(update={"scorecard": scorecard})


def edited(old: str, new: str) -> Definitions:
    """The default definitions with one passage of the file changed, as an operator edits it."""
    text = default_definitions_text()
    assert text.count(old) == 1
    return parse_definitions(text.replace(old, new))


async def replayed(
    url: str, definitions: Definitions
) -> tuple[Sequence[ArchivedEvent], SandboxRun]:
    history = await load_history(url, None)
    return history, await replay(history, definitions, await load_times(url))


async def test_replaying_the_live_definitions_reproduces_production_exactly(
    production: tuple[Production, list[Lead], str],
) -> None:
    prod, leads, url = production
    recorded = await prod.recorded()
    history, run = await replayed(url, load_definitions())

    assert set(recorded.states) == {lead.key for lead in leads}
    assert run.states == recorded.states  # every stage change, cause, rule, activity and profile
    assert run.handoffs == recorded.handoffs
    assert run.assignments == recorded.assignments  # each episode and attempt, rep, team, route
    assert run.clocks == recorded.clocks  # each clock's policy and outcome
    assert run.refused == 0
    assert compare(recorded, run, sources_of(history))["changed"] == 0
    # the history exercises what it must: hand-offs, reassignments after breaches, rejections
    assert len(run.handoffs) == 18  # borderline, strong and fast; the cold never qualify
    outcomes = {c.outcome for clocks in run.clocks.values() for c in clocks}
    assert outcomes >= {"met", "breached", "ended"}
    silent = {lead.key for lead in leads if lead.fate == "silent" and lead.kind != "cold"}
    assert {k for k, made in run.assignments.items() if len(made) == 2} == silent


async def test_a_higher_mql_threshold_loses_exactly_the_leads_below_it(
    production: tuple[Production, list[Lead], str],
) -> None:
    _, leads, url = production
    history, live = await replayed(url, load_definitions())
    _, draft = await replayed(url, raised_threshold(60))

    report = compare(live, draft, sources_of(history))

    borderline = sorted(lead.key for lead in leads if lead.kind == "borderline")
    assert report["live"]["mqls"] == 18
    assert report["draft"]["mqls"] == 18 - len(borderline)
    assert report["difference"]["mqls"] == -len(borderline)
    restaged = sorted(i["lead_key"] for i in report["changed_leads"] if "stage" in i["differs_in"])
    assert restaged == borderline
    assert report["changed_by_kind"]["stage"] == len(borderline)
    # fewer hand-offs move the round robin's turns: the others may meet other reps, nothing else
    others = [i for i in report["changed_leads"] if i["lead_key"] not in borderline]
    assert all(i["differs_in"] == ["assignment"] for i in others)
    assert report["changed"] == len(borderline) + len(others)
    assert report["difference"]["mqls_by_rule"] == {"sales_ready": -6}
    assert report["difference"]["mqls_by_source"] == {"generic": -6}
    assert all(draft.assignments.get(key) is None for key in borderline)


async def test_a_rep_moved_to_another_territory_loses_exactly_their_leads(
    production: tuple[Production, list[Lead], str],
) -> None:
    _, _, url = production
    history, live = await replayed(url, load_definitions())
    _, draft = await replayed(url, edited(CHLOE_EVERYWHERE, "territories: [apac]  #"))

    report = compare(live, draft, sources_of(history))

    chloes = {k for k, made in live.assignments.items() if "sdr-chloe" in {a.rep_id for a in made}}
    assert chloes
    assert report["live"]["assignments_by_rep"]["sdr-chloe"] > 0
    assert "sdr-chloe" not in report["draft"]["assignments_by_rep"]
    assert {item["lead_key"] for item in report["changed_leads"]} == chloes
    assert report["changed"] == len(chloes)
    for key in chloes:  # the first assignment goes to the one SDR left for the Americas
        assert draft.assignments[key][0].rep_id == "sdr-ana"
        assert trail(draft.states[key]) == trail(live.states[key])  # sales activity still applies


async def test_a_shorter_deadline_breaches_exactly_the_clocks_met_between_the_two(
    production: tuple[Production, list[Lead], str],
) -> None:
    _, leads, url = production
    history, live = await replayed(url, load_definitions())
    _, draft = await replayed(url, edited(SDR_FIRST_TOUCH, "first_touch:\n        within: 30bm"))

    report = compare(live, draft, sources_of(history))

    turned = {
        (key, before.attempt)
        for key, clocks in live.clocks.items()
        for before, after in zip(clocks, draft.clocks.get(key, ()), strict=False)
        if before.kind == "first_touch" and (before.outcome, after.outcome) == ("met", "breached")
    }
    slow = {lead.key for lead in leads if lead.fate == "slow" and lead.kind != "cold"}
    assert turned == {(key, 1) for key in slow}  # touched after 45 minutes: inside 1bh, not 30bm
    silent = {lead.key for lead in leads if lead.fate == "silent" and lead.kind != "cold"}
    changed = {item["lead_key"] for item in report["changed_leads"]}
    assert slow <= changed <= slow | silent  # the silent are only breached (and handed on) sooner
    difference = report["difference"]["sla_outcomes"]
    assert difference["sdr/first_touch/breached"] == len(slow)
    assert difference["sdr/first_touch/met"] == -len(slow)


async def test_replay_reads_production_and_writes_nothing(
    production: tuple[Production, list[Lead], str],
) -> None:
    prod, _, url = production

    async def written() -> tuple[object, ...]:
        async with prod.store.engine.connect() as connection:
            return (
                (await connection.execute(select(outbox.c.id))).all(),
                await connection.scalar(select(func.count()).select_from(inbox)),
            )

    before = await written()
    await replayed(url, raised_threshold(60))
    assert await written() == before
    assert (await prod.recorded()).states == (await replayed(url, load_definitions()))[1].states


def test_the_command_prints_json_with_a_top_level_changed_count(
    production: tuple[Production, list[Lead], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, leads, url = production
    draft = tmp_path / "draft.yaml"
    draft.write_text(default_definitions_text().replace("min_engagement: 50", "min_engagement: 60"))
    monkeypatch.setenv("LEADRELAY_DATABASE_URL", url)
    monkeypatch.delenv("LEADRELAY_DEFINITIONS", raising=False)
    lead = next(lead.key for lead in leads if lead.kind == "borderline")

    assert main(["replay", "--definitions", str(draft), "--lead", lead, "--format", "json"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert report["changed_by_kind"]["stage"] == 6
    assert report["changed"] >= 6
    assert [row["to"] for row in report["lead"]["live"]["stages"]][:2] == ["lead", "mql"]
    assert "mql" not in [row["to"] for row in report["lead"]["draft"]["stages"]]
    assert report["lead"]["live"]["assignments"]
    assert not report["lead"]["draft"]["assignments"]
    assert main(["replay", "--definitions", str(draft), "--lead", lead]) == 0
    text = capsys.readouterr().out
    assert f"{report['changed']} of 24 leads change: stage 6," in text
    assert "assignments per rep" in text
    with pytest.raises(SystemExit, match="business time"):
        main(["replay", "--definitions", str(draft), "--since", "2bd"])
