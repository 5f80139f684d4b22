"""Alembic over the kernel's ``0001`` (inbox, outbox) and the branches each service brings.

Each service owns a branch of migrations beside its code (``services/<name>/migrations``) starting
from the runtime's ``0001``, so services evolve their tables independently; "up to date" means at
every branch's head (``heads``). The kernel knows no service: the composition root passes the
service branches in (``leadrelay.app.schema`` binds them for ``leadrelay migrate``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
KERNEL_VERSIONS = MIGRATIONS / "versions"


def alembic_config(database_url: str, branches: Sequence[Path]) -> Config:
    """An Alembic config over the kernel's versions and ``branches``, with no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    locations = os.pathsep.join(str(path) for path in (KERNEL_VERSIONS, *branches))
    config.set_main_option("version_locations", locations.replace("%", "%%"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, branches: Sequence[Path], revision: str = "heads") -> None:
    """Apply migrations up to ``revision`` (blocking; call from a thread in async code)."""
    command.upgrade(alembic_config(database_url, branches), revision)


def downgrade(database_url: str, branches: Sequence[Path], revision: str = "base") -> None:
    """Revert migrations down to ``revision``."""
    command.downgrade(alembic_config(database_url, branches), revision)


async def upgrade_async(
    database_url: str, branches: Sequence[Path], revision: str = "heads"
) -> None:
    """``upgrade`` from inside a running event loop (Alembic's env runs its own loop)."""
    await asyncio.to_thread(upgrade, database_url, branches, revision)


class SchemaOutOfDateError(RuntimeError):
    """The database is not at the newest migration: run ``leadrelay migrate`` first."""


async def ensure_schema_current(database_url: str, branches: Sequence[Path]) -> None:
    """Refuse to start a service on a database that ``leadrelay migrate`` has not brought up."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from leadrelay.store.engine import create_engine_for

    config = alembic_config(database_url, branches)
    heads = set(ScriptDirectory.from_config(config).get_heads())
    engine = create_engine_for(database_url)
    try:
        async with engine.connect() as connection:
            current = set(
                await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_heads()
                )
            )
    finally:
        await engine.dispose()
    if current != heads:
        raise SchemaOutOfDateError(
            f"database is at revision(s) {sorted(current) or 'none'}, the code needs "
            f"{sorted(heads)}: run `leadrelay migrate`"
        )
