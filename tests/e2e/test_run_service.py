"""``leadrelay run <service>`` as a container runs it: an orchestrator stops it with SIGTERM.

Kubernetes sends SIGTERM and waits for the grace period; a service that ignored it, or died
half-way, would be killed with work in flight. Here one service is started on Apache Kafka and
SQLite, does some work, gets SIGTERM, and must finish cleanly with exit status 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leadrelay.contracts.topics import Topic
from tests.e2e.processes import leadrelay_command, wait_until_ready
from tests.harness.common import free_port
from tests.integration.runtime.effects import produce, read_topic
from tests.unit.scoring.service_events import ADA_KEY, form

pytestmark = pytest.mark.e2e
READY_WITHIN = 90.0
STOP_WITHIN = 60.0


def test_a_service_stops_cleanly_on_sigterm_after_doing_its_work(
    kafka_bootstrap: str, unique_topic_prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LEADRELAY_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEADRELAY_TOPIC_PREFIX": unique_topic_prefix,
        "LEADRELAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leadrelay.db'}",
        "LEADRELAY_METRICS_PORT": str(port),
    }
    subprocess.run(leadrelay_command("migrate"), cwd=tmp_path, env=env, check=True, timeout=120)
    log = tmp_path / "scoring.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            leadrelay_command("run", "scoring"),
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}", log, within=READY_WITHIN)
        forms = f"{unique_topic_prefix}{Topic.FORM_SUBMISSIONS.value}"
        scores = f"{unique_topic_prefix}{Topic.LEAD_SCORES.value}"
        asyncio.run(produce(kafka_bootstrap, forms, [form("form-1", datetime.now(UTC))]))
        scored = asyncio.run(read_topic(kafka_bootstrap, scores, expected=1, within=60))
        assert [key for key, _value, _headers in scored] == [ADA_KEY.encode()]

        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=STOP_WITHIN)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text(errors="replace")
    assert status == 0, output[-4000:]
    assert "stopped cleanly" in output
    assert "Traceback" not in output
