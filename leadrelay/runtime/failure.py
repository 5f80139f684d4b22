"""The failure policy of the consume loop, named so that nobody has to read the loop to know it.

Every error a message can meet falls in exactly one class; :func:`classify` decides which.

| what went wrong                                   | class            | what happens            |
| ------------------------------------------------- | ---------------- | ----------------------- |
| bytes are not a CloudEvent                        | (decoding)       | dead letter at once:    |
|                                                   |                  | ``undecodable``         |
| the event fails its schema                        | (decoding)       | dead letter at once:    |
|                                                   |                  | ``schema_violation``    |
| no handler for the event type in this service     | (decoding)       | skipped (topics carry   |
|                                                   |                  | several types)          |
| database or broker unreachable: ConnectionError,  | INFRASTRUCTURE   | back off, retry the     |
| DNS failure, DatabaseUnavailableError, dropped    |                  | same message until it   |
| connection, SQLSTATE 08xxx / 57Pxx, SQLite busy / |                  | works or we stop; never |
| I/O / cannot open / full, Kafka connection,       |                  | an attempt, never       |
| timeout and leader errors                         |                  | skipped                 |
| PostgreSQL 40001 serialization_failure, 40P01     | TRANSIENT        | roll back, back off,    |
| deadlock_detected, 55P03 lock_not_available,      |                  | retry; never an         |
| 57014 query_canceled                              |                  | attempt, never skipped  |
| the handler raised ``DomainRefusal``: the same    | REFUSED          | dead letter at the      |
| input always fails                                |                  | first failure:          |
|                                                   |                  | ``refused``             |
| anything else the handler raised: a bug, a        | HANDLER          | ``handler_max_attempts``|
| constraint violation, FileNotFoundError,          |                  | tries with back-off,    |
| TimeoutError, SQLite "no such table"              |                  | then ``handler_failed`` |

Waits follow the runtime's one :class:`~leadrelay.runtime.backoff.BackoffPolicy`. Periodic jobs
(:func:`~leadrelay.runtime.periodic.repeat`) wait out ``INFRASTRUCTURE`` and ``TRANSIENT`` the
same way and stop the service on anything else.

``OSError`` as a whole is not infrastructure: a handler that opens a missing file or times out on
its own would otherwise block its partition forever. An outage surfaces as a ``ConnectionError``
or a DNS error from the drivers, and a database connection that cannot be opened (asyncpg's
connect timeout is a plain ``TimeoutError``) is re-raised by the store as
``DatabaseUnavailableError``, a ``ConnectionError``.
"""

from __future__ import annotations

import enum
import socket

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError
from sqlalchemy.exc import DBAPIError, OperationalError

from leadrelay.contracts.errors import DomainRefusal


class FailureClass(enum.Enum):
    """How the runtime treats an error (the ``reason`` label of ``leadrelay_messages_failed``)."""

    INFRASTRUCTURE = "infrastructure"
    TRANSIENT = "transient"
    REFUSED = "refused"
    HANDLER = "handler"

    @property
    def counts_as_attempt(self) -> bool:
        """Whether a failure of this class uses up one of the handler's attempts."""
        return self in (FailureClass.REFUSED, FailureClass.HANDLER)


class DeadLetterReason(enum.Enum):
    """Why a message went to the dead-letter topic (the ``dlq.error.type`` header)."""

    UNDECODABLE = "undecodable"
    SCHEMA_VIOLATION = "schema_violation"
    REFUSED = "refused"
    HANDLER_FAILED = "handler_failed"


INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    socket.gaierror,
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
)

UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P")
"""PostgreSQL's "connection exception" class and its shutdown / "cannot connect now" codes."""

SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "unable to open database file",
    "database or disk is full",
)
"""SQLite's ``OperationalError`` messages that mean the file is busy or unusable. The rest (no such
table, a syntax error) are a handler's bug, which must not block a partition forever."""

TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014"})
"""serialization_failure, deadlock_detected, lock_not_available, query_canceled."""


def classify(error: BaseException) -> FailureClass:
    """The class of ``error``, by the table in this module's docstring.

    PostgreSQL errors reach us from asyncpg as ``DBAPIError`` whose ``orig`` carries the
    SQLSTATE; a disconnect sets ``connection_invalidated``.
    """
    sqlstate = _sqlstate(error)
    if sqlstate in TRANSIENT_SQLSTATES:
        return FailureClass.TRANSIENT
    if _is_unavailable(error, sqlstate) or isinstance(error, INFRASTRUCTURE_ERRORS):
        return FailureClass.INFRASTRUCTURE
    if isinstance(error, DomainRefusal):
        return FailureClass.REFUSED
    return FailureClass.HANDLER


def is_retried_without_limit(error: BaseException) -> bool:
    """Whether waiting can cure ``error``: an outage or a transient conflict (never a bug)."""
    return not classify(error).counts_as_attempt


def _sqlstate(error: BaseException) -> str | None:
    if not isinstance(error, DBAPIError):
        return None
    sqlstate = getattr(error.orig, "sqlstate", None)
    return sqlstate if isinstance(sqlstate, str) else None


def _is_unavailable(error: BaseException, sqlstate: str | None) -> bool:
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if sqlstate is not None:
        return sqlstate.startswith(UNAVAILABLE_SQLSTATE_PREFIXES)
    message = str(error.orig).lower()
    return isinstance(error, OperationalError) and message.startswith(SQLITE_UNAVAILABLE)
