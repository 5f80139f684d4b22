"""Settings refuse unsafe production defaults; lead keys are stable and never expose the email."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from leadrelay.app.cli import main
from leadrelay.identity import InvalidEmailError, lead_key, normalise_email
from leadrelay.settings import DEV_SECRET, load_settings


def real_secrets(**changes: object) -> dict[str, Any]:
    """Production secrets that pass: each role its own 32 random-looking bytes."""
    values: dict[str, Any] = {
        "api_token": "api-3q2+7w8Jd0fK1LxZp9sVbN4mQe6",
        "webhook_secrets": ["whsec_" + base64.b64encode(b"w" * 8 + bytes(range(24))).decode()],
        "hubspot_client_secret": "f1c3a2b4-9d8e-4f7a-8b6c-5d4e3f2a1b0c",
        "marketo_token": "mkto-Yh7Tg5Rf3Ed1Ws9Qa8Zx6Cv4Bn2",
        "lead_key_secret": "lk-P0o9I8u7Y6t5R4e3W2q1A0s9D8f7",
    }
    return {"environment": "production", **values, **changes}


def test_production_refuses_to_start_with_default_secrets() -> None:
    with pytest.raises(ValidationError) as refused:
        load_settings(**real_secrets(webhook_secrets=[DEV_SECRET], lead_key_secret=DEV_SECRET))
    message = str(refused.value)
    assert "webhook_secrets is the public dev default" in message
    assert "lead_key_secret is the public dev default" in message
    assert "api_token" not in message


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("api_token", "x"),
        ("marketo_token", "23-bytes-are-not-enough"),
        ("webhook_secrets", ["whsec_" + base64.b64encode(bytes(23)).decode()]),
    ],
)
def test_production_wants_at_least_24_bytes_in_every_secret(setting: str, value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        load_settings(**real_secrets(**{setting: value}))
    assert f"{setting} must hold at least 24 random bytes" in str(refused.value)


def test_production_refuses_two_roles_sharing_one_secret() -> None:
    shared = "one-secret-for-two-roles-0123456789"
    with pytest.raises(ValidationError) as refused:
        load_settings(**real_secrets(api_token=shared, lead_key_secret=shared))
    assert "api_token and lead_key_secret share a secret" in str(refused.value)


def test_production_accepts_real_secrets() -> None:
    settings = load_settings(**real_secrets())
    assert settings.environment == "production"


def test_the_refusal_never_prints_any_part_of_a_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = "Kq8s-Zw3x-Yv7u-Tq"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADRELAY_ENVIRONMENT", "production")
    monkeypatch.setenv("LEADRELAY_LEAD_KEY_SECRET", secret)
    monkeypatch.setenv("LEADRELAY_API_TOKEN", "x")
    with pytest.raises(SystemExit) as refused:
        main(["migrate"])
    printed = str(refused.value.code)
    assert "lead_key_secret must hold at least 24 random bytes" in printed
    pieces = {secret[i : i + 4] for i in range(len(secret) - 3)}
    assert not [piece for piece in pieces if piece in printed]
    assert "input_value" not in printed


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADRELAY_TOPIC_PREFIX", "acme.")
    monkeypatch.setenv("LEADRELAY_TOPIC_PARTITIONS", "12")
    settings = load_settings()
    assert settings.topic("web-activity") == "acme.web-activity"
    assert settings.topic_partitions == 12


def test_the_same_person_gets_the_same_lead_key_however_the_email_is_typed() -> None:
    assert lead_key(" Ada@Example.COM ", "k") == lead_key("ada@example.com", "k")
    assert lead_key("ada@example.com", "k") != lead_key("ada+news@example.com", "k")


def test_lead_keys_do_not_expose_the_email_and_depend_on_the_secret() -> None:
    key = lead_key("ada@example.com", "k")
    assert "ada" not in key
    assert "example" not in key
    assert key.startswith("lk_")
    assert lead_key("ada@example.com", "other") != key


@pytest.mark.parametrize("raw", ["", "ada", "ada@", "@example.com", "ada@example", "a b@x.com"])
def test_text_that_is_not_an_email_is_refused(raw: str) -> None:
    with pytest.raises(InvalidEmailError):
        normalise_email(raw)
