"""Replay is faithful: the live definitions reproduce production's recorded outcomes exactly,
and a draft raising the MQL threshold loses exactly the leads that only reached the old one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from leadrelay.app.cli import main
from leadrelay.app.definitions import Definitions, default_definitions_text, load_definitions
from leadrelay.app.replay import load_history, run_scoring
from leadrelay.app.replay_report import compare, sources_of
from leadrelay.store.tables import outbox
from tests.integration.replay.conftest import Production
from tests.integration.replay.history import Lead


def raised_threshold(minimum: float) -> Definitions:
    live = load_definitions()
    sales_ready = live.scorecard.sales_ready.model_copy(update={"min_engagement": minimum})
    scorecard = live.scorecard.model_copy(update={"sales_ready": sales_ready})
    return live.model_copy(update={"scorecard": scorecard})


async def test_replaying_the_live_definitions_reproduces_production_exactly(
    production: tuple[Production, list[Lead], str],
) -> None:
    prod, leads, url = production
    history = await load_history(url, None)
    assert len(history) == sum(len(lead.events) for lead in leads)

    run = await run_scoring(history, load_definitions())

    recorded = await prod.states()
    assert set(recorded) == {lead.key for lead in leads}
    assert run.states == recorded  # every stage change, cause, rule, activity and profile
    assert run.handoffs == await prod.handoffs()
    assert run.refused == 0
    assert len(run.handoffs) == 18  # borderline, strong and fast; the cold never qualify


async def test_a_higher_mql_threshold_loses_exactly_the_leads_below_it(
    production: tuple[Production, list[Lead], str],
) -> None:
    _, leads, url = production
    history = await load_history(url, None)
    live = await run_scoring(history, load_definitions())
    draft = await run_scoring(history, raised_threshold(60))

    report = compare(live, draft, sources_of(history))

    borderline = sorted(lead.key for lead in leads if lead.kind == "borderline")
    assert report["live"]["mqls"] == 18
    assert report["draft"]["mqls"] == 18 - len(borderline)
    assert report["difference"]["mqls"] == -len(borderline)
    assert report["changed"] == len(borderline)
    assert sorted(item["lead_key"] for item in report["changed_leads"]) == borderline
    assert report["difference"]["mqls_by_rule"] == {"sales_ready": -6}
    assert report["difference"]["mqls_by_source"] == {"generic": -6}


async def test_replay_reads_production_and_writes_nothing(
    production: tuple[Production, list[Lead], str],
) -> None:
    prod, _, url = production
    async with prod.store.engine.connect() as connection:
        before = (await connection.execute(select(outbox.c.id))).all()
    history = await load_history(url, None)
    await run_scoring(history, raised_threshold(60))
    async with prod.store.engine.connect() as connection:
        assert (await connection.execute(select(outbox.c.id))).all() == before
    assert await prod.states() == (await run_scoring(history, load_definitions())).states


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
    assert report["changed"] == 6
    assert [row["to"] for row in report["lead"]["live"]][:2] == ["lead", "mql"]
    assert "mql" not in [row["to"] for row in report["lead"]["draft"]]
    with pytest.raises(SystemExit, match="business time"):
        main(["replay", "--definitions", str(draft), "--since", "2bd"])
