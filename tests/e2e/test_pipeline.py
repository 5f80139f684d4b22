"""End to end: ``leadrelay up`` started as a user starts it, driven over HTTP, read from Kafka.

Runs on the embedded broker (what a laptop gets) and on Apache Kafka (what production runs).
The instance runs an accelerated clock, so a one-business-hour SLA passes in seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadrelay.credentials import DEV_SECRETS_FILE, parse_secret
from leadrelay.identity import lead_key
from leadrelay.settings import DEV_SECRET, Settings
from services.ingest.domain.signatures import sign_standard_webhook
from tests.e2e.processes import leadrelay_command, wait_until_ready
from tests.harness.common import free_port
from tests.integration.runtime.effects import Message, read_topic

pytestmark = pytest.mark.e2e
CLOCK_SPEED = 600  # one business hour passes in six seconds (the demo reps work around the clock)
START_WITHIN = 120.0


@dataclass
class Instance:
    """A running ``leadrelay up`` and how to reach it."""

    process: subprocess.Popen[bytes]
    url: str
    bootstrap: str
    prefix: str
    log: Path
    directory: Path
    metrics_url: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(params=["embedded", "apache-kafka"])
def instance(
    request: pytest.FixtureRequest, tmp_path: Path, unique_topic_prefix: str
) -> Iterator[Instance]:
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "LEADRELAY_HTTP_PORT": str(port),
        "LEADRELAY_METRICS_PORT": str(metrics_port),
        "LEADRELAY_CLOCK_SPEED": str(CLOCK_SPEED),
        "LEADRELAY_SLA_POLL_SECONDS": "0.2",
    }
    env.pop("LEADRELAY_KAFKA_BOOTSTRAP", None)
    env.pop("LEADRELAY_DATABASE_URL", None)
    prefix = "leadrelay."
    if request.param == "apache-kafka":
        env["LEADRELAY_KAFKA_BOOTSTRAP"] = request.getfixturevalue("kafka_bootstrap")
        prefix = unique_topic_prefix
        env["LEADRELAY_TOPIC_PREFIX"] = prefix
    log = tmp_path / "leadrelay-up.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            leadrelay_command("up"), cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        bootstrap = _wait_until_ready(process, url, log)
        metrics_url = f"http://127.0.0.1:{metrics_port}"
        yield Instance(process, url, bootstrap, prefix, log, tmp_path, metrics_url)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> str:
    """Wait for ``leadrelay up``; return the broker address it printed."""
    wait_until_ready(process, url, log, within=START_WITHIN)
    found = re.search(r"leadrelay: broker\s+(\S+)", log.read_text())
    assert found, "leadrelay up did not print where the broker listens"
    return found.group(1)


class Client:
    """What a marketing platform and a CRM do to LeadRelay over HTTP."""

    def __init__(self, instance: Instance) -> None:
        secrets = Settings(_env_file=instance.directory / DEV_SECRETS_FILE)
        self.webhook_key = parse_secret(secrets.webhook_secrets[0].get_secret_value())
        self.lead_key_secret = secrets.lead_key_secret.get_secret_value()
        assert self.lead_key_secret != DEV_SECRET, "leadrelay up generated no dev secrets"
        self.http = httpx.Client(base_url=instance.url, timeout=15)
        self.api = {"Authorization": f"Bearer {secrets.api_token.get_secret_value()}"}

    def send(self, event_type: str, event_id: str, data: dict[str, Any]) -> None:
        event = {
            "specversion": "1.0",
            "id": event_id,
            "source": "e2e",
            "type": event_type,
            "time": _now(),
            "data": data,
        }
        body = json.dumps(event).encode()
        stamp = int(time.time())
        headers = {
            "content-type": "application/cloudevents+json",
            "webhook-id": event_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_standard_webhook(self.webhook_key, event_id, stamp, body),
        }
        response = self.http.post("/v1/events", content=body, headers=headers)
        assert response.status_code == 202, response.text

    def sales_activity(self, key: str, rep_id: str, outcome: str, reason: str = "") -> None:
        body = {"lead_key": key, "rep_id": rep_id, "outcome": outcome, "occurred_at": _now()}
        if reason:
            body["reason"] = reason
        response = self.http.post("/v1/sales-activity", json=body, headers=self.api)
        assert response.status_code == 202, response.text

    def lead(self, key: str) -> dict[str, Any] | None:
        response = self.http.get(f"/v1/leads/{key}", headers=self.api)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view

    def wait_for_lead(self, key: str, condition: Any, within: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        view = None
        while time.monotonic() < deadline:
            view = self.lead(key)
            if view is not None and condition(view):
                return view
            time.sleep(0.3)
        raise AssertionError(f"lead never reached the expected state; last view: {view}")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def hot_lead(client: Client, name: str) -> str:
    """A VP at a 400-person software company browses, fills the demo form: sales-ready."""
    email = f"{name}@bigsoft-{name}.example"
    visitor = f"visitor-{name}"
    client.send(
        "leadrelay.web_activity.v1",
        f"{name}-view",
        {
            "anonymous_id": visitor,
            "action": "pricing_page_view",
            "url": "https://www.example.com/pricing",
            "occurred_at": _now(),
            "source": "generic",
        },
    )
    client.send(
        "leadrelay.form_submitted.v1",
        f"{name}-form",
        {
            "email": email,
            "anonymous_id": visitor,
            "form_id": "demo-request",
            "occurred_at": _now(),
            "source": "generic",
            "profile": {
                "first_name": name.title(),
                "job_title": "VP Sales",
                "company": "BigSoft",
                "company_size": 400,
                "industry": "software",
                "country": "US",
            },
        },
    )
    return lead_key(email, client.lead_key_secret)


def test_leads_flow_from_marketing_to_sales_and_back(instance: Instance) -> None:
    client = Client(instance)
    accepted, rejected, ignored = (hot_lead(client, n) for n in ("ada", "bob", "cyd"))
    has_assignment = lambda view: bool(view.get("assignment"))  # noqa: E731
    views = {
        key: client.wait_for_lead(key, has_assignment) for key in (accepted, rejected, ignored)
    }

    assignment = views[accepted]["assignment"]
    assert views[accepted]["stage"] == "mql"
    assert assignment["rep_id"]
    assert assignment["trace"]["chosen"]["rep_id"] == assignment["rep_id"]

    client.sales_activity(accepted, assignment["rep_id"], "contacted")
    client.sales_activity(accepted, assignment["rep_id"], "accepted")
    client.sales_activity(
        rejected, views[rejected]["assignment"]["rep_id"], "rejected", reason="no budget"
    )
    assert client.wait_for_lead(accepted, lambda v: v["stage"] == "sal")["stage"] == "sal"
    assert client.wait_for_lead(rejected, lambda v: v["stage"] == "recycled")["stage"] == "recycled"

    # Nobody touches the third lead: its first-touch SLA breaches and escalates. Warnings for
    # all three leads come first, so wait for the escalation itself before reading the topic.
    client.wait_for_lead(ignored, _has_escalated, within=120)

    def escalated(events: list[Any]) -> list[Any]:
        return [
            e
            for e in events
            if e["type"] == "leadrelay.sla_escalated.v1" and e["data"]["lead_key"] == ignored
        ]

    sla_events = _read(instance, "sla-events", expected=1, within=60, until=escalated)
    assert escalated(sla_events), [e["type"] for e in sla_events]

    assignments = [
        e
        for e in _read(instance, "assignments", expected=3)
        if e["type"] == "leadrelay.lead_assigned.v1"
    ]
    per_lead = [e["data"]["lead_key"] for e in assignments if e["data"]["attempt"] == 1]
    assert sorted(per_lead) == sorted([accepted, rejected, ignored])  # exactly once each
    context = next(e for e in assignments if e["data"]["lead_key"] == accepted)["data"]
    assert context["context"]["profile"]["job_title"] == "VP Sales"
    assert context["context"]["breakdown"]
    assert context["sla"]["first_touch_due"]
    recycled = _read(instance, "recycled", expected=1)
    assert any(e["data"]["lead_key"] == rejected for e in recycled)
    _reports_and_console_read_the_run(client)


def _reports_and_console_read_the_run(client: Client) -> None:
    """Reporting consumed the flow above; the console and /docs are served locally."""
    deadline = time.monotonic() + 60
    stages: dict[str, int] = {}
    while time.monotonic() < deadline:
        rows = client.http.get("/v1/reports/funnel", headers=client.api).json()["rows"]
        stages = {row["stage"]: row["entered"] for row in rows}
        if stages["sal"] >= 1 and stages["recycled"] >= 1 and stages["mql"] >= 3:
            break
        time.sleep(0.3)
    assert stages["mql"] >= 3, stages
    assert stages["sal"] >= 1, stages
    assert stages["recycled"] >= 1, stages
    sla = client.http.get("/v1/reports/sla", headers=client.api, params={"by": "policy"})
    assert sum(row["breached"] for row in sla.json()["rows"]) >= 1
    csv = client.http.get("/v1/reports/routing", headers=client.api | {"accept": "text/csv"})
    assert csv.text.startswith("kind,rep,assignments")
    assert client.http.get("/console/login").status_code == 200
    assert "GET /v1/reports/funnel" in client.http.get("/docs").text


def _has_escalated(view: dict[str, Any]) -> bool:
    return any(
        step["step"] == "escalate"
        for clock in view.get("sla_clocks", [])
        for step in clock["steps_taken"]
    )


def test_metrics_are_only_on_the_private_port_and_ctrl_c_stops_everything_cleanly(
    instance: Instance,
) -> None:
    assert httpx.get(f"{instance.url}/metrics", timeout=15).status_code == 404
    private = httpx.get(f"{instance.metrics_url}/metrics", timeout=15)
    assert "leadrelay_ingest_requests_total" in private.text
    assert "WARNING: dev mode" in instance.output()
    instance.process.send_signal(signal.SIGINT)
    assert instance.process.wait(timeout=60) == 0
    assert "stopped cleanly" in instance.output()


def _read(
    instance: Instance,
    topic: str,
    *,
    expected: int,
    within: float = 30,
    until: Callable[[list[Any]], object] | None = None,
) -> list[Any]:
    """The CloudEvents on ``topic``: at least ``expected``, and ``until`` holds if given."""
    import asyncio

    def decoded(messages: list[Message]) -> list[Any]:
        return [json.loads(value) for _, value, _ in messages]

    holds = None if until is None else (lambda messages: bool(until(decoded(messages))))
    messages = asyncio.run(
        read_topic(
            instance.bootstrap,
            f"{instance.prefix}{topic}",
            expected=expected,
            within=within,
            until=holds,
        )
    )
    return decoded(messages)
