"""The console's session cookie and CSRF check (pure)."""

from __future__ import annotations

from datetime import timedelta

from services.reporting.console.html import duration, fmt
from services.reporting.console.session import (
    SESSION_SECONDS,
    csrf_valid,
    new_csrf,
    new_session,
    session_valid,
    token_matches,
)
from tests.unit.reporting.history import MONDAY

TOKEN = "the-api-token"


def test_a_session_proves_the_token_and_expires() -> None:
    cookie = new_session(TOKEN, MONDAY)
    assert TOKEN not in cookie
    assert session_valid(cookie, TOKEN, MONDAY + timedelta(hours=1))
    assert not session_valid(cookie, TOKEN, MONDAY + timedelta(seconds=SESSION_SECONDS))
    assert not session_valid(cookie, "a-rotated-token", MONDAY)
    issued, signature = cookie.split(".")
    assert not session_valid(f"{int(issued) + 60}.{signature}", TOKEN, MONDAY)  # not re-dated
    assert not session_valid(None, TOKEN, MONDAY)
    assert not session_valid("garbage", TOKEN, MONDAY)


def test_csrf_needs_the_cookie_repeated_by_the_form() -> None:
    token = new_csrf()
    assert csrf_valid(token, token)
    assert not csrf_valid(token, new_csrf())
    assert not csrf_valid(None, token)
    assert not csrf_valid(token, None)
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches("guess", TOKEN)


def test_cells_read_as_people_read_them() -> None:
    assert fmt("conversion", 0.75) == "75.0%"
    assert fmt("touched_within_1h", 0.3333) == "33.3%"
    assert fmt("first_touch_p50_seconds", 780.0) == "13m 0s"
    assert fmt("entered", 4) == "4"
    assert fmt("compliance", None) == "\u2013"
    assert duration(162000) == "1d 21h"
