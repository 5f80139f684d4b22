"""Who a lead is: normalised emails and the opaque, stable lead key derived from them.

The lead key is the Kafka message key and the id in every URL, so it must be stable for the
same person and must not expose the email: an HMAC under a deployment secret gives both
(a plain hash could be reversed with a dictionary of addresses).
"""

from __future__ import annotations

import hashlib
import hmac

LEAD_KEY_PREFIX = "lk_"


class InvalidEmailError(ValueError):
    """The text cannot be an email address."""


def normalise_email(raw: str) -> str:
    """Lower-case and trim an address, so ``Ada@Example.COM `` and ``ada@example.com`` match.

    Plus-addressing and dots are kept: they are distinct mailboxes at many providers.
    """
    email = raw.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or " " in email or domain.startswith("."):
        raise InvalidEmailError("not an email address")
    return email


def email_domain(email: str) -> str:
    """The part after the @ of a normalised address."""
    return email.rpartition("@")[2]


def lead_key(email: str, secret: str) -> str:
    """The lead key of a (raw or normalised) email address under ``secret``."""
    digest = hmac.new(secret.encode(), normalise_email(email).encode(), hashlib.sha256)
    return LEAD_KEY_PREFIX + digest.hexdigest()[:32]
