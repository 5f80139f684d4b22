"""In dev, ``leadrelay up`` warns once per start and makes this install's own secrets once."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from leadrelay.app import cli
from leadrelay.credentials import DEV_SECRETS_FILE
from leadrelay.settings import DEV_SECRET, load_settings


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh directory with no LEADRELAY_ secret in the environment."""
    monkeypatch.chdir(tmp_path)
    for name in ("API_TOKEN", "WEBHOOK_SECRETS", "MARKETO_TOKEN", "LEAD_KEY_SECRET"):
        monkeypatch.delenv(f"LEADRELAY_{name}", raising=False)
    monkeypatch.delenv("LEADRELAY_HUBSPOT_CLIENT_SECRET", raising=False)
    return tmp_path


def test_the_first_up_generates_distinct_secrets_and_names_them_without_showing_them(
    install: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = cli._dev_mode()
    first = capsys.readouterr()
    values = [v for vs in settings.secret_values().values() for v in vs]
    assert DEV_SECRET not in values
    assert len(set(values)) == len(values)
    assert not [value for value in values if value in first.out + first.err]
    assert all(f"LEADRELAY_{name.upper()}" in first.out for name in settings.secret_values())
    assert "leadrelay simulate" in first.out
    [curl] = [line.strip() for line in first.out.splitlines() if line.strip().startswith("curl")]
    header = curl.removeprefix("curl -H ").rsplit(" ", 1)[0]
    shell = subprocess.run(["sh", "-c", f"printf %s {header}"], capture_output=True, text=True)
    assert shell.stdout == f"Authorization: Bearer {settings.api_token.get_secret_value()}"
    assert len(first.err.strip().splitlines()) == 1
    assert "WARNING" in first.err
    assert stat.S_IMODE((install / DEV_SECRETS_FILE).stat().st_mode) == 0o600

    again = cli._dev_mode()
    second = capsys.readouterr()
    assert again.secret_values() == settings.secret_values()
    assert not [value for value in values if value in second.out + second.err]
    assert len(second.err.strip().splitlines()) == 1


def test_every_command_of_this_install_reads_the_generated_secrets(
    install: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated = cli._dev_mode()
    assert cli._settings().secret_values() == generated.secret_values()  # simulate's settings
    monkeypatch.setenv("LEADRELAY_API_TOKEN", "chosen-by-the-developer")
    assert cli._settings().api_token.get_secret_value() == "chosen-by-the-developer"
    monkeypatch.delenv("LEADRELAY_API_TOKEN")
    assert load_settings().api_token.get_secret_value() == DEV_SECRET  # tests pass their own


def test_production_never_reads_the_dev_secrets(
    install: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli._dev_mode()
    monkeypatch.setenv("LEADRELAY_ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="public dev default"):
        load_settings(DEV_SECRETS_FILE)
