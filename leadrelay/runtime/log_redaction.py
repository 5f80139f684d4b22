"""No log record of any logger, at any level, carries an email address or an event payload.

Libraries log what they handle: aiokafka's producer logs every message it sends, value
included, at DEBUG (``Sending (key=%s value=%s) to %s``), and aiosqlite logs every SQL
statement with its parameters (``executing functools.partial(...)``), a lead's or a rep's
email among them. ``leadrelay run`` pins those loggers at WARNING, but whoever lowers that to
debug a connection, or embeds the app under another logging setup, would otherwise write
addresses to the logs.

So the redaction is a log record factory, the one hook every record of every logger passes
through, before any handler or filter sees it: bytes arguments (message values) become their
length, and every email address in the message, its arguments (however they are formatted
later) and an attached traceback becomes ``<email>``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from numbers import Number
from typing import Any

EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
REDACTED_EMAIL = "<email>"
_INSTALLED: list[Callable[..., logging.LogRecord]] = []


def redacted(text: str) -> str:
    """``text`` with every email address replaced by ``<email>``."""
    return EMAIL.sub(REDACTED_EMAIL, text)


class Redacted:
    """An argument shown redacted whether the message formats it with ``%s`` or ``%r``."""

    def __init__(self, value: object) -> None:
        self._value = value

    def __str__(self) -> str:
        return redacted(str(self._value))

    def __repr__(self) -> str:
        return redacted(repr(self._value))


def install_log_redaction() -> None:
    """Make every log record of this process redacted at creation; idempotent."""
    if _INSTALLED:
        return
    previous = logging.getLogRecordFactory()
    _INSTALLED.append(previous)

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(redacting_factory)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """``record`` with its message, arguments and traceback text redacted (in place)."""
    if isinstance(record.msg, str):
        record.msg = redacted(record.msg)
    else:
        record.msg = Redacted(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_argument(arg) for arg in record.args)
    elif isinstance(record.args, dict):
        record.args = {name: _argument(arg) for name, arg in record.args.items()}
    if record.exc_info and not record.exc_text:
        record.exc_text = redacted(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redacted(record.stack_info)
    return record


def _argument(arg: object) -> object:
    if isinstance(arg, bytes | bytearray | memoryview):
        return f"<{len(arg)} bytes redacted>"
    if isinstance(arg, str):
        return redacted(arg)
    if arg is None or isinstance(arg, Number):
        return arg
    return Redacted(arg)
