"""A service's part of a read view: what it knows about one lead, read on a shared connection.

The composition root merges the parts of every service into ``GET /v1/leads/{lead_id}``; each
service reads only its own tables, so the part is the only thing the view knows about it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

LeadViewPart = Callable[[AsyncConnection, str], Awaitable[dict[str, Any] | None]]
"""``(connection, lead_key) -> the service's fields, or None when it knows nothing of the lead``."""
