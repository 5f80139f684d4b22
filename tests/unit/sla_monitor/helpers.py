"""Shared test helpers: local wall-clock instants and the shipped ``sla:`` section."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from services.sla_monitor.domain import DEFAULT_SLA_FILE

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def new_york(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


def default_sla_section() -> dict[str, Any]:
    document = yaml.safe_load(DEFAULT_SLA_FILE.read_text(encoding="utf-8"))
    section: dict[str, Any] = document["sla"]
    return section
