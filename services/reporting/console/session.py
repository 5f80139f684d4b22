"""The console's session and CSRF tokens (pure: no web framework, only hmac and secrets).

The session cookie is ``<issued-at>.<HMAC-SHA256(api token, issued-at)>``: it proves its bearer
typed the API token, expires after ``SESSION_SECONDS``, and stops working when the token is
rotated. The token itself never leaves the login form. CSRF is a double submit: a random value
in an HttpOnly, SameSite=Strict cookie that every writing form must repeat in a hidden field;
another site can neither read the cookie nor make the browser send it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Final

SESSION_COOKIE: Final = "leadrelay_session"
CSRF_COOKIE: Final = "leadrelay_csrf"
SESSION_SECONDS: Final = 12 * 3600


def token_matches(given: str, api_token: str) -> bool:
    """Constant-time comparison of what the person typed with the API token."""
    return hmac.compare_digest(given.encode(), api_token.encode())


def new_session(api_token: str, now: datetime) -> str:
    issued = str(int(now.timestamp()))
    return f"{issued}.{_sign(api_token, issued)}"


def session_valid(cookie: str | None, api_token: str, now: datetime) -> bool:
    """Whether the cookie was issued with this API token less than ``SESSION_SECONDS`` ago."""
    if not cookie or "." not in cookie:
        return False
    issued, signature = cookie.split(".", 1)
    if not issued.isdigit() or not hmac.compare_digest(signature, _sign(api_token, issued)):
        return False
    return 0 <= now.timestamp() - int(issued) < SESSION_SECONDS


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_valid(cookie: str | None, submitted: str | None) -> bool:
    """The form repeated the cookie's value (both present, compared in constant time)."""
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())


def _sign(api_token: str, issued: str) -> str:
    key = api_token.encode()
    return hmac.new(key, f"console-session:{issued}".encode(), hashlib.sha256).hexdigest()
