"""The replay page: a draft definitions file pasted in, the figures ``leadrelay replay --format
json`` prints for it, on one page both teams can read.

The console only shows the report. Running the replay (reading the archive, the sandboxed
services) belongs to the composition root, behind :class:`ReplayPort`, so the page and the
command cannot disagree: both show the one report the root computes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from services.reporting.console.html import csrf_field, esc, simple_table

MAX_DRAFT_CHARS: Final = 1_000_000
"""A definitions file is a few hundred lines; anything near this is not one."""


class ReplayPort(Protocol):
    """The replay the composition root runs for the console."""

    async def replay(self, draft: str) -> Mapping[str, Any]:
        """The report ``leadrelay replay --format json`` prints for the draft definitions
        ``draft`` (YAML text); raises ``ValueError`` saying what is wrong with the draft."""
        ...


def form(csrf: str, draft: str = "", error: str | None = None) -> str:
    """The draft to replay: pasted, or chosen from a file (which the browser pastes in)."""
    alert = f"<p role='alert' class='bad'>{esc(error)}</p>" if error else ""
    return (
        f"{alert}<form class='replay' method='post' action='/console/replay'>{csrf_field(csrf)}"
        "<label for='definitions'>Draft definitions file (YAML), e.g. from "
        "<code>leadrelay check-config --print-default</code> with your changes</label>"
        f"<textarea id='definitions' name='definitions' rows='16' cols='100' required>"
        f"{esc(draft)}</textarea><button>Replay</button></form>"
    )


def report(result: Mapping[str, Any]) -> str:
    """The headline, each figure live against draft, the changed leads, and the JSON itself."""
    parts = [_headline(result)]
    for name, live in result["live"].items():
        if isinstance(live, Mapping):
            parts.append(_figure(name, live, result["draft"].get(name, {})))
    parts.append(_changed_leads(result["changed_leads"]))
    parts.append("<p>Not replayed: " + esc("; ".join(result["not_replayed"])) + "</p>")
    raw = esc(json.dumps(result, indent=2))
    parts.append(f"<details><summary>As JSON</summary><pre id='replay-json'>{raw}</pre></details>")
    return "".join(parts)


def _headline(result: Mapping[str, Any]) -> str:
    live, draft, kinds = result["live"], result["draft"], result["changed_by_kind"]
    return (
        f"<p class='headline'><strong id='changed' data-value='{esc(result['changed'])}'>"
        f"{esc(result['changed'])}</strong> of {esc(result['leads'])} leads change"
        f" (stage {esc(kinds.get('stage', 0))}, assignment {esc(kinds.get('assignment', 0))},"
        f" SLA outcome {esc(kinds.get('sla', 0))}). MQLs: live {esc(live['mqls'])}, draft"
        f" {esc(draft['mqls'])}; assignments: live {esc(live['assignments'])}, draft"
        f" {esc(draft['assignments'])}.</p>"
    )


def _figure(name: str, live: Mapping[str, int], draft: Mapping[str, int]) -> str:
    """One breakdown (``mqls_by_rule``...) as a table; cells keep their number in ``data-value``."""
    rows = [
        (esc(key), _number("live", live.get(key, 0)), _number("draft", draft.get(key, 0)),
         esc(f"{draft.get(key, 0) - live.get(key, 0):+d}"))
        for key in sorted({*live, *draft})
    ]  # fmt: skip
    headers = (name.replace("_", " "), "live", "draft", "difference")
    table = simple_table(headers, rows, cls="replay")
    return f"<section data-figure='{esc(name)}'>{table}</section>"


def _number(side: str, value: int) -> str:
    return f"<span data-side='{side}' data-value='{esc(value)}'>{esc(value)}</span>"


def _changed_leads(items: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        (f"<a href='/console/leads/{esc(i['lead_key'])}'>{esc(i['lead_key'])}</a>",
         esc(", ".join(i["differs_in"])), esc(f"{i['live_stage']} -> {i['draft_stage']}"),
         esc(f"{', '.join(i['live_reps']) or 'none'} -> {', '.join(i['draft_reps']) or 'none'}"),
         esc(f"{', '.join(i['live_sla']) or 'none'} -> {', '.join(i['draft_sla']) or 'none'}"))
        for i in items
    ]  # fmt: skip
    headers = ("lead", "differs in", "stage", "reps", "SLA clocks")
    return "<h2>Leads that change (live -> draft)</h2>" + simple_table(headers, rows, cls="changed")
