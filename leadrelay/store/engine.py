"""Engine construction, the one place that knows SQLite and PostgreSQL differ."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import Table, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from leadrelay.store.sqlite_inline import connect_arguments, inline_connector

_Statement = TypeVar("_Statement")

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "leadrelay_read_only"
"""Execution option ``Store.read()`` sets: on SQLite the transaction begins deferred."""


def json_column_text(value: Any) -> str:
    """How every JSON column is written: orjson, several times faster than ``json.dumps`` on
    the state documents each consumer batch writes. Keys that are not strings become strings,
    as with ``json.dumps``."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def json_column_value(text: str | bytes) -> Any:
    """How every JSON column is read back (orjson)."""
    return orjson.loads(text)


def encoded_json(encoded: bytes) -> orjson.Fragment:
    """A JSON column's value already encoded (by pydantic's serializer, say): written as is,
    instead of a dict built only to be encoded again."""
    return orjson.Fragment(encoded)


_JSON_CODEC: dict[str, Any] = {
    "json_serializer": json_column_text,
    "json_deserializer": json_column_value,
}
"""Engine options: JSON columns written and read with orjson on both databases."""


def create_engine_for(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL, write-intent transactions and statements
    run on the event loop (:mod:`leadrelay.store.sqlite_inline`: one thread hop per write
    transaction instead of about three per statement).

    SQLite allows one writer at a time. Starting every read-write transaction with ``BEGIN
    IMMEDIATE`` makes writers queue on the busy timeout instead of failing half-way with
    "database is locked" when two read transactions both try to upgrade to write. A connection
    carrying :data:`READ_ONLY_OPTION` (``Store.read()``) begins a plain deferred ``BEGIN``
    instead: on WAL it reads the last committed snapshot without waiting for any writer.

    An in-memory SQLite URL (``sqlite+aiosqlite://``) gives one private database on a single
    shared connection, gone when the engine is disposed: replay's sandbox.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_size=pool_size, pool_pre_ping=True, **_JSON_CODEC)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        pool: dict[str, Any] = {}
    else:
        pool = {"poolclass": StaticPool}
    database, options = connect_arguments(SQLiteDialect_aiosqlite().create_connect_args(parsed))
    engine = create_async_engine(
        url,
        async_creator=inline_connector(database, options, SQLITE_BUSY_TIMEOUT_MS),
        **pool,
        **_JSON_CODEC,
    )
    configure_sqlite(engine)
    return engine


def is_sqlite(engine: AsyncEngine) -> bool:
    """Whether ``engine`` talks to SQLite (single writer, no advisory locks)."""
    return engine.dialect.name == "sqlite"


def dialect_insert(connection: AsyncConnection, table: Table) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT`` (PostgreSQL and SQLite spell it alike).

    ``Any`` because the two dialects' Insert classes share the methods but no base declaring them.
    Give many rows as ``execute``'s parameters (``connection.execute(statement, rows)``), never as
    ``.values(rows)``: SQLAlchemy renders the parameters as one multi-row INSERT per page
    ("insertmanyvalues") from a statement it compiled once, while a ``.values(rows)`` statement
    is compiled again on every call and its new cache entries evict every other statement from
    the engine's compiled cache.
    """
    postgres = connection.dialect.name == "postgresql"
    return (pg_insert if postgres else sqlite_insert)(table)


class BuiltOnce(Generic[_Statement]):
    """A hot path's statement, built on first use for each dialect and then reused.

    SQLAlchemy looks every statement up in the engine's compiled cache by a key it derives from
    the statement's structure, and remembers that key on the statement object. A statement
    built afresh for each call pays for the key again every time: about a third of what
    executing a one-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` costs through the async
    engine (about 110 µs built per call, 75 µs reused). Whatever varies between calls must be a
    ``bindparam`` (``expanding=True`` for an ``IN`` list), given with ``execute``'s parameters.
    """

    def __init__(self, build: Callable[[AsyncConnection], _Statement]) -> None:
        self._build = build
        self._by_dialect: dict[str, _Statement] = {}

    def __call__(self, connection: AsyncConnection) -> _Statement:
        """The statement for ``connection``'s dialect (``build`` only picks the dialect)."""
        name = connection.dialect.name
        statement = self._by_dialect.get(name)
        if statement is None:
            statement = self._by_dialect[name] = self._build(connection)
        return statement


def configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, the busy timeout, foreign keys, ``synchronous=FULL`` on every new connection, and
    ``BEGIN IMMEDIATE`` for a read-write transaction (``BEGIN`` for ``Store.read()``).

    Public for ``benchmarks.sqlite_bench``, whose aiosqlite baseline gets the same settings.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection.isolation_level is not None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL, not WAL's usual NORMAL: NORMAL may lose the last commits to an OS crash or power
        # cut, and the consumer commits its Kafka offset right after the database commit, so a
        # lost commit would be an effect lost for good instead of a redelivery.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
