"""The roster API on a real SQLite store: seeded from the file, edited over HTTP, validated with
problem details naming each field, and read by the very next routing decision."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.handoff.api import PROBLEM_JSON, roster_router
from services.handoff.domain import Account
from tests.unit import delivery
from tests.unit.handoff.builders import AROUND_THE_CLOCK, make_rep
from tests.unit.handoff.support import (
    HandoffHarness,
    definitions_with,
    handoff_harness,
    sales_ready,
)

TOKEN = "test-token"
ROSTER_TOPIC = "leadrelay.roster"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACCOUNT = Account(id="acct-1", name="Acme", domains=("acme.example",), owner_rep_id="sdr-a")
DEFINITIONS = definitions_with(
    [make_rep("sdr-a"), make_rep("sdr-b")], (ACCOUNT,), regions={"emea": ["DE", "FR"]}
)


@pytest.fixture
async def handoff(tmp_path: Path) -> AsyncIterator[HandoffHarness]:
    async with handoff_harness(tmp_path, DEFINITIONS) as harness:
        yield harness


@pytest.fixture
async def client(handoff: HandoffHarness) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.api_token = TOKEN
    router = roster_router(handoff.store, DEFINITIONS.routing, DEFINITIONS.roster, ROSTER_TOPIC)
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def rep_body(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Zoe",
        "role": "sdr",
        "team": "core",
        "email": "zoe@example.com",
        "working_hours": AROUND_THE_CLOCK,
    } | fields


async def test_every_route_needs_the_bearer_token(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/v1/reps"),
        ("PUT", "/v1/reps/x"),
        ("GET", "/v1/accounts"),
        ("PUT", "/v1/accounts/x"),
    ]:
        response = await client.request(method, path, json={})
        assert response.status_code == 401, path


async def test_the_roster_starts_as_the_definitions_file_says(client: httpx.AsyncClient) -> None:
    reps = (await client.get("/v1/reps", headers=AUTH)).json()["reps"]
    accounts = (await client.get("/v1/accounts", headers=AUTH)).json()["accounts"]
    assert [rep["id"] for rep in reps] == ["sdr-a", "sdr-b"]
    assert accounts == [ACCOUNT.model_dump(mode="json")]


async def test_a_rep_is_created_then_replaced_and_the_file_never_overwrites_the_edit(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="services.handoff")
    created = await client.put("/v1/reps/sdr-zoe", json=rep_body(), headers=AUTH)
    assert created.status_code == 201
    assert created.json()["id"] == "sdr-zoe"
    replaced = await client.put("/v1/reps/sdr-a", json=rep_body(name="Ana", weight=3), headers=AUTH)
    assert replaced.status_code == 200

    reps = {r["id"]: r for r in (await client.get("/v1/reps", headers=AUTH)).json()["reps"]}
    assert set(reps) == {"sdr-a", "sdr-b", "sdr-zoe"}
    assert (reps["sdr-a"]["name"], reps["sdr-a"]["weight"]) == ("Ana", 3)
    ours = [r for r in caplog.records if r.name.startswith("services.handoff")]
    assert ours
    assert not any("@" in record.getMessage() for record in ours)


async def test_a_changed_rep_is_announced_on_the_roster_topic_without_the_email(
    client: httpx.AsyncClient, handoff: HandoffHarness
) -> None:
    away = {"start": "2025-06-04T14:00:00", "end": "2025-06-05T09:00:00"}  # on Zoe's clock
    body = rep_body(time_zone="Europe/Berlin", manager="mgr-max", out_of_office=[away])
    await client.put("/v1/reps/sdr-zoe", json=body, headers=AUTH)
    await client.put("/v1/reps/sdr-zoe", json=body, headers=AUTH)  # the same again: no change

    (event,) = await delivery.published(handoff.store, ROSTER_TOPIC)
    assert (event.type, event.subject) == ("leadrelay.rep_updated.v1", "sdr-zoe")
    assert event.data["rep"]["team"] == "core"
    assert event.data["rep"]["manager"] == "mgr-max"
    assert event.data["out_of_office"] == [
        {"start": "2025-06-04T12:00:00Z", "end": "2025-06-05T07:00:00Z"}
    ]
    assert event.data["active"] is True
    assert "@" not in event.to_bytes().decode()

    await client.put("/v1/reps/sdr-zoe", json=body | {"out_of_office": []}, headers=AUTH)
    assert [e.data["out_of_office"] for e in await delivery.published(handoff.store, ROSTER_TOPIC)][
        -1
    ] == []


async def test_a_bad_rep_gets_problem_details_naming_each_field(
    client: httpx.AsyncClient,
) -> None:
    response = await client.put(
        "/v1/reps/sdr-zoe",
        json=rep_body(
            role="manager",
            territories=["DE", "narnia"],
            teritories=["DE"],
            working_hours={"mon": ["9-5"]},
        ),
        headers=AUTH,
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    pointers = {error["pointer"] for error in response.json()["errors"]}
    assert pointers == {"/role", "/teritories", "/working_hours/mon/0"}

    unknown_region = await client.put(
        "/v1/reps/sdr-zoe", json=rep_body(territories=["DE", "narnia"]), headers=AUTH
    )
    assert unknown_region.status_code == 422
    [error] = unknown_region.json()["errors"]
    assert error["pointer"] == "/territories/1"
    assert "narnia" in error["detail"]


async def test_the_path_decides_the_id(client: httpx.AsyncClient) -> None:
    mismatch = await client.put("/v1/reps/sdr-zoe", json=rep_body(id="sdr-other"), headers=AUTH)
    assert [e["pointer"] for e in mismatch.json()["errors"]] == ["/id"]
    email_as_id = await client.put("/v1/reps/zoe@example.com", json=rep_body(), headers=AUTH)
    assert email_as_id.status_code == 422
    assert "zoe@example.com" not in email_as_id.text


async def test_an_account_must_name_a_known_owner_and_its_own_domains(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "name": "Globex",
        "domains": ["globex.example", "acme.example"],
        "owner_rep_id": "sdr-nobody",
    }
    response = await client.put("/v1/accounts/acct-2", json=body, headers=AUTH)
    assert response.status_code == 422
    assert {e["pointer"] for e in response.json()["errors"]} == {"/owner_rep_id", "/domains/1"}

    fixed = body | {"domains": ["globex.example"], "owner_rep_id": "sdr-b"}
    assert (await client.put("/v1/accounts/acct-2", json=fixed, headers=AUTH)).status_code == 201
    # Moving a domain between accounts: the account that has it may keep it.
    again = ACCOUNT.model_dump(mode="json") | {"owner_rep_id": "sdr-b"}
    assert (await client.put("/v1/accounts/acct-1", json=again, headers=AUTH)).status_code == 200


async def test_routing_uses_an_edit_from_the_next_lead_on(
    client: httpx.AsyncClient, handoff: HandoffHarness
) -> None:
    await handoff.deliver(sales_ready("lk_1"))
    inactive = make_rep("sdr-a", active=False).model_dump(mode="json")
    assert (await client.put("/v1/reps/sdr-a", json=inactive, headers=AUTH)).status_code == 200
    await handoff.deliver(sales_ready("lk_2"), sales_ready("lk_3"))

    events = [e.data for e in await handoff.assigned()]
    assert [e["rep_id"] for e in events] == ["sdr-a", "sdr-b", "sdr-b"]
    assert {"rep_id": "sdr-a", "reason": "inactive"} in events[1]["trace"]["skipped"]


async def test_the_reps_list_shows_each_reps_expected_and_actual_share(
    handoff: HandoffHarness, client: httpx.AsyncClient
) -> None:
    await handoff.deliver(sales_ready("lk_1"), sales_ready("lk_2"), sales_ready("lk_3"))

    fairness = (await client.get("/v1/reps", headers=AUTH)).json()["fairness"]

    assert fairness["window"] == "30d"
    [sdr_pool] = [p for p in fairness["pools"] if p["pool"] == "sdr:*"]
    shares = {r["rep_id"]: (r["expected_share"], r["actual_share"]) for r in sdr_pool["reps"]}
    assert shares == {"sdr-a": (0.5, 0.6667), "sdr-b": (0.5, 0.3333)}
    assert sdr_pool["largest_deviation"] == 0.1667
