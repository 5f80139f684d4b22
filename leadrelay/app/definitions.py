"""The definitions file: what marketing and sales agree on, in one YAML document.

Sections: ``lifecycle`` (what each stage means), ``scorecard`` (fit and engagement rules),
``routing`` and ``roster`` (who gets which lead), ``sla`` (how fast, and what happens when not).
Each section's model lives with the service that owns it; this module composes them, checks
references between sections, and turns every problem into a message that names its key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from services.handoff.domain import (
    DEFAULT_ROUTING_FILE,
    RosterConfig,
    RoutingConfig,
    cross_validate,
)
from services.scoring.domain import DEFAULT_SCORECARD_FILE, Scorecard
from services.scoring.domain.config import RecycleCooldown
from services.sla_monitor.domain import DEFAULT_SLA_FILE, SlaConfig

STAGES = (
    "anonymous",
    "lead",
    "mql",
    "sal",
    "sql",
    "opportunity",
    "customer",
    "recycled",
    "disqualified",
)
DEFAULT_SECTION_FILES = (
    Path(__file__).resolve().with_name("default_lifecycle.yaml"),
    DEFAULT_SCORECARD_FILE,
    DEFAULT_ROUTING_FILE,
    DEFAULT_SLA_FILE,
)
"""The shipped default, one commented file per owning team, read as one document."""


class DefinitionsError(ValueError):
    """A definitions file that cannot be used; ``str()`` lists each problem with its key."""


class Lifecycle(BaseModel):
    """Plain-language meaning of each stage (the stages themselves are fixed), and how long a
    recycled lead cools down before it can be handed to sales again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: dict[str, str] = Field(default_factory=dict)
    recycle_cooldown: RecycleCooldown = Field(default_factory=RecycleCooldown)

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, stages: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(stages) - set(STAGES))
        if unknown:
            raise ValueError(
                f"unknown stage(s) {', '.join(unknown)}; stages are {', '.join(STAGES)}"
            )
        return stages


class Definitions(BaseModel):
    """The whole definitions document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    scorecard: Scorecard
    routing: RoutingConfig
    roster: RosterConfig = Field(default_factory=RosterConfig)
    sla: SlaConfig

    @model_validator(mode="after")
    def _references_resolve(self) -> Definitions:
        cross_validate(self.routing, self.roster.reps)
        rules = {rule.id for rule in self.scorecard.engagement.rules}
        unknown = [r for r in self.lifecycle.recycle_cooldown.unless if r not in rules]
        if unknown:
            names = ", ".join(unknown)
            raise ValueError(f"lifecycle.recycle_cooldown.unless: unknown engagement rule {names}")
        return self

    def summary(self) -> str:
        """One line for ``check-config``: what the file defines."""
        return (
            f"scorecard {self.scorecard.version}, {len(self.scorecard.fit.rules)} fit and "
            f"{len(self.scorecard.engagement.rules)} engagement rules, "
            f"{len(self.routing.rules)} routing rules, {len(self.roster.reps)} reps, "
            f"{len(self.roster.accounts)} accounts, {len(self.sla.policies)} SLA policies"
        )


def default_definitions_text() -> str:
    """The shipped default as one YAML document (``check-config --print-default`` shows it)."""
    return "\n".join(path.read_text(encoding="utf-8") for path in DEFAULT_SECTION_FILES)


def load_definitions(path: Path | None = None) -> Definitions:
    """Read and validate ``path`` (the shipped default when None)."""
    if path is None:
        return parse_definitions(default_definitions_text(), source="default definitions")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DefinitionsError(f"cannot read the file: {error.strerror}") from error
    return parse_definitions(text, source=str(path))


def parse_definitions(text: str, *, source: str = "definitions") -> Definitions:
    """Validate YAML text; every problem is reported as ``key.path[index]: message``."""
    try:
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise DefinitionsError(f"{where}not valid YAML: {error.problem}") from error
    if not isinstance(document, dict):
        raise DefinitionsError(
            f"{source} must be a mapping with the sections lifecycle, "
            "scorecard, routing, roster and sla"
        )
    try:
        return Definitions.model_validate(document)
    except ValidationError as error:
        raise DefinitionsError(_describe(error)) from error


def _describe(error: ValidationError) -> str:
    lines = [f"{_key_path(e['loc'])}: {_message(e)}" for e in error.errors()]
    count = f"{len(lines)} problem{'s' if len(lines) > 1 else ''}"
    return count + ":\n" + "\n".join(f"  {line}" for line in lines)


def _key_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not part.startswith(("function-", "tagged-union")):
            path += f".{part}" if path else part
    return path or "(top level)"


def _message(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key (misspelt, or not allowed here)"
    if error["type"] == "missing":
        return "required key is missing"
    return message.removeprefix("Value error, ")
