"""What two replay runs differ in, as marketing ops and sales ops read it (pure: no I/O).

Both teams read the same figures: MQLs per ISO week, per qualifying rule and per source (the
``source`` of the event that made the lead an MQL: ``hubspot``, ``marketo``, ``generic``), the
final stages, the assignments per rep and per team, the SLA clocks' outcomes per policy, and the
leads that differ between the live and the draft run in their stage history, their assignments
(who, in which episode and attempt, by which route) or their SLA outcomes. ``changed`` counts
those leads; it is the one number a tool checks first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from services.archive.repository import ArchivedEvent
from services.scoring.domain import LeadState, Stage

if TYPE_CHECKING:  # replay imports this module to compare its runs
    from leadrelay.app.replay import SandboxRun

NOT_REPLAYED = (
    "roster edits made through the roster API (each run routes with its file's roster: section)",
    "marketing's SLA clocks (the MAP's acknowledgements are not archived)",
    "at-risk reassignments and the fallback queue's routing again (the forecaster and the"
    " queue router do not run in the sandbox)",
)
"""Said in every report, so nobody reads a missing figure as 'no difference'."""
BREAKDOWNS = (
    ("mqls_by_week", "MQLs per week"),
    ("mqls_by_rule", "MQLs per rule"),
    ("mqls_by_source", "MQLs per source"),
    ("final_stages", "final stage"),
    ("assignments_by_rep", "assignments per rep"),
    ("assignments_by_team", "assignments per team"),
    ("sla_outcomes", "SLA clocks (policy/clock/outcome)"),
)
_T = TypeVar("_T")
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
        "assignments": sum(len(made) for made in run.assignments.values()),
        "assignments_by_rep": _counts(a.holder for a in _all(run.assignments)),
        "assignments_by_team": _counts(a.team or "no team" for a in _all(run.assignments)),
        "sla_outcomes": _counts(f"{c.policy}/{c.kind}/{c.outcome}" for c in _all(run.clocks)),
        "refused_events": run.refused,
    }


def assignments_of(run: SandboxRun, key: str) -> list[dict[str, Any]]:
    """A lead's assignments as plain values (empty if it was never assigned)."""
    return [
        {"episode": a.episode, "attempt": a.attempt, "rep_id": a.rep_id, "team": a.team,
         "route": a.route, "fallback_queue": a.fallback_queue}
        for a in run.assignments.get(key, ())
    ]  # fmt: skip


def clocks_of(run: SandboxRun, key: str) -> list[dict[str, Any]]:
    """A lead's sales SLA clocks and their outcomes as plain values."""
    return [
        {"episode": c.episode, "attempt": c.attempt, "clock": c.kind, "policy": c.policy,
         "outcome": c.outcome}
        for c in run.clocks.get(key, ())
    ]  # fmt: skip


def differences(key: str, live: SandboxRun, draft: SandboxRun) -> list[str]:
    """What differs for lead ``key``: ``stage`` (its stage history), ``assignment``, ``sla``."""
    found = []
    if trail(live.states.get(key)) != trail(draft.states.get(key)):
        found.append("stage")
    if live.assignments.get(key, ()) != draft.assignments.get(key, ()):
        found.append("assignment")
    if live.clocks.get(key, ()) != draft.clocks.get(key, ()):
        found.append("sla")
    return found


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
    keys = sorted({*live.states, *draft.states, *live.assignments, *draft.assignments})
    changed = {k: found for k in keys if (found := differences(k, live, draft))}
    before, after = summarise(live, sources), summarise(draft, sources)
    report: dict[str, Any] = {
        "changed": len(changed),
        "leads": len(keys),
        "changed_by_kind": _counts(kind for found in changed.values() for kind in found),
        "live": before,
        "draft": after,
        "difference": {name: _difference(before[name], after[name]) for name, _ in BREAKDOWNS}
        | {"mqls": after["mqls"] - before["mqls"],
           "assignments": after["assignments"] - before["assignments"]},
        "changed_leads": [_changed_lead(k, found, live, draft) for k, found in changed.items()],
        "not_replayed": list(NOT_REPLAYED),
    }  # fmt: skip
    if lead is not None:
        report["lead"] = {"lead_key": lead} | {
            side: {"stages": trail(run.states.get(lead)), "assignments": assignments_of(run, lead),
                   "sla": clocks_of(run, lead)}
            for side, run in (("live", live), ("draft", draft))
        }  # fmt: skip
    return report


def render_text(report: Mapping[str, Any]) -> str:
    """The report for people: totals, then each breakdown live -> draft, then the leads."""
    live, draft, lines = report["live"], report["draft"], []
    by_kind = report["changed_by_kind"]
    lines.append(
        f"MQLs: live {live['mqls']}, draft {draft['mqls']} ({report['difference']['mqls']:+d});"
        f" assignments: live {live['assignments']}, draft {draft['assignments']}"
        f" ({report['difference']['assignments']:+d})\n"
        f"{report['changed']} of {report['leads']} leads change: stage {by_kind.get('stage', 0)},"
        f" assignment {by_kind.get('assignment', 0)}, SLA outcome {by_kind.get('sla', 0)}"
    )
    for name, title in BREAKDOWNS:
        lines.append(f"\n{title}:")
        lines.extend(_side_by_side(live[name], draft[name]))
    lines.append("\nleads that change (live -> draft):")
    for item in report["changed_leads"][:SHOWN_LEADS]:
        lines.append(_changed_line(item))
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


def _changed_lead(
    key: str, found: Sequence[str], live: SandboxRun, draft: SandboxRun
) -> dict[str, Any]:
    def stage(run: SandboxRun) -> str:
        state = run.states.get(key)
        return "unseen" if state is None else state.stage.value

    def mql_count(run: SandboxRun) -> int:
        return sum(row["to"] == Stage.MQL for row in trail(run.states.get(key)))

    def reps(run: SandboxRun) -> list[str]:
        return [a.holder for a in run.assignments.get(key, ())]

    def sla(run: SandboxRun) -> list[str]:
        return [f"{c.kind} {c.outcome}" for c in run.clocks.get(key, ())]

    return {"lead_key": key, "differs_in": list(found),
            "live_stage": stage(live), "draft_stage": stage(draft),
            "live_mqls": mql_count(live), "draft_mqls": mql_count(draft),
            "live_reps": reps(live), "draft_reps": reps(draft),
            "live_sla": sla(live), "draft_sla": sla(draft)}  # fmt: skip


def _changed_line(item: Mapping[str, Any]) -> str:
    """One changed lead: its stage and MQLs, and its reps and SLA outcomes where they differ."""
    line = (
        f"  {item['lead_key']}: {item['live_stage']} -> {item['draft_stage']},"
        f" MQLs {item['live_mqls']} -> {item['draft_mqls']}"
    )
    if "assignment" in item["differs_in"]:
        line += f"; reps {_listed(item['live_reps'])} -> {_listed(item['draft_reps'])}"
    if "sla" in item["differs_in"]:
        line += f"; SLA {_listed(item['live_sla'])} -> {_listed(item['draft_sla'])}"
    return line


def _listed(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "none"


def _all(by_lead: Mapping[str, Sequence[_T]]) -> Iterable[_T]:
    return (item for items in by_lead.values() for item in items)


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
        run = lead[side]
        lines.append(f"  {side}:")
        lines.extend(
            f"    {row['at']}  {row['from']} -> {row['to']}  ({row['rule']})"
            for row in run["stages"]
        )
        if not run["stages"]:
            lines.append("    (never seen)")
        lines.extend(
            f"    episode {a['episode']} attempt {a['attempt']}:"
            f" {a['rep_id'] or 'queue ' + str(a['fallback_queue'])}"
            f" ({a['team'] or 'no team'}, {a['route']})"
            for a in run["assignments"]
        )
        lines.extend(
            f"    episode {c['episode']} attempt {c['attempt']} {c['clock']} ({c['policy']}):"
            f" {c['outcome']}"
            for c in run["sla"]
        )
    return lines
