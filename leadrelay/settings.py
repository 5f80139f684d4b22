"""One settings object per process, read from ``LEADRELAY_*`` variables and an optional ``.env``.

Nothing here is built at import time: call :func:`load_settings` from a bootstrap or a CLI command.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from leadrelay.credentials import SECRET_SETTINGS, production_problems
from leadrelay.durations import parse_elapsed

DEV_SECRET = "dev-only-change-me"  # noqa: S105 - refused in production by the validator


class Settings(BaseSettings):
    """Everything an operator can tune: each field is read from ``LEADRELAY_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="LEADRELAY_", env_file=".env", extra="ignore")

    environment: Literal["dev", "production"] = "dev"
    kafka_bootstrap: str | None = None
    """Unset: `leadrelay up` starts an embedded broker; a service run alone requires it."""
    kafka_idempotence: bool = True
    """The idempotent producer; off for brokers without it (the embedded Tansu)."""
    topic_prefix: str = "leadrelay."
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    database_url: str = "sqlite+aiosqlite:///.leadrelay/leadrelay.db"
    definitions: Path | None = None
    """The definitions file (YAML); unset means the default shipped with the package."""

    consumer_batch_size: int = Field(default=200, ge=1)
    consumer_transaction_batch: int = Field(default=50, ge=1)
    """Consecutive events of one partition applied in one database transaction."""
    handler_max_attempts: int = Field(default=3, ge=1)
    """A message whose handler fails this many times goes to the dead-letter topic."""
    retry_backoff_seconds: float = Field(default=0.2, ge=0)
    broker_backoff_max_seconds: float = Field(default=10.0, gt=0)
    instance_id: str | None = Field(default=None, min_length=1, max_length=200)
    """This instance's stable name (a StatefulSet pod's, a host's): static Kafka group
    membership, so a restarted instance takes its partitions back at once instead of after the
    session timeout. Unset: dynamic membership. Two live instances must never share one."""
    outbox_poll_seconds: float = Field(default=5.0, gt=0)
    """The outbox relay's safety poll only: it wakes on every commit (in-process, and by
    PostgreSQL ``LISTEN/NOTIFY`` across processes), so latency does not depend on this."""
    outbox_batch_size: int = Field(default=500, ge=1)

    public_url: str | None = None
    """The scheme and host senders call (``https://hooks.example.com``): HubSpot v3 signs it."""
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)
    """Comma-separated addresses or networks of the proxies in front of ingest; only their
    ``X-Forwarded-Host``/``X-Forwarded-Proto`` are believed (for the HubSpot v3 URL)."""

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    """Where services without an HTTP API expose /metrics, /healthz and /readyz."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_event_bytes: int = Field(default=1_000_000, ge=1024, le=1_048_000)
    """The largest encoded event ingest accepts (413 above it): below the producer's
    ``max_request_size`` and the broker's ``message.max.bytes`` (both about 1 MiB by default),
    so an event answered 202 is never one the broker refuses. Raise all three together."""
    max_batch_events: int = Field(default=500, ge=1, le=10_000)
    """The most events (items) one request may carry; 413 above it. With it, producing a whole
    batch fits ``produce_timeout_seconds``."""
    produce_timeout_seconds: float = Field(default=10.0, gt=0)
    """One deadline for every event of a request to be acknowledged; past it, 503."""

    api_token: SecretStr = SecretStr(DEV_SECRET)
    webhook_secrets: list[SecretStr] = Field(default_factory=lambda: [SecretStr(DEV_SECRET)])
    """Standard Webhooks secrets; several are accepted during a rotation."""
    hubspot_client_secret: SecretStr = SecretStr(DEV_SECRET)
    marketo_token: SecretStr = SecretStr(DEV_SECRET)
    lead_key_secret: SecretStr = SecretStr(DEV_SECRET)
    """Keys lead ids to emails without exposing them; changing it re-keys every lead."""
    webhook_tolerance_seconds: int = Field(default=300, ge=1)

    clock_speed: float = Field(default=1.0, gt=0)
    """SLA clock acceleration for demos (`leadrelay simulate`); 1.0 in production."""
    sla_poll_seconds: float = Field(default=1.0, gt=0)
    sla_forecast_seconds: float = Field(default=30.0, gt=0)
    """How often the SLA monitor forecasts its running clocks (in the SLA clock's time: divided
    by ``clock_speed``, never more often than ``sla_poll_seconds``)."""
    retention_sweep_seconds: float = Field(default=3600.0, gt=0)
    """How often retention sweeps run: scoring's idle visitors (the scorecard's
    ``engagement.retention``), the archive's old events, the runtime's inbox and sent outbox."""
    state_retention_days: float = Field(default=7.0, gt=0)
    """How long inbox and sent-outbox rows are kept. The inbox recognises redeliveries, so keep
    it longer than the retention of every topic a service consumes."""
    archive_retention: timedelta = timedelta(days=180)
    """How long the archive keeps input events for ``leadrelay replay`` (``"180d"``, ``"26w"``)."""

    @field_validator("archive_retention", mode="before")
    @classmethod
    def _elapsed(cls, value: object) -> timedelta:
        return parse_elapsed(value)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_secrets_in_production(self) -> Settings:
        """Production refuses the dev default, short secrets and one secret in two roles.

        The refusal names settings only: no message ever carries a secret or part of one.
        """
        if self.environment != "production":
            return self
        problems = production_problems(self.secret_values(), DEV_SECRET)
        if problems:
            raise ValueError("unsafe secrets for production: " + "; ".join(problems))
        if self.clock_speed != 1.0:
            raise ValueError("clock_speed must be 1.0 in production")
        return self

    def secret_values(self) -> dict[str, list[str]]:
        """Every secret setting and its values (a list: webhook secrets rotate)."""
        values: dict[str, list[str]] = {}
        for name in SECRET_SETTINGS:
            value: SecretStr | list[SecretStr] = getattr(self, name)
            values[name] = [
                v.get_secret_value() for v in (value if isinstance(value, list) else [value])
            ]
        return values

    def topic(self, logical_name: str) -> str:
        """The real topic name of a logical one (``web-activity`` -> ``leadrelay.web-activity``)."""
        return f"{self.topic_prefix}{logical_name}"


def load_settings(dev_secrets: Path | None = None, /, **overrides: object) -> Settings:
    """Build settings from the environment; tests pass overrides instead of patching it.

    In dev, the per-install secrets ``leadrelay up`` generated (``dev_secrets``, the CLI passes
    ``.leadrelay/dev-secrets.env``) fill every secret the environment and ``.env`` leave unset.
    """
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if settings.environment == "dev" and dev_secrets is not None and dev_secrets.is_file():
        files = (dev_secrets, ".env")  # the later file wins, the environment over both
        settings = Settings(_env_file=files, **overrides)  # type: ignore[arg-type]
    return settings


def describe_refusal(error: ValidationError | SettingsError) -> str:
    """Why settings were refused, for a person: each setting and what is wrong with it.

    Never the value given (pydantic's ``input_value``): it may be a secret.
    """
    if isinstance(error, SettingsError):
        return f"  {error}"
    lines = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        where = ".".join(str(part) for part in item["loc"]) or "settings"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)
