"""The registry knows every service package, and the CLI offers exactly the registered services."""

from __future__ import annotations

from pathlib import Path

import services
from leadrelay.app.cli import _parser
from leadrelay.app.registry import MIGRATION_BRANCHES, REGISTRY, SERVICES


def test_every_service_package_is_registered_with_its_own_migrations() -> None:
    """A new service with a migrations/ directory cannot be left out of ``leadrelay migrate``."""
    root = Path(services.__file__).resolve().parent
    packages = {path.parent.parent for path in root.glob("*/migrations/__init__.py")}
    assert {branch.parent for branch in MIGRATION_BRANCHES} == packages
    assert all(entry.migrations.parent.parent == root for entry in REGISTRY)


def test_leadrelay_run_accepts_the_registered_names() -> None:
    assert SERVICES == ("ingest", "scoring", "handoff", "sla-monitor", "archive", "reporting")
    args = _parser().parse_args(["run", "sla-monitor"])
    assert args.service == "sla-monitor"
    assert _parser().parse_args(["run", "reporting"]).service == "reporting"
