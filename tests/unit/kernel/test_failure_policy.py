"""The failure taxonomy: every error falls in exactly one class, as failure.py's table says.

Misfiling a restart as a handler error dead-letters good events; misfiling a handler's bug as an
outage blocks its partition forever. The PostgreSQL classes are also provoked for real in
tests/integration/runtime/test_failure_classes.py.
"""

from __future__ import annotations

import socket
import sqlite3

import pytest
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from leadrelay.contracts.errors import DomainRefusal
from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.failure import FailureClass, classify
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import DatabaseUnavailableError, Store


class PostgresError(Exception):
    """An error as the asyncpg adapter reports it: with the server's SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def postgres(sqlstate: str) -> DBAPIError:
    return DBAPIError("SELECT 1", None, PostgresError(sqlstate))


@pytest.mark.parametrize(
    "sqlstate",
    ["57P01", "57P03", "08006"],
    ids=["admin-shutdown", "starting-up", "connection-failure"],
)
def test_a_restarting_database_is_infrastructure(sqlstate: str) -> None:
    assert classify(postgres(sqlstate)) is FailureClass.INFRASTRUCTURE


@pytest.mark.parametrize(
    "sqlstate",
    ["40001", "40P01", "55P03", "57014"],
    ids=["serialization", "deadlock", "lock-not-available", "query-canceled"],
)
def test_postgres_conflicts_are_transient_and_use_up_no_attempt(sqlstate: str) -> None:
    failure = classify(postgres(sqlstate))
    assert failure is FailureClass.TRANSIENT
    assert not failure.counts_as_attempt


def test_a_constraint_violation_is_the_handlers_problem() -> None:
    error = IntegrityError("INSERT INTO leads", None, PostgresError("23505"))
    assert classify(error) is FailureClass.HANDLER


def test_a_dropped_connection_is_infrastructure() -> None:
    error = DBAPIError("SELECT 1", None, PostgresError("XX000"), connection_invalidated=True)
    assert classify(error) is FailureClass.INFRASTRUCTURE


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError("refused"),
        ConnectionResetError("reset"),
        BrokenPipeError("pipe"),
        socket.gaierror("no such host"),
        DatabaseUnavailableError("cannot open a database connection (TimeoutError)"),
        OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")),
        OperationalError("INSERT", None, sqlite3.OperationalError("disk I/O error")),
        KafkaConnectionError("broker down"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages_are_infrastructure(error: Exception) -> None:
    assert classify(error) is FailureClass.INFRASTRUCTURE


@pytest.mark.parametrize(
    "error",
    [FileNotFoundError("rules.yaml"), TimeoutError(), PermissionError("x"), ValueError("bug")],
    ids=lambda e: type(e).__name__,
)
def test_a_handlers_own_os_error_or_timeout_is_a_handler_failure(error: Exception) -> None:
    """Not an outage: retried a few times and dead-lettered, never a partition blocked."""
    failure = classify(error)
    assert failure is FailureClass.HANDLER
    assert failure.counts_as_attempt


async def test_a_sqlite_schema_error_is_the_handlers_problem(sqlite_url: str) -> None:
    """SQLite reports a missing table as OperationalError too: a bug, not an outage."""
    store = Store(create_engine_for(sqlite_url))
    try:
        with pytest.raises(OperationalError) as caught:
            async with store.transaction() as tx:
                await tx.connection.execute(text("SELECT * FROM no_such_table"))
    finally:
        await store.dispose()
    assert classify(caught.value) is FailureClass.HANDLER


def test_a_domain_refusal_is_refused() -> None:
    class NotOnRoster(DomainRefusal):
        pass

    assert classify(NotOnRoster("rep-9 is not on the roster")) is FailureClass.REFUSED


def test_backoff_doubles_up_to_its_cap_and_starts_over_after_a_success() -> None:
    policy = BackoffPolicy(0.5, 3.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(10_000) == 3.0  # a week-long outage does not overflow
    waits = policy.start()
    waits.failures = 4
    assert waits.next_delay == 3.0
    waits.reset()
    assert waits.next_delay == 0.5


def test_backoff_refuses_a_cap_below_its_start() -> None:
    with pytest.raises(ValueError, match="initial_seconds"):
        BackoffPolicy(5.0, 1.0)
