"""``leadrelay calibrate``: what sales made of each hand-off, against the score it had then.

The archived history is replayed under the live definitions (:mod:`leadrelay.app.replay`, whose
test shows it reproduces production), which gives each hand-off's score lines exactly as scoring
published them and each lead's later stages (accepted, rejected with the rep's reason, SQL, won,
lost). The statistics are scoring's domain (``services.scoring.domain.calibration``); this module
joins the two and writes a draft definitions file with the proposals, commented with the
evidence, for ``leadrelay replay`` to evaluate before anyone adopts it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from leadrelay.app.definitions import Definitions, parse_definitions
from leadrelay.app.replay import ProductionTimes, SandboxRun, replay
from services.archive.repository import ArchivedEvent
from services.scoring.domain.calibration import (
    Episode,
    Outcome,
    RuleLift,
    ThresholdChoice,
    best_threshold,
    outcomes_by_episode,
    proposed_points,
    rule_lifts,
)


@dataclass(frozen=True)
class Calibration:
    """The evidence and what it proposes."""

    episodes: Sequence[Episode]
    lifts: Sequence[RuleLift]
    threshold: ThresholdChoice
    points: Mapping[str, float]
    """Rule -> its points in the live scorecard."""

    @property
    def reported(self) -> int:
        return sum(e.outcome.known for e in self.episodes)

    def proposals(self) -> dict[str, float]:
        """Rule -> proposed points, for the rules whose points should change."""
        proposed = {lift.rule: proposed_points(self.points[lift.rule], lift)
                    for lift in self.lifts if lift.rule in self.points}  # fmt: skip
        return {rule: p for rule, p in proposed.items() if p != self.points[rule]}


async def calibrate(
    history: Sequence[ArchivedEvent],
    live: Definitions,
    sql_value: float,
    times: ProductionTimes | None = None,
) -> Calibration:
    """Replay ``history`` under ``live`` (at production's ``times``) and weigh every rule by what
    sales made of the leads."""
    run = await replay(history, live, times)
    episodes = episodes_of(run)
    scorecard = live.scorecard
    points = {r.id: r.points for r in scorecard.fit.rules}
    points |= {r.id: r.points for r in scorecard.engagement.rules}
    return Calibration(
        episodes,
        rule_lifts(episodes),
        best_threshold(episodes, scorecard.sales_ready.min_engagement, sql_value),
        points,
    )


def episodes_of(run: SandboxRun) -> list[Episode]:
    """Each hand-off with its score lines and what sales made of that episode."""
    outcomes = {key: outcomes_by_episode(state) for key, state in run.states.items()}
    return [
        Episode(
            lead_key=h.lead_key,
            episode=h.episode,
            points={line.rule: line.points for line in h.breakdown if line.points},
            engagement=h.engagement_score,
            qualified_by=h.qualified_by,
            outcome=outcomes.get(h.lead_key, {}).get(h.episode, Outcome()),
        )
        for h in run.handoffs
    ]


def report(calibration: Calibration) -> dict[str, Any]:
    """The figures, as ``--format json`` prints them."""
    t = calibration.threshold
    return {
        "hand_offs": len(calibration.episodes),
        "reported_on": calibration.reported,
        "sql": sum(e.outcome.sql for e in calibration.episodes),
        "won": sum(e.outcome.won for e in calibration.episodes),
        "lost": sum(e.outcome.lost for e in calibration.episodes),
        "rejected": sum(e.outcome.rejected_reason is not None for e in calibration.episodes),
        "rules": [_lift_json(lift) for lift in calibration.lifts],
        "threshold": {
            "objective": f"{t.sql_value:g} x SQLs - unproductive hand-offs",
            "current": t.current, "proposed": t.threshold,
            "kept": t.kept, "sql": t.sql, "objective_value": t.objective,
            "sql_rate_95": [t.sql_rate.low, t.sql_rate.high],
            "current_kept": t.current_kept, "current_sql": t.current_sql,
        },
        "proposed_points": calibration.proposals(),
    }  # fmt: skip


def _lift_json(lift: RuleLift) -> dict[str, Any]:
    return {
        "rule": lift.rule,
        "verdict": lift.verdict,
        "with": {"n": lift.with_n, "sql": lift.with_sql,
                 "sql_rate_95": [lift.rate_with.low, lift.rate_with.high]},
        "without": {"n": lift.without_n, "sql": lift.without_sql,
                    "sql_rate_95": [lift.rate_without.low, lift.rate_without.high]},
        "lift": lift.difference,
        "lift_95": [lift.difference_interval.low, lift.difference_interval.high],
        "rejection_reasons": dict(lift.rejection_reasons),
    }  # fmt: skip


def render_text(calibration: Calibration) -> str:
    """The figures for people: one line of evidence per rule, then the threshold."""
    data = report(calibration)
    lines = [
        f"hand-offs: {data['hand_offs']}, reported on by sales: {data['reported_on']} "
        f"(SQL {data['sql']}, won {data['won']}, lost {data['lost']}, "
        f"rejected {data['rejected']})",
        "",
        "rule lift on the SQL rate (with vs without the rule, 95% intervals):",
    ]
    lines.extend(f"  {lift.rule:<20} {evidence(lift)}" for lift in calibration.lifts)
    lines += ["", threshold_evidence(calibration.threshold)]
    for rule, points in calibration.proposals().items():
        lines.append(f"propose {rule}: {calibration.points[rule]:g} -> {points:g} points")
    return "\n".join(lines)


def evidence(lift: RuleLift) -> str:
    """One rule's evidence in a line a person can check by hand."""
    ci = lift.difference_interval
    reasons = ", ".join(f"{r} {n}" for r, n in lift.rejection_reasons.items()) or "none"
    return (
        f"{lift.verdict}: {lift.difference:+.2f} [{ci.low:+.2f}, {ci.high:+.2f}]; "
        f"SQL {lift.with_sql}/{lift.with_n} with, {lift.without_sql}/{lift.without_n} without;"
        f" rejected: {reasons}"
    )


def threshold_evidence(t: ThresholdChoice) -> str:
    """The threshold choice and why, in one line."""
    return (
        f"min_engagement {t.current:g} -> {t.threshold:g} maximises {t.sql_value:g} x SQLs - "
        f"unproductive hand-offs: keeps {t.kept} of {t.current_kept} threshold hand-offs "
        f"reported on, {t.sql} of {t.current_sql} SQLs (SQL rate 95% "
        f"[{t.sql_rate.low:.2f}, {t.sql_rate.high:.2f}]); only raising can be judged: leads "
        "below today's threshold were never handed off"
    )


def draft_text(live_text: str, calibration: Calibration, since: datetime | None) -> str:
    """The live definitions with the proposals applied, each rule commented with its evidence.

    The result is checked like any definitions file, so ``replay`` can evaluate it as is.
    """
    document = yaml.safe_load(live_text)
    scorecard = document["scorecard"]
    proposals = calibration.proposals()
    for axis in ("fit", "engagement"):
        for rule in scorecard[axis]["rules"]:
            rule["points"] = proposals.get(rule["id"], rule["points"])
    scorecard["sales_ready"]["min_engagement"] = calibration.threshold.threshold
    scorecard["version"] = f"{scorecard['version']}-calibrated"[:100]
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    text = _header(calibration, since) + _annotated(body, calibration)
    parse_definitions(text, source="calibrated draft")
    return text


def _header(calibration: Calibration, since: datetime | None) -> str:
    window = f"received since {since:%Y-%m-%d}" if since else "in the whole archive"
    lines = [
        "Draft definitions written by `leadrelay calibrate`: evaluate with",
        "`leadrelay replay --definitions THIS_FILE` before adopting it.",
        f"Evidence: {len(calibration.episodes)} hand-offs {window}, "
        f"{calibration.reported} reported on by sales.",
        "Each rule's comment: lift on the SQL rate with vs without it, 95% Newcombe interval;",
        "points change only where the interval excludes zero (x rate ratio, halved at most,",
        "doubled at most). The comments of the live file are not carried over.",
        threshold_evidence(calibration.threshold),
    ]
    return "".join(f"# {line}\n" for line in lines) + "\n"


def _annotated(body: str, calibration: Calibration) -> str:
    lifts = {lift.rule: lift for lift in calibration.lifts}
    out = []
    for line in body.splitlines():
        rule = line.strip().removeprefix("- id: ") if line.strip().startswith("- id: ") else None
        if rule in lifts:
            line = f"{line}  # {evidence(lifts[rule])}"
        elif rule is not None and rule in calibration.points:
            line = f"{line}  # never scored in a reported hand-off: no evidence"
        out.append(line)
    return "\n".join(out) + "\n"
