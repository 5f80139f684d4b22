"""The failure policy of the consume loop, named so that nobody has to read the loop to know it.

| what went wrong                                   | what happens                                 |
| ------------------------------------------------- | -------------------------------------------- |
| bytes are not a CloudEvent, or fail their schema  | dead-letter at once: retrying cannot help    |
| the event type has no handler in this service     | skipped (topics carry several types)         |
| the handler raised (a bug, bad data it refused)   | retried ``handler_max_attempts`` times, then |
|                                                   | dead-lettered; the partition keeps moving    |
| database or broker unreachable (infrastructure)   | back off and retry the same message until it |
|                                                   | succeeds or the service stops: never skipped |
"""

from __future__ import annotations

import enum

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError
from sqlalchemy.exc import DBAPIError, OperationalError

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    OperationalError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
)


class DeadLetterReason(enum.Enum):
    """Why a message went to the dead-letter topic (the ``dlq.error.type`` header)."""

    UNDECODABLE = "undecodable"
    SCHEMA_VIOLATION = "schema_violation"
    HANDLER_FAILED = "handler_failed"


UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P")
"""PostgreSQL's "connection exception" class and its shutdown / "cannot connect now" codes."""


def is_infrastructure_error(error: BaseException) -> bool:
    """Errors that say "the world is down", not "this message is bad".

    A disconnect surfaces from asyncpg as ``DBAPIError`` with ``connection_invalidated``. A
    PostgreSQL that is restarting refuses new connections with SQLSTATE 57P03 ("the database
    system is starting up"), which SQLAlchemy wraps as a plain ``DBAPIError``; the SQLSTATE
    tells it apart from a constraint violation, which is the handler's problem.
    """
    if isinstance(error, DBAPIError) and (error.connection_invalidated or _unavailable(error)):
        return True
    return isinstance(error, INFRASTRUCTURE_ERRORS)


def _unavailable(error: DBAPIError) -> bool:
    sqlstate = getattr(error.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(UNAVAILABLE_SQLSTATE_PREFIXES)
