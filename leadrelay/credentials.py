"""The secrets of a deployment: how a webhook secret becomes an HMAC key, what production
demands of every secret, and the per-install random secrets ``leadrelay up`` makes in dev.

Nothing here ever puts a secret, or any part of one, into a message: refusals name the
setting, never its value.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
MIN_SECRET_BYTES = 24
"""Standard Webhooks asks for 24 to 64 random bytes; every HMAC secret and token gets as many."""
GENERATED_SECRET_BYTES = 32
DEV_SECRETS_FILE = Path(".leadrelay") / "dev-secrets.env"
"""Where ``leadrelay up`` keeps the per-install secrets it generates in dev (mode 0600)."""
SECRET_SETTINGS = (
    "api_token",
    "webhook_secrets",
    "hubspot_client_secret",
    "marketo_token",
    "lead_key_secret",
)
"""The settings that hold secrets; ``webhook_secrets`` is a list (several during a rotation)."""


def bearer_header_word(secrets_file: Path = DEV_SECRETS_FILE) -> str:
    """A shell word for ``curl -H`` that reads the API token when the command runs, so a
    command printed for a user carries no token: from ``secrets_file`` when it exists (dev),
    else from the ``LEADRELAY_API_TOKEN`` variable."""
    if secrets_file.exists():  # sourced, so the file's shell quoting is undone as written
        sourced = secrets_file if secrets_file.is_absolute() else f"./{secrets_file}"
        return f'"Authorization: Bearer $(. {sourced}; echo $LEADRELAY_API_TOKEN)"'
    return '"Authorization: Bearer $LEADRELAY_API_TOKEN"'


def parse_secret(secret: str) -> bytes:
    """The HMAC key of a configured secret.

    ``whsec_<base64>`` is the Standard Webhooks serialisation and is base64-decoded; any other
    text is used as its UTF-8 bytes (a "raw" secret). Note that the reference libraries
    base64-decode unprefixed secrets too, so give senders that use them the ``whsec_`` form.
    """
    if not secret:
        raise ValueError("a webhook secret must not be empty")
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode("utf-8")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("a whsec_ secret must be base64 after the prefix") from None
    if not key:
        raise ValueError("a whsec_ secret must not be empty")
    return key


def key_bytes(setting: str, value: str) -> bytes:
    """The key material of one secret: decoded for a webhook secret, else its UTF-8 bytes."""
    return parse_secret(value) if setting == "webhook_secrets" else value.encode("utf-8")


def production_problems(values: Mapping[str, list[str]], dev_secret: str) -> list[str]:
    """What is wrong with the secrets of a production deployment, naming settings only.

    ``values`` maps each secret setting to its values. A secret must not be the public dev
    default, must carry at least :data:`MIN_SECRET_BYTES` bytes of key material, and must
    not be shared with another role (one leaked secret would then open two doors).
    """
    problems: list[str] = []
    owners: dict[bytes, str] = {}
    for setting, secret_values in values.items():
        for value in secret_values:
            problem = _problem(setting, value, dev_secret)
            if problem is not None:
                problems.append(problem)
                continue
            owner = owners.setdefault(key_bytes(setting, value), setting)
            if owner != setting:
                problems.append(f"{owner} and {setting} share a secret; give each its own")
    return list(dict.fromkeys(problems))


def _problem(setting: str, value: str, dev_secret: str) -> str | None:
    if value == dev_secret:
        return f"{setting} is the public dev default; set it"
    try:
        key = key_bytes(setting, value)
    except ValueError as error:
        return f"{setting}: {error}"
    if len(key) < MIN_SECRET_BYTES:
        return f"{setting} must hold at least {MIN_SECRET_BYTES} random bytes"
    return None


def generated_secrets() -> dict[str, str]:
    """Fresh random secrets, one per role, as ``LEADRELAY_*`` variables."""
    webhook_key = base64.b64encode(secrets.token_bytes(GENERATED_SECRET_BYTES)).decode("ascii")
    return {
        "LEADRELAY_API_TOKEN": _token(),
        "LEADRELAY_WEBHOOK_SECRETS": f'["{SECRET_PREFIX}{webhook_key}"]',
        "LEADRELAY_HUBSPOT_CLIENT_SECRET": _token(),
        "LEADRELAY_MARKETO_TOKEN": _token(),
        "LEADRELAY_LEAD_KEY_SECRET": _token(),
    }


def _token() -> str:
    return secrets.token_urlsafe(GENERATED_SECRET_BYTES)


def write_dev_secrets(path: Path, values: Mapping[str, str]) -> None:
    """Write ``values`` as a ``.env`` file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{name}='{value}'\n" for name, value in values.items())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
