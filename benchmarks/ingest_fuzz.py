"""Fuzz ingest with 10,000 hostile requests on real Kafka; count 5xx and accepted-then-lost events.

Run by hand (not part of the suite, which runs the same cases bounded)::

    python -m benchmarks.ingest_fuzz --requests 10000 [--bootstrap HOST:PORT]

Without ``--bootstrap`` a throwaway Apache Kafka from the test harness is started. The app is
the public API driven in-process (ASGI) on a SQLite file; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.common import broker
from leadrelay.app.api import create_api
from leadrelay.app.definitions import load_definitions
from leadrelay.app.schema import upgrade_async
from leadrelay.runtime.service import open_runtime
from leadrelay.settings import load_settings
from tests.integration.ingest.hostile import (
    Credentials,
    Tally,
    draw_cases,
    missing_from,
    send_all,
)

CREDENTIALS = Credentials(
    webhook_secret="whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
    hubspot_secret=secrets.token_urlsafe(32),
    marketo_token=secrets.token_urlsafe(32),
    api_token=secrets.token_urlsafe(32),
)


async def fuzz(bootstrap: str, requests: int, seed: int, workdir: Path) -> tuple[Tally, set[str]]:
    """Send ``requests`` hostile cases; the tally and the accepted ids missing from Kafka."""
    database_url = f"sqlite+aiosqlite:///{workdir / 'fuzz.db'}"
    await upgrade_async(database_url)
    settings = load_settings(
        kafka_bootstrap=bootstrap,
        database_url=database_url,
        topic_prefix=f"fuzz-{uuid.uuid4().hex[:8]}.",
        webhook_secrets=[CREDENTIALS.webhook_secret],
        hubspot_client_secret=CREDENTIALS.hubspot_secret,
        marketo_token=CREDENTIALS.marketo_token,
        api_token=CREDENTIALS.api_token,
        lead_key_secret=secrets.token_urlsafe(32),
    )
    runtime = await open_runtime(settings)
    transport = httpx.ASGITransport(app=create_api(runtime, load_definitions(None)))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            tally = await send_all(client, draw_cases(requests, random_seed=seed), CREDENTIALS)
        prefix = settings.topic_prefix
        return tally, await missing_from(bootstrap, prefix, tally.accepted, within=120.0)
    finally:
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--bootstrap", default=None, help="an existing broker (default: start one)")
    args = parser.parse_args()
    started = time.perf_counter()
    with broker(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as workdir:
        tally, lost = asyncio.run(fuzz(bootstrap, args.requests, args.seed, Path(workdir)))
    report = {
        "requests": sum(tally.statuses.values()),
        "statuses": dict(sorted(tally.statuses.items())),
        "server_errors_5xx": tally.server_errors,
        "events_accepted": len(tally.accepted),
        "accepted_then_lost": len(lost),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
