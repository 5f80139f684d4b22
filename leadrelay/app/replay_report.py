"""What two replay runs differ in, as marketing ops and sales ops read it (pure: no I/O).

Both teams read the same figures: MQLs per ISO week, per qualifying rule and per source (the
``source`` of the event that made the lead an MQL: ``hubspot``, ``marketo``, ``generic``), the
final stages, and the leads whose stage history differs between the live and the draft run.
``changed`` counts those leads; it is the one number a tool checks first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadrelay.app.replay import SandboxRun
from services.archive.repository import ArchivedEvent
from services.scoring.domain import LeadState, Stage

NOT_REPLAYED = (
    "assignments (hand-off keeps each decision's roster, loads and rotation; replay does not"
    " run hand-off yet)",
    "SLA outcomes (their clocks start from assignments)",
)
"""Said in every report, so nobody reads a missing figure as 'no difference'."""
BREAKDOWNS = (
    ("mqls_by_week", "MQLs per week"),
    ("mqls_by_rule", "MQLs per rule"),
    ("mqls_by_source", "MQLs per source"),
    ("final_stages", "final stage"),
)
SHOWN_LEADS = 50
"""Changed leads listed one by one in the text report (JSON lists them all)."""


@dataclass(frozen=True)
class Mql:
    """One lead becoming an MQL: when, by which rule, from which source."""

    lead_key: str
    at: datetime
    rule: str
    source: str


def sources_of(history: Iterable[ArchivedEvent]) -> dict[str, str]:
    """Event id -> the source the event came from (its payload's ``source``, else the sender's)."""
    sources = {}
    for archived in history:
        data = archived.event.data
        given = data.get("source") if isinstance(data, Mapping) else None
        sources[archived.event.id] = given if isinstance(given, str) else archived.event.source
    return sources


def mqls_of(states: Mapping[str, LeadState], sources: Mapping[str, str]) -> list[Mql]:
    """Every MQL transition in ``states``, in time order."""
    found = [
        Mql(key, change.at, change.rule, sources.get(change.cause_event_id, "unknown"))
        for key, state in states.items()
        for change in state.history
        if change.to_stage is Stage.MQL
    ]
    return sorted(found, key=lambda m: (m.at, m.lead_key))


def iso_week(at: datetime) -> str:
    """``2026-W48``: the week an MQL is counted in."""
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"


def summarise(run: SandboxRun, sources: Mapping[str, str]) -> dict[str, Any]:
    """One run's figures."""
    mqls = mqls_of(run.states, sources)
    return {
        "mqls": len(mqls),
        "mqls_by_week": _counts(iso_week(m.at) for m in mqls),
        "mqls_by_rule": _counts(m.rule for m in mqls),
        "mqls_by_source": _counts(m.source for m in mqls),
        "final_stages": _counts(state.stage.value for state in run.states.values()),
        "refused_events": run.refused,
    }


def trail(state: LeadState | None) -> list[dict[str, str]]:
    """A lead's stage history as plain values (empty if the run never saw the lead)."""
    if state is None:
        return []
    return [
        {"from": c.from_stage.value, "to": c.to_stage.value, "at": c.at.isoformat(),
         "rule": c.rule}
        for c in state.history
    ]  # fmt: skip


def compare(
    live: SandboxRun, draft: SandboxRun, sources: Mapping[str, str], lead: str | None = None
) -> dict[str, Any]:
    """The report ``leadrelay replay`` prints: both runs, their difference, the changed leads."""
    keys = sorted(set(live.states) | set(draft.states))
    changed = [k for k in keys if trail(live.states.get(k)) != trail(draft.states.get(k))]
    before, after = summarise(live, sources), summarise(draft, sources)
    report: dict[str, Any] = {
        "changed": len(changed),
        "leads": len(keys),
        "live": before,
        "draft": after,
        "difference": {name: _difference(before[name], after[name]) for name, _ in BREAKDOWNS}
        | {"mqls": after["mqls"] - before["mqls"]},
        "changed_leads": [_changed_lead(k, live, draft) for k in changed],
        "not_replayed": list(NOT_REPLAYED),
    }
    if lead is not None:
        report["lead"] = {
            "lead_key": lead,
            "live": trail(live.states.get(lead)),
            "draft": trail(draft.states.get(lead)),
        }
    return report


def render_text(report: Mapping[str, Any]) -> str:
    """The report for people: totals, then each breakdown live -> draft, then the leads."""
    live, draft, lines = report["live"], report["draft"], []
    lines.append(
        f"MQLs: live {live['mqls']}, draft {draft['mqls']} ({report['difference']['mqls']:+d});"
        f" {report['changed']} of {report['leads']} leads change stage"
    )
    for name, title in BREAKDOWNS:
        lines.append(f"\n{title}:")
        lines.extend(_side_by_side(live[name], draft[name]))
    lines.append("\nleads that change (live -> draft):")
    for item in report["changed_leads"][:SHOWN_LEADS]:
        lines.append(
            f"  {item['lead_key']}: {item['live_stage']} -> {item['draft_stage']},"
            f" MQLs {item['live_mqls']} -> {item['draft_mqls']}"
        )
    if len(report["changed_leads"]) > SHOWN_LEADS:
        lines.append(f"  ... and {len(report['changed_leads']) - SHOWN_LEADS} more (--format json)")
    if "lead" in report:
        lines.extend(_lead_lines(report["lead"]))
    lines.append("\nnot replayed yet: " + "; ".join(report["not_replayed"]))
    return "\n".join(lines)


def _counts(values: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def _difference(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    names = sorted(set(before) | set(after))
    return {n: after.get(n, 0) - before.get(n, 0) for n in names if after.get(n) != before.get(n)}


def _changed_lead(key: str, live: SandboxRun, draft: SandboxRun) -> dict[str, Any]:
    def stage(run: SandboxRun) -> str:
        state = run.states.get(key)
        return "unseen" if state is None else state.stage.value

    def mql_count(run: SandboxRun) -> int:
        return sum(row["to"] == Stage.MQL for row in trail(run.states.get(key)))

    return {"lead_key": key, "live_stage": stage(live), "draft_stage": stage(draft),
            "live_mqls": mql_count(live), "draft_mqls": mql_count(draft)}  # fmt: skip


def _side_by_side(before: Mapping[str, int], after: Mapping[str, int]) -> Sequence[str]:
    names = sorted(set(before) | set(after))
    return [
        f"  {n:<32} {before.get(n, 0):>6} -> {after.get(n, 0):>6}"
        f" ({after.get(n, 0) - before.get(n, 0):+d})"
        for n in names
    ] or ["  (none)"]


def _lead_lines(lead: Mapping[str, Any]) -> list[str]:
    lines = [f"\nlead {lead['lead_key']}:"]
    for side in ("live", "draft"):
        lines.append(f"  {side}:")
        lines.extend(
            f"    {row['at']}  {row['from']} -> {row['to']}  ({row['rule']})" for row in lead[side]
        )
        if not lead[side]:
            lines.append("    (never seen)")
    return lines
