"""Keeps the events LeadRelay produces out of aiokafka's DEBUG log: their payloads carry emails.

aiokafka's producer logs every message it sends, value included, at DEBUG
(``Sending (key=%s value=%s) to %s``). ``leadrelay run`` and ``leadrelay up`` pin aiokafka at
WARNING, but whoever lowers that to debug a broker connection, or embeds the app under another
logging setup, would otherwise write every lead's email address to the logs.
"""

from __future__ import annotations

import logging

PRODUCER_LOGGER = "aiokafka.producer.producer"


class RedactPayloads(logging.Filter):
    """Replaces each bytes argument of a record (a message value) by its length; keeps the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def redact_producer_payloads() -> None:
    """Install the filter on aiokafka's producer logger, once per process."""
    logger = logging.getLogger(PRODUCER_LOGGER)
    if not any(isinstance(f, RedactPayloads) for f in logger.filters):
        logger.addFilter(RedactPayloads())


def _redacted(arg: object) -> object:
    if isinstance(arg, bytes | bytearray | memoryview):
        return f"<{len(arg)} bytes redacted>"
    return arg
