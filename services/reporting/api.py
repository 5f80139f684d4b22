"""``GET /v1/reports/...``: the numbers both teams read, as JSON or CSV (bearer token).

Every report takes ``from`` and ``to`` (ISO 8601 with an offset; default the 30 days up to
now) and ``by`` (the dimension to group by; default ``all``). ``Accept: text/csv`` gets the
rows as CSV, one column per cell, the group first; anything else gets JSON.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime

from leadrelay.api_auth import ApiToken
from leadrelay.runtime.service import Runtime
from services.reporting.domain import BusinessTime, Report, RosterEntry, UnknownDimension, Window
from services.reporting.read_model import REPORTS, Reports

DEFAULT_SPAN = timedelta(days=30)
CSV = "text/csv"
From = Annotated[AwareDatetime | None, Query(alias="from", description="Window start (inclusive)")]
To = Annotated[AwareDatetime | None, Query(description="Window end (exclusive); default now")]
By = Annotated[str | None, Query(description="Dimension to group by")]
Accept = Annotated[str | None, Header()]


def reports_router(reports: Reports) -> APIRouter:
    """One route per report in ``REPORTS``."""
    router = APIRouter(tags=["reports"])
    for name, dimensions in REPORTS.items():
        router.add_api_route(
            f"/v1/reports/{name}",
            _route(reports, name),
            methods=["GET"],
            summary=f"The {name} report",
            description=f"Group by one of: all, {', '.join(dimensions)}. "
            "JSON, or CSV with `Accept: text/csv`.",
            response_model=None,
        )
    return router


def window_of(start: datetime | None, end: datetime | None, now: datetime) -> Window:
    """The window asked for; 422 when it is empty or backwards."""
    end = end or now
    try:
        return Window(start or end - DEFAULT_SPAN, end)
    except ValueError as error:
        raise HTTPException(HTTPStatus.UNPROCESSABLE_ENTITY, str(error)) from None


async def compute(reports: Reports, name: str, window: Window, by: str | None) -> Report:
    """The report, with a bad ``by`` answered as 422."""
    try:
        return await reports.report(name, window, by)
    except UnknownDimension as error:
        raise HTTPException(HTTPStatus.UNPROCESSABLE_ENTITY, str(error)) from None


def report_json(report: Report) -> dict[str, Any]:
    return {
        "report": report.name,
        "from": report.window.start.isoformat(),
        "to": report.window.end.isoformat(),
        "by": report.by,
        "rows": list(report.rows),
    }


def report_csv(report: Report) -> str:
    """The rows as CSV with a header; a cell a row does not have is empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=report.columns(), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(report.rows)
    return out.getvalue()


def _route(reports: Reports, name: str) -> Callable[..., Awaitable[Response]]:
    async def get_report(
        _: ApiToken, start: From = None, to: To = None, by: By = None, accept: Accept = None
    ) -> Response:
        window = window_of(start, to, reports.store.clock())
        report = await compute(reports, name, window, by)
        if accept is not None and CSV in accept:
            filename = f'attachment; filename="{name}.csv"'
            return Response(
                report_csv(report), media_type=CSV, headers={"Content-Disposition": filename}
            )
        return JSONResponse(report_json(report))

    get_report.__name__ = f"report_{name.replace('-', '_')}"
    return get_report


def build_router(
    runtime: Runtime,
    business_time: BusinessTime,
    roster: Mapping[str, RosterEntry],
    *,
    marketing_sla: bool = False,
) -> APIRouter:
    """The report routes on the runtime's store (what the composition root mounts);
    ``marketing_sla``: the SLA report has marketing's policy row."""
    return reports_router(Reports(runtime.store, business_time, roster, marketing_sla))
