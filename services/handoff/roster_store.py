"""The roster in the database: reps and accounts as validated domain documents.

Seeding: every rep and account of the definitions file that the database does not hold yet is
inserted (when the service starts, and again whenever a read finds one missing). An entry already
in the database is never overwritten from the file: after the first seed, ``PUT /v1/reps/{id}``
and ``PUT /v1/accounts/{id}`` own it, and routing reads the database on every decision, so an
edit applies to the next lead without a restart. Removing an entry from the file does not remove
it from the database: set the rep ``active: false`` (or drop the account's owner) through the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.store.engine import dialect_insert
from services.handoff.domain import Account, Rep, RosterConfig
from services.handoff.tables import accounts, reps

_M = TypeVar("_M", bound=BaseModel)
_E = TypeVar("_E", Rep, Account)


@dataclass(frozen=True)
class Roster:
    """Reps and accounts as one decision sees them, each sorted by id."""

    reps: tuple[Rep, ...]
    accounts: tuple[Account, ...]

    def rep(self, rep_id: str | None) -> Rep | None:
        return next((rep for rep in self.reps if rep.id == rep_id), None)


async def load_roster(connection: AsyncConnection, seed: RosterConfig, now: datetime) -> Roster:
    """The stored roster, after inserting the entries of ``seed`` it does not hold yet."""
    stored_reps = await _load(connection, reps, Rep)
    stored_accounts = await _load(connection, accounts, Account)
    new_reps = await _insert_missing(connection, reps, stored_reps, seed.reps, now)
    new_accounts = await _insert_missing(connection, accounts, stored_accounts, seed.accounts, now)
    return Roster(
        reps=_by_id([*stored_reps, *new_reps]),
        accounts=_by_id([*stored_accounts, *new_accounts]),
    )


async def load_rep(connection: AsyncConnection, rep_id: str) -> Rep | None:
    """One rep as the roster holds it now (the SLA monitor reads calendars and managers here)."""
    result = await connection.execute(select(reps.c.document).where(reps.c.id == rep_id))
    document = result.scalar_one_or_none()
    return None if document is None else Rep.model_validate(document)


async def put_rep(connection: AsyncConnection, rep: Rep, now: datetime) -> bool:
    """Store ``rep`` in place of any earlier version; True if it is new."""
    return await _upsert(connection, reps, rep.id, rep, now)


async def put_account(connection: AsyncConnection, account: Account, now: datetime) -> bool:
    """Store ``account`` in place of any earlier version; True if it is new."""
    return await _upsert(connection, accounts, account.id, account, now)


async def _load(connection: AsyncConnection, table: Table, model: type[_M]) -> list[_M]:
    result = await connection.execute(select(table.c.document).order_by(table.c.id))
    return [model.model_validate(document) for document in result.scalars()]


async def _insert_missing(
    connection: AsyncConnection,
    table: Table,
    stored: Sequence[_E],
    seed: Iterable[_E],
    now: datetime,
) -> list[_E]:
    """Insert the seed entries not stored yet; a concurrent insert of the same id is a no-op."""
    known = {entry.id for entry in stored}
    missing = [entry for entry in seed if entry.id not in known]
    if missing:
        rows = [_row(entry.id, entry, now) for entry in missing]
        await connection.execute(
            dialect_insert(connection, table).values(rows).on_conflict_do_nothing()
        )
    return missing


async def _upsert(
    connection: AsyncConnection, table: Table, entry_id: str, entry: BaseModel, now: datetime
) -> bool:
    existing = await connection.execute(select(table.c.id).where(table.c.id == entry_id))
    created = existing.first() is None
    row = _row(entry_id, entry, now)
    statement = dialect_insert(connection, table).values(row)
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={"document": row["document"], "updated_at": now},
        )
    )
    return created


def _row(entry_id: str, entry: BaseModel, now: datetime) -> dict[str, Any]:
    return {"id": entry_id, "document": entry.model_dump(mode="json"), "updated_at": now}


def _by_id(entries: Iterable[_E]) -> tuple[_E, ...]:
    return tuple(sorted(entries, key=lambda entry: entry.id))
