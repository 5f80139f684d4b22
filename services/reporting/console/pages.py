"""The console's page bodies: reports and one lead's view in, escaped HTML out (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.reporting.console import charts
from services.reporting.console.html import DASH, csrf_field, esc, fmt, report_table, simple_table
from services.reporting.domain import MAIN_PATH, Report

ROUTE_WORDS = {
    "account": "the owner of the lead's account",
    "rule": "a routing rule sends leads like this one to this rep",
    "round_robin": "next in the weighted round robin among eligible reps",
    "fallback": "nobody was eligible, so the lead waits in a fallback queue",
}


@dataclass(frozen=True)
class RepCard:
    """What the reps page shows of one rep (no contact details)."""

    rep_id: str
    name: str
    role: str
    team: str
    weight: int
    daily_capacity: int | None
    open_capacity: int | None
    active: bool


def login(csrf: str, error: str | None) -> str:
    problem = f"<p class='error' role='alert'>{esc(error)}</p>" if error else ""
    return (
        f"<div class='card login'>{problem}<form method='post' action='/console/login'>"
        f"{csrf_field(csrf)}<label for='token'>API token</label>"
        "<input id='token' name='token' type='password' autocomplete='current-password' required>"
        "<button>Sign in</button></form></div>"
    )


def funnel(report: Report) -> str:
    overall = [r for r in report.rows if r.get(report.by) == report.rows[0].get(report.by)]
    stages = [
        (str(r["stage"]), int(r["entered"] or 0), _float(r["conversion"]))
        for r in overall
        if r["stage"] in MAIN_PATH
    ]
    return charts.funnel(stages) + _scroll(report_table(report, caption="Funnel by stage"))


def speed(report: Report, distribution: Sequence[tuple[str, int]]) -> str:
    chart = charts.bars(
        [(label, float(count), str(count)) for label, count in distribution],
        title="Time from qualifying to first touch",
    )
    return chart + _scroll(report_table(report, caption="Speed to lead"))


def sla(report: Report, trend: Sequence[tuple[str, float | None]]) -> str:
    compliance = [
        (str(r[report.by]), _float(r["compliance"]) or 0.0, fmt("compliance", r["compliance"]))
        for r in report.rows
    ]
    return (
        charts.bars(compliance, title="SLA compliance", maximum=1.0)
        + "<h2>Compliance per day</h2>"
        + charts.trend(trend, title="SLA compliance per day")
        + _scroll(report_table(report, caption="SLA clocks"))
    )


def routing(report: Report) -> str:
    shares = [
        (str(r[report.by]), _float(r["share"]) or 0.0,
         f"{fmt('share', r['share'])} (weight promises {fmt('share', r['weighted_share'])})")
        for r in report.rows
        if r["kind"] == report.by
    ]  # fmt: skip
    return charts.bars(shares, title="Share of assignments", maximum=1.0) + _scroll(
        report_table(report, caption="Assignments, queues and skip reasons")
    )


def reps(cards: Sequence[RepCard], assigned: Mapping[str, int], csrf: str) -> str:
    rows = [
        (
            esc(c.rep_id), esc(c.name), esc(c.role), esc(c.team), esc(c.weight),
            esc(assigned.get(c.rep_id, 0)), esc(_capacity(c)),
            "<span class='good'>active</span>" if c.active else "<span class='bad'>away</span>",
            _switch(c, csrf),
        )
        for c in cards
    ]  # fmt: skip
    headers = ("rep", "name", "role", "team", "weight", "assigned in window", "capacity",
               "status", "out of office")  # fmt: skip
    return simple_table(headers, rows, cls="reps")


def lead(view: Mapping[str, Any]) -> str:
    """One lead for a rep opening it from the CRM: why this rep, SLA clocks, scores, timeline."""
    assignment = view.get("assignment")
    parts = [
        f"<p class='muted'>{esc(view.get('lead_key'))} · stage <b>{esc(view.get('stage'))}</b>"
        f" · grade {esc(view.get('grade'))} · {esc(_who(view.get('profile') or {}))}</p>",
        "<h2>Why this rep</h2>",
        _why(assignment) if assignment else "<p>Not assigned yet.</p>",
        "<h2>SLA clocks</h2>",
        _clocks(view.get("sla_clocks") or []),
        "<h2>Score breakdown</h2>",
        _breakdown(view),
        "<h2>Timeline (UTC)</h2>",
        _timeline(view),
    ]
    return "".join(parts)


def why_this_rep(assignment: Mapping[str, Any]) -> list[str]:
    """The routing trace in plain words: the decision first, then each step and each skip."""
    trace = assignment.get("trace") or {}
    chosen = trace.get("chosen") or {}
    route = ROUTE_WORDS.get(str(assignment.get("route")), str(assignment.get("route")))
    sentences = [
        f"Assigned to {assignment.get('rep_id')} because {route}: {chosen.get('reason', '')}."
    ]
    sentences += [
        f"{step.get('step')}: {step.get('outcome')} ({step.get('detail')})"
        for step in trace.get("steps", [])
    ]
    sentences += [
        f"{s.get('rep_id')} was passed over: {str(s.get('reason')).replace('_', ' ')}"
        for s in trace.get("skipped", [])
    ]
    return sentences


def _why(assignment: Mapping[str, Any]) -> str:
    first, *rest = why_this_rep(assignment)
    items = "".join(f"<li>{esc(s)}</li>" for s in rest)
    reason = f"<p class='why' id='routing-reason'>{esc(first)}</p>"
    return f"<div class='card'>{reason}<ul>{items}</ul></div>"


def _clocks(clocks: Sequence[Mapping[str, Any]]) -> str:
    if not clocks:
        return "<p>No SLA clock started.</p>"
    rows = [
        (
            esc(c.get("kind", "").replace("_", " ")), esc(c.get("rep_id")), esc(c.get("policy")),
            esc(_when(c.get("due_at"))),
            f"<span class='state-{esc(c.get('state'))}'>{esc(c.get('state'))}</span>",
            esc(", ".join(f"{s['step']} at {_when(s['at'])}" for s in c.get("steps_taken", []))
                or "none"),
        )
        for c in clocks
    ]  # fmt: skip
    return simple_table(("clock", "rep", "policy", "due", "state", "ladder steps taken"), rows)


def _breakdown(view: Mapping[str, Any]) -> str:
    lines = view.get("breakdown") or []
    rows = [
        (
            esc(line.get("rule")), esc(line.get("axis")), esc(f"{line.get('points', 0):.1f}"),
            esc("" if line.get("raw_points") is None else f"{line['raw_points']:.1f}"),
            esc("" if line.get("decay_factor") is None else f"{line['decay_factor']:.2f}"),
        )
        for line in lines
    ]  # fmt: skip
    summary = (
        f"<p>Fit {esc(view.get('fit_score'))} (grade {esc(view.get('grade'))}), engagement "
        f"{esc(_rounded(view.get('engagement_score')))} · scorecard "
        f"{esc(view.get('scorecard_version'))}</p>"
    )
    table = simple_table(("rule", "axis", "points now", "points before decay", "decay"), rows)
    return summary + table


def _timeline(view: Mapping[str, Any]) -> str:
    entries: list[tuple[str, str]] = []
    for item in view.get("timeline") or []:
        if item.get("kind") == "activity":
            what = item.get("action", "") + (f" {item['form_id']}" if item.get("form_id") else "")
        else:
            what = f"stage {item.get('from_stage')} → {item.get('to_stage')} ({item.get('rule')})"
        entries.append((str(item.get("at")), what))
    for a in view.get("assignments") or []:
        entries.append((a["assigned_at"], f"assigned to {a['rep_id']} (attempt {a['attempt']})"))
    for clock in view.get("sla_clocks") or []:
        for step in clock.get("steps_taken", []):
            entries.append((step["at"], f"{clock['kind'].replace('_', ' ')} SLA: {step['step']}"))
    entries.sort(key=lambda e: _instant(e[0]))
    items = "".join(f"<li><time>{esc(_when(at))}</time> {esc(what)}</li>" for at, what in entries)
    return f"<ol class='timeline'>{items}</ol>"


def _switch(card: RepCard, csrf: str) -> str:
    label, value = ("Mark away", "false") if card.active else ("Mark back", "true")
    return (
        f"<form method='post' action='/console/reps/{esc(card.rep_id)}/active'>{csrf_field(csrf)}"
        f"<input type='hidden' name='active' value='{value}'><button>{label}</button></form>"
    )


def _capacity(card: RepCard) -> str:
    parts = [f"{card.daily_capacity}/day" if card.daily_capacity is not None else "",
             f"{card.open_capacity} open" if card.open_capacity is not None else ""]  # fmt: skip
    return ", ".join(p for p in parts if p) or "no cap"


def _who(profile: Mapping[str, Any]) -> str:
    name = " ".join(p for p in (profile.get("first_name"), profile.get("last_name")) if p)
    where = ", ".join(p for p in (profile.get("job_title"), profile.get("company"),
                                  profile.get("country")) if p)  # fmt: skip
    return " · ".join(p for p in (name, where) if p) or "unknown person"


def _when(value: object) -> str:
    if not value:
        return DASH
    return _instant(str(value)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _rounded(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _scroll(html: str) -> str:
    return f"<div class='scroll'>{html}</div>"
