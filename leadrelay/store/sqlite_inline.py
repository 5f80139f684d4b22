"""SQLite for the async engine without a thread hop per statement.

aiosqlite runs every call on its own thread and wakes the event loop for each answer: about
three hops per statement (cursor, execute, fetch), so a batch's transaction of a few hundred
statements cost a few hundred round trips through the loop. Almost every one of those calls is
a few microseconds of work on pages SQLite already holds; the hop costs far more than the call.

This adapter looks to SQLAlchemy's ``aiosqlite`` dialect like an aiosqlite connection (the URL
stays ``sqlite+aiosqlite://...``) but runs statements inline on the event loop, and hands to a
worker thread only the two calls that can wait:

* ``BEGIN IMMEDIATE`` is first tried inline with no busy wait. In a process every writer goes
  through ``Store.transaction()``, which lets one writer at a time reach SQLite, so the lock is
  free unless another *process* writes the same file. Then the attempt fails at once and the
  ``BEGIN IMMEDIATE`` is repeated on the worker thread, waiting up to the busy timeout there,
  while the loop serves everything else.
* ``COMMIT`` of a write transaction runs on the worker thread: with ``synchronous=FULL`` it
  ``fsync``\\s the WAL (milliseconds on a disk), and SQLite may checkpoint after it.

So a write transaction costs one hop (two when another process holds the write lock), however
many statements it runs, and a read transaction none. Opening a connection is one more hop (the
pool keeps connections open).

The trade-off, for whoever adds a caller: a statement runs on the loop for as long as SQLite
takes to answer it. That is right for this service's statements (key lookups and batch writes on
indexed tables, microseconds to a few milliseconds), and wrong for a long scan, which holds up
every other task of the process for its duration where aiosqlite would have let them run. A read
in WAL mode never waits for a writer, so the only other waits left on the loop are SQLite's
rare ones: a reader arriving while another connection rebuilds the WAL index after a crash.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

_T = TypeVar("_T")

_WRITE_BEGIN = "BEGIN IMMEDIATE"
_NO_WAIT = "PRAGMA busy_timeout=0"


class InlineCursor:
    """An aiosqlite-shaped cursor whose calls run inline (their awaits never suspend)."""

    def __init__(self, connection: InlineConnection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        """Run ``sql``; a ``BEGIN IMMEDIATE`` that would wait is finished on the worker."""
        await self._connection.idle()
        if sql.strip().upper() == _WRITE_BEGIN:
            await self._connection.begin_write(self._cursor)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        await self._connection.idle()
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    def __aiter__(self) -> InlineCursor:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineConnection:
    """An aiosqlite-shaped connection: inline statements, a worker thread for the waits.

    The sqlite3 connection is opened with ``check_same_thread=False`` because the worker thread
    uses it too; never at the same time as the loop: every call first waits until the worker's
    call in flight (if a cancelled caller left one) has finished.
    """

    def __init__(
        self, connection: sqlite3.Connection, worker: ThreadPoolExecutor, busy_timeout_ms: int
    ) -> None:
        self._conn: sqlite3.Connection | None = connection
        self._worker = worker
        self._busy_timeout = f"PRAGMA busy_timeout={busy_timeout_ms}"
        self._writing = False
        self._in_flight: asyncio.Future[Any] | None = None

    @property
    def _connection(self) -> sqlite3.Connection | None:
        """The open sqlite3 connection, None once closed (SQLAlchemy's dialect reads this)."""
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._open().isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self, self._open().cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open().create_function(*args, **kwargs)

    async def begin_write(self, cursor: sqlite3.Cursor) -> None:
        """``BEGIN IMMEDIATE`` inline if SQLite's write lock is free, else on the worker thread,
        waiting there for another process's writer (up to the busy timeout)."""
        cursor.execute(_NO_WAIT)
        try:
            cursor.execute(_WRITE_BEGIN)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            cursor.execute(self._busy_timeout)
            await self._on_worker(cursor.execute, _WRITE_BEGIN)
        else:
            cursor.execute(self._busy_timeout)
        self._writing = True

    async def commit(self) -> None:
        """Commit; a write transaction's commit (its ``fsync``) runs on the worker thread."""
        await self.idle()
        connection = self._open()
        writing, self._writing = self._writing, False
        if writing:
            await self._on_worker(connection.commit)
        else:
            connection.commit()

    async def rollback(self) -> None:
        await self.idle()
        self._writing = False
        self._open().rollback()

    async def close(self) -> None:
        """Close the connection and let the worker thread go."""
        await self.idle()
        self.stop()

    def stop(self) -> None:
        """Close at once, from synchronous code too (SQLAlchemy's terminate)."""
        connection, self._conn = self._conn, None
        if connection is not None:
            connection.close()
        self._worker.shutdown(wait=False)

    async def idle(self) -> None:
        """Wait for the worker's call in flight, if any: the connection is used by one thread
        at a time."""
        in_flight = self._in_flight
        if in_flight is not None and not in_flight.done():
            await asyncio.wait([in_flight])

    async def _on_worker(self, call: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._worker, call, *args)
        self._in_flight = future
        # shielded: a cancelled caller leaves the call to finish; idle() waits for it
        return await asyncio.shield(future)

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn


def inline_connector(
    database: str, options: dict[str, Any], busy_timeout_ms: int
) -> Callable[[], Any]:
    """The ``async_creator`` for ``create_async_engine``: opens an :class:`InlineConnection`.

    ``database`` and ``options`` are what SQLAlchemy's dialect would pass to
    ``sqlite3.connect`` (from the URL). Opening a file may wait on SQLite's locks, so it is done
    on the connection's worker thread.
    """

    async def connect() -> InlineConnection:
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        arguments = {**options, "isolation_level": None, "check_same_thread": False}
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(
                worker, lambda: sqlite3.connect(database, **arguments)
            )
        except BaseException:
            worker.shutdown(wait=False)
            raise
        return InlineConnection(connection, worker, busy_timeout_ms)

    return connect


def connect_arguments(
    created: tuple[Sequence[Any], Mapping[str, Any]],
) -> tuple[str, dict[str, Any]]:
    """The database and keyword options out of the dialect's ``create_connect_args``."""
    positional, named = created
    options = dict(named)
    database = positional[0] if positional else options.pop("database")
    return str(database), options
