"""The failure policy tells an unavailable database from a handler's bad write.

Infrastructure errors are retried until the database is back; anything else is retried a few
times and dead-lettered. Misfiling a restart as a handler error dead-letters good events.
"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from leadrelay.runtime.failure import is_infrastructure_error


class PostgresError(Exception):
    """An error as the asyncpg adapter reports it: with the server's SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "sqlstate",
    ["57P01", "57P03", "08006"],
    ids=["admin-shutdown", "starting-up", "connection-failure"],
)
def test_a_restarting_database_is_infrastructure(sqlstate: str) -> None:
    error = DBAPIError("SELECT 1", None, PostgresError(sqlstate))
    assert is_infrastructure_error(error)


def test_a_constraint_violation_is_the_handlers_problem() -> None:
    error = IntegrityError("INSERT INTO leads", None, PostgresError("23505"))
    assert not is_infrastructure_error(error)


def test_a_dropped_connection_is_infrastructure() -> None:
    error = DBAPIError("SELECT 1", None, PostgresError("XX000"), connection_invalidated=True)
    assert is_infrastructure_error(error)
