"""The README's five-minute tour, run as the README prints it: ``leadrelay up`` on an accelerated
clock in one process, ``leadrelay simulate`` in another, and the funnel it ends with.

The commands are read from the README, so the tour a reader copies is the tour this test runs;
only the port is this test's own (a free one, told to both commands).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import leadrelay_command, wait_until_ready
from tests.harness.common import free_port
from tests.integration.runtime.effects import read_topic

pytestmark = pytest.mark.e2e
README = Path(__file__).resolve().parents[2] / "README.md"
SLA_LINE = re.compile(r"SLA clocks\s+met (\d+), breached (\d+), running (\d+)")


def tour_commands() -> tuple[tuple[dict[str, str], list[str]], tuple[dict[str, str], list[str]]]:
    """The tour's two commands from the README: (environment, leadrelay arguments) each."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## A five-minute tour") :]
    block = section[section.index("```bash") + len("```bash") : section.index("```\n", 8)]
    commands = []
    for line in block.strip().splitlines():
        words = shlex.split(line.split("#", 1)[0])
        env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
        rest = [w for w in words if not ("=" in w and not w.startswith("-"))]
        assert rest[0] == "leadrelay", line
        commands.append((env, rest[1:]))
    up, simulate = commands
    assert up[1] == ["up"]
    assert simulate[1][0] == "simulate"
    return up, simulate


def readme_funnel_labels() -> list[str]:
    """The labels of the sample funnel the README shows (rep names aside)."""
    text = README.read_text(encoding="utf-8")
    sample = text[text.index("LeadRelay simulation") :].split("```", 1)[0]
    return funnel_labels(line for line in sample.splitlines()[1:] if line.startswith("  "))


def funnel_labels(lines: Iterable[str]) -> list[str]:
    """Each line's label, the "assigned" breakdown (reps, and the fallback queue when a lead
    waits there) as one ``reps`` entry: who holds the leads depends on how far the accelerated
    clock ran while they were routed, so on the machine's load, while the report's shape does
    not."""
    labels: list[str] = []
    for line in lines:
        label = "reps" if line.startswith("    ") else re.split(r"\s{2,}", line.strip())[0]
        if not (label == "reps" and labels and labels[-1] == "reps"):
            labels.append(label)
    return labels


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    (env, args), _ = tour_commands()
    port = free_port()
    environment = {
        **_clean_environment(),
        **env,
        "LEADRELAY_HTTP_PORT": str(port),
        "LEADRELAY_METRICS_PORT": str(free_port()),  # parallel workers each run a tour
    }
    log = tmp_path / "up.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            leadrelay_command(*args), cwd=tmp_path, env=environment, stdout=sink, stderr=sink
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url, log, within=120.0)
        yield url, log
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def _clean_environment() -> dict[str, str]:
    """The reader's shell: no broker, database or clock of a test session leaks in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LEADRELAY_")}


@pytest.mark.timeout(600)
def test_the_tour_meets_sla_clocks_and_never_recycles_an_accepted_lead(
    up: tuple[str, Path], tmp_path: Path
) -> None:
    url, log = up
    _, (env, args) = tour_commands()
    result = subprocess.run(
        [*leadrelay_command(*args), "--url", url],
        env={**_clean_environment(), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout
    sla = SLA_LINE.search(printed)
    assert sla, printed
    assert int(sla.group(1)) > 0, printed  # clocks met
    funnel = printed[printed.index("LeadRelay simulation") :].split("\n\n", 1)[0]
    assert funnel_labels(funnel.splitlines()[1:]) == readme_funnel_labels(), funnel

    broker = re.search(r"leadrelay: broker\s+(\S+)", log.read_text())
    assert broker, "leadrelay up did not print where the broker listens"
    accepted = {e["data"]["lead_key"] for e in _events(broker.group(1), "sales-activity")
                if e["data"]["outcome"] == "accepted"}  # fmt: skip
    assert accepted, printed
    recycled_late = {e["data"]["lead_key"] for e in _events(broker.group(1), "recycled")
                     if e["data"]["reason"] == "sla_breached"}  # fmt: skip
    assert accepted.isdisjoint(recycled_late)


def _events(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    messages = asyncio.run(read_topic(bootstrap, f"leadrelay.{topic}", expected=1, within=30.0))
    return [json.loads(value) for _, value, _ in messages]
