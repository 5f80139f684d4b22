"""Bearer-token authentication for the admin and read routes (roster, accounts, leads)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="LEADRELAY_API_TOKEN")


def require_api_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Refuse with 401 unless the request carries ``Authorization: Bearer <LEADRELAY_API_TOKEN>``.

    The expected token is read from ``request.app.state.api_token`` (set by the app factory),
    and compared in constant time.
    """
    expected: str = request.app.state.api_token
    if credentials is None or not hmac.compare_digest(
        credentials.credentials.encode(), expected.encode()
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


ApiToken = Annotated[None, Depends(require_api_token)]
"""Add ``_: ApiToken`` to a route's parameters to protect it."""
