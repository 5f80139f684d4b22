"""``GET /docs``: the API reference rendered on the server from the OpenAPI document.

FastAPI's default ``/docs`` loads Swagger UI from a CDN, which a machine without internet cannot
reach; this page needs nothing but the process (the machine-readable document stays at
``/openapi.json``, for any OpenAPI tool to load).
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

METHODS = ("get", "put", "post", "delete", "patch")


def docs_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def docs(request: Request) -> HTMLResponse:
        """Every operation with its summary, description and parameters."""
        return HTMLResponse(render(request.app.openapi()))

    return router


def render(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    operations = "".join(
        _operation(method, path, item[method])
        for path, item in document.get("paths", {}).items()
        for method in METHODS
        if method in item
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(info.get('title'))} API</title>"
        "<link rel='stylesheet' href='/console/static/console.css'></head><body><main>"
        f"<h1>{_e(info.get('title'))} API {_e(info.get('version'))}</h1>"
        f"<p>{_e(info.get('description'))}</p>"
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>"
        f"{operations}</main></body></html>"
    )


def _operation(method: str, path: str, operation: dict[str, Any]) -> str:
    parameters = "".join(
        f"<li><code>{_e(p.get('name'))}</code> ({_e(p.get('in'))}"
        f"{', required' if p.get('required') else ''}) {_e(p.get('description'))}</li>"
        for p in operation.get("parameters", [])
    )
    return (
        f"<section class='card'><h2><code>{method.upper()} {_e(path)}</code></h2>"
        f"<p><b>{_e(operation.get('summary'))}</b></p><p>{_e(operation.get('description'))}</p>"
        f"<ul>{parameters}</ul></section>"
    )


def _e(value: object) -> str:
    return escape("" if value is None else str(value))
