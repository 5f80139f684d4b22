"""The whole database schema: the kernel's migrations and every registered service's branch.

``leadrelay migrate``, ``leadrelay up`` and the tests call these; the kernel's
``leadrelay.store.migrate`` takes the branches as an argument because it knows no service.
"""

from __future__ import annotations

from leadrelay.app.registry import MIGRATION_BRANCHES
from leadrelay.store import migrate


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Every branch up to ``revision`` (blocking)."""
    migrate.upgrade(database_url, MIGRATION_BRANCHES, revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Every branch down to ``revision`` (blocking)."""
    migrate.downgrade(database_url, MIGRATION_BRANCHES, revision)


async def upgrade_async(database_url: str, revision: str = "heads") -> None:
    """``upgrade`` from inside a running event loop."""
    await migrate.upgrade_async(database_url, MIGRATION_BRANCHES, revision)


async def ensure_schema_current(database_url: str) -> None:
    """Refuse to start on a database ``leadrelay migrate`` has not brought up to every head."""
    await migrate.ensure_schema_current(database_url, MIGRATION_BRANCHES)
