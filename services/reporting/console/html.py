"""Small, escaping HTML builders: every text that reaches a page goes through :func:`esc`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from services.reporting.domain import Cell, Report

DASH = "\u2013"
"""What a cell without a value shows (an en dash)."""
SHARES = ("share", "weighted_share", "conversion", "compliance")
SHARE_SUFFIXES = ("_rate", "_5m", "_1h")
NAV = (
    ("funnel", "Funnel"),
    ("speed", "Speed to lead"),
    ("sla", "SLA"),
    ("routing", "Routing & queues"),
    ("reps", "Reps"),
    ("replay", "Replay"),
)


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def fmt(column: str, value: Cell) -> str:
    """A cell as a person reads it: shares as percentages, durations as h/m/s, none as a dash."""
    if value is None:
        return DASH
    if isinstance(value, float) and (column in SHARES or column.endswith(SHARE_SUFFIXES)):
        return f"{value * 100:.1f}%"
    if isinstance(value, float) and "seconds" in column:
        return duration(value)
    return str(value)


def duration(total: float) -> str:
    """``13m 0s``, ``2h 5m``, ``1d 21h``."""
    seconds = round(total)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def report_table(report: Report, *, caption: str) -> str:
    """The report's rows as a table; each cell keeps its raw value in ``data-value``."""
    columns = report.columns()
    head = "".join(f"<th scope='col'>{esc(c.replace('_', ' '))}</th>" for c in columns)
    body = "".join(_report_row(columns, row) for row in report.rows)
    return (
        f"<table class='report' data-report='{esc(report.name)}' data-by='{esc(report.by)}'>"
        f"<caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _report_row(columns: Sequence[str], row: dict[str, Cell]) -> str:
    cells = "".join(
        _cell(c, row) if c in row else f"<td data-col='{esc(c)}'></td>" for c in columns
    )
    return f"<tr>{cells}</tr>"


def _cell(column: str, row: dict[str, Cell]) -> str:
    value = row[column]
    shown = esc(fmt(column, value))
    return f"<td data-col='{esc(column)}' data-value='{esc(_raw(value))}'>{shown}</td>"


def _raw(value: Cell) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def simple_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "") -> str:
    """A table of already-escaped cells."""
    head = "".join(f"<th scope='col'>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='{esc(cls)}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str, *, active: str = "", csrf: str | None = None) -> str:
    """A whole console page: header, navigation (and logout when signed in), the body."""
    links = "".join(
        f"<a href='/console/{key}'{' aria-current=page' if key == active else ''}>{esc(label)}</a>"
        for key, label in NAV
    )
    signed_in = csrf is not None
    nav = (
        f"<nav>{links}<form class='lookup' method='get' action='/console/leads'>"
        "<input name='key' placeholder='lead key' aria-label='lead key' required>"
        "<button>Open lead</button></form>"
        f"<form method='post' action='/console/logout'>{csrf_field(csrf)}"
        "<button class='link'>Sign out</button></form></nav>"
        if signed_in else ""
    )  # fmt: skip
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)} · LeadRelay</title>"
        "<link rel='stylesheet' href='/console/static/console.css'></head><body>"
        f"<header><span class='brand'>LeadRelay</span>{nav}</header>"
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )


def csrf_field(token: str | None) -> str:
    return f"<input type='hidden' name='csrf' value='{esc(token)}'>" if token else ""


def window_form(action: str, start: str, end: str, by: str, choices: Sequence[str]) -> str:
    """The GET form choosing ``from``, ``to`` and ``by`` (reads, so no CSRF token)."""
    options = "".join(
        f"<option{' selected' if c == by else ''}>{esc(c)}</option>" for c in ("all", *choices)
    )
    return (
        f"<form class='window' method='get' action='{esc(action)}'>"
        f"<label>from <input name='from' value='{esc(start)}'></label>"
        f"<label>to <input name='to' value='{esc(end)}'></label>"
        f"<label>by <select name='by'>{options}</select></label><button>Show</button></form>"
    )
