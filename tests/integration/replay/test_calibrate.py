"""Calibration on a generated production history: the evidence adds up to what sales reported,
and the draft it writes is a definitions file replay evaluates."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadrelay.app.calibrate import calibrate, draft_text, episodes_of
from leadrelay.app.cli import main
from leadrelay.app.definitions import default_definitions_text, load_definitions, parse_definitions
from leadrelay.app.replay import load_history, load_times, replay
from tests.integration.replay.conftest import Production
from tests.integration.replay.history import Lead


async def test_outcomes_join_the_hand_offs_and_the_draft_replays(
    production: tuple[Production, list[Lead], str],
) -> None:
    prod, leads, url = production
    history = await load_history(url, None)
    times = await load_times(url)
    live = load_definitions()

    result = await calibrate(history, live, sql_value=3.0, times=times)

    reported = {lead.key for lead in leads if lead.kind != "cold"}  # every rep reports
    assert len(result.episodes) == 18
    assert reported
    assert {e.lead_key for e in result.episodes if e.outcome.known} == reported
    rejected = [e for e in result.episodes if e.outcome.rejected_reason is not None]
    assert {e.outcome.rejected_reason for e in rejected} <= {"no budget"}
    run = await replay(history, live, times)
    assert [(e.lead_key, e.episode) for e in episodes_of(run)] == [
        (h.lead_key, h.episode) for h in (await prod.recorded()).handoffs
    ]

    draft = parse_definitions(draft_text(default_definitions_text(), result, None))
    assert draft.scorecard.version.endswith("-calibrated")
    assert draft.scorecard.sales_ready.min_engagement == result.threshold.threshold
    assert (await replay(history, draft, times)).refused == 0


def test_the_command_writes_a_commented_draft(
    production: tuple[Production, list[Lead], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, url = production
    monkeypatch.setenv("LEADRELAY_DATABASE_URL", url)
    monkeypatch.delenv("LEADRELAY_DEFINITIONS", raising=False)
    draft = tmp_path / "draft.yaml"

    assert main(["calibrate", "--since", "100000d", "--output", str(draft)]) == 0

    out = capsys.readouterr().out
    assert "hand-offs: 18" in out
    assert f"draft written to {draft}" in out
    text = draft.read_text()
    assert "- id: size_target  # " in text
    assert main(["replay", "--definitions", str(draft), "--format", "json"]) == 0
