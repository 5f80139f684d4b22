"""Settings refuse unsafe production defaults; lead keys are stable and never expose the email."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from leadrelay.identity import InvalidEmailError, lead_key, normalise_email
from leadrelay.settings import load_settings


def test_production_refuses_to_start_with_default_secrets() -> None:
    with pytest.raises(ValidationError) as refused:
        load_settings(environment="production", api_token=SecretStr("a-real-token"))
    message = str(refused.value)
    assert "webhook_secrets" in message
    assert "lead_key_secret" in message
    assert "api_token" not in message.split("set these secrets for production:")[1]


def test_production_accepts_real_secrets() -> None:
    real = SecretStr("s3cr3t-value")
    settings = load_settings(
        environment="production",
        api_token=real,
        webhook_secrets=[real],
        hubspot_client_secret=real,
        marketo_token=real,
        lead_key_secret=real,
    )
    assert settings.environment == "production"


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
