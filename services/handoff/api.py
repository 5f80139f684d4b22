"""The roster API: reps and accounts, read and replaced over HTTP (bearer token).

``PUT`` replaces the whole entry (send every field you want to keep) and answers 201 when it
created the entry, 200 when it replaced one. Entries are validated by the same domain models as
the definitions file, plus their references (regions, the account owner, one account per
domain); each problem comes back as ``application/problem+json`` naming the field by a JSON
pointer. Every change bumps the roster version, which routing checks on every batch, so a change
applies to the next lead.
Responses include a rep's email (this is the admin API); logs never do.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from leadrelay.api_auth import ApiToken
from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.contracts.errors import FieldError, from_pydantic, json_pointer
from leadrelay.contracts.topics import Topic
from leadrelay.durations import format_elapsed
from leadrelay.runtime.service import Runtime
from leadrelay.store.unit_of_work import Store
from services.handoff.domain import (
    Account,
    PoolFairness,
    Rep,
    RosterConfig,
    RoutingConfig,
    fairness_report,
    unknown_territories,
)
from services.handoff.domain.ports import SlaDeadlines
from services.handoff.handlers import HandoffHandlers
from services.handoff.messages import SOURCE, rep_updated, rep_updated_event_id
from services.handoff.repository import (
    Roster,
    StoredAssignment,
    load_roster,
    put_account,
    put_rep,
    queued,
    rotation_counts,
)
from services.handoff.service import handoff_handlers

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_M = TypeVar("_M", bound=BaseModel)
Document = Annotated[dict[str, Any], Body(description="Every field of the entry")]


def build_router(
    runtime: Runtime, routing: RoutingConfig, seed: RosterConfig, deadlines: SlaDeadlines
) -> APIRouter:
    """The roster and queue routes on the runtime's store (what the composition root mounts)."""
    router = roster_router(runtime.store, routing, seed, runtime.topic(Topic.ROSTER))
    handlers = handoff_handlers(runtime, routing, seed, deadlines)
    router.include_router(queue_router(runtime.store, handlers))
    return router


def queue_router(store: Store, handlers: HandoffHandlers) -> APIRouter:
    """``/v1/queues``: the fallback queues, the leads waiting in one, and a rep claiming one."""
    router = APIRouter(tags=["queues"])

    @router.get("/v1/queues")
    async def list_queues(_: ApiToken) -> dict[str, Any]:
        """Every queue with leads waiting: how many, and how long the oldest has waited."""
        async with store.transaction() as tx:
            waiting, now = await queued(tx.connection), tx.now()
        names = sorted(
            {w.fallback_queue or "" for w in waiting} | {handlers.routing.fallback.queue}
        )
        return {"queues": [_queue_summary(name, waiting, now) for name in names]}

    @router.get("/v1/queues/{queue}")
    async def read_queue(queue: str, _: ApiToken) -> dict[str, Any]:
        """The leads waiting in ``queue``, oldest first."""
        async with store.transaction() as tx:
            waiting, now = await queued(tx.connection, queue), tx.now()
        return {**_queue_summary(queue, waiting, now), "leads": [_waiting(w, now) for w in waiting]}

    @router.post("/v1/queues/{queue}/{lead_key}/claim", response_model=None)
    async def claim_lead(
        queue: str, lead_key: str, body: ClaimBody, _: ApiToken
    ) -> dict[str, Any] | JSONResponse:
        """A rep takes a queued lead: it is assigned to them (a new attempt, with SLA clocks)."""
        async with store.transaction() as tx:
            outcome = await handlers.claim(tx, queue, lead_key, body.rep_id)
        if outcome == "not_queued":
            return _not_found(f"lead {lead_key} is not waiting in queue {queue}")
        if outcome == "unknown_rep":
            return problem([FieldError("/rep_id", "no active rep with this id")])
        log.info("rep %s claimed lead %s from queue %s", body.rep_id, lead_key, queue)
        return {"queue": queue, "lead_key": lead_key, "rep_id": body.rep_id}

    return router


class ClaimBody(BaseModel):
    """Who claims the lead."""

    rep_id: str = Field(min_length=1, max_length=128)


def _queue_summary(name: str, waiting: Sequence[StoredAssignment], now: datetime) -> dict[str, Any]:
    mine = [w for w in waiting if w.fallback_queue == name]
    oldest = max(((now - w.assigned_at).total_seconds() for w in mine), default=0.0)
    return {"queue": name, "depth": len(mine), "oldest_age_seconds": round(oldest, 3)}


def _waiting(waiting: StoredAssignment, now: datetime) -> dict[str, Any]:
    return {
        "lead_key": waiting.lead_key,
        "episode": waiting.episode,
        "attempt": waiting.attempt,
        "queued_at": waiting.assigned_at.isoformat(),
        "age_seconds": round((now - waiting.assigned_at).total_seconds(), 3),
    }


def _not_found(detail: str) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_404_NOT_FOUND,
        media_type=PROBLEM_JSON,
        content={"type": "about:blank", "title": "Not queued", "status": 404, "detail": detail},
    )


def roster_router(
    store: Store, routing: RoutingConfig, seed: RosterConfig, roster_topic: str
) -> APIRouter:
    """``/v1/reps`` and ``/v1/accounts`` on ``store``, seeded from the ``roster:`` section; a
    rep created or changed is announced as ``rep_updated`` on ``roster_topic``."""
    router = APIRouter(tags=["roster"])
    roster = _RosterAccess(store, seed, roster_topic)
    router.include_router(_rep_routes(roster, routing))
    router.include_router(_account_routes(roster))
    return router


@dataclass(frozen=True)
class _RosterAccess:
    """The roster as the routes read and change it: always seeded first, so a seeded entry
    edited through the API is never re-seeded from the file later."""

    store: Store
    seed: RosterConfig
    roster_topic: str

    async def current(self) -> Roster:
        async with self.store.transaction() as tx:
            return await load_roster(tx.connection, self.seed, tx.now())

    async def with_fairness(self, routing: RoutingConfig) -> tuple[Roster, list[PoolFairness]]:
        """The roster and the rotation's fairness over ``routing.credit.fairness_window``."""
        async with self.store.transaction() as tx:
            current = await load_roster(tx.connection, self.seed, tx.now())
            since = tx.now() - routing.credit.fairness_window
            counts = await rotation_counts(tx.connection, since)
        return current, fairness_report(routing, current.reps, counts)

    async def put_rep(self, rep: Rep) -> bool:
        """Store ``rep``; True when it was created. A creation or a change is announced as
        ``rep_updated`` through the outbox, in the same transaction (an identical PUT is not)."""
        async with self.store.transaction() as tx:
            before = (await load_roster(tx.connection, self.seed, tx.now())).rep(rep.id)
            created = await put_rep(tx.connection, rep, tx.now())
            if before != rep:
                await tx.publish(self.roster_topic, _rep_updated_event(rep, tx.now()))
            return created

    async def put_account(self, account: Account) -> list[FieldError] | bool:
        """Store ``account`` unless its references are wrong (then the problems, nothing saved);
        True when it was created. Checked and saved in one transaction."""
        async with self.store.transaction() as tx:
            roster = await load_roster(tx.connection, self.seed, tx.now())
            errors = account_problems(account, roster)
            return errors or await put_account(tx.connection, account, tx.now())


def _rep_updated_event(rep: Rep, now: datetime) -> CloudEvent:
    payload = rep_updated(rep, now)
    return new_event(
        payload.EVENT_TYPE,
        SOURCE,
        payload,
        subject=rep.id,
        id=rep_updated_event_id(rep.id, now),
        time=now,
    )


def _rep_routes(roster: _RosterAccess, routing: RoutingConfig) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/reps")
    async def list_reps(_: ApiToken) -> dict[str, Any]:
        """Every rep in the roster, sorted by id, and how fair the rotation has been to them."""
        current, report = await roster.with_fairness(routing)
        window = format_elapsed(routing.credit.fairness_window)
        return {
            "reps": [rep.model_dump(mode="json") for rep in current.reps],
            "fairness": fairness_document(report, window),
        }

    @router.put("/v1/reps/{rep_id}", response_model=None)
    async def replace_rep(
        rep_id: str, body: Document, _: ApiToken, response: Response
    ) -> dict[str, Any] | JSONResponse:
        """Create or replace a rep; routing uses the change from the next lead on."""
        rep = _validate(Rep, rep_id, body)
        if isinstance(rep, JSONResponse):
            return rep
        errors = rep_problems(rep, routing)
        if errors:
            return problem(errors)
        created = await roster.put_rep(rep)
        log.info("rep %s %s through the API", rep.id, "created" if created else "replaced")
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return rep.model_dump(mode="json")

    return router


def _account_routes(roster: _RosterAccess) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/accounts")
    async def list_accounts(_: ApiToken) -> dict[str, list[dict[str, Any]]]:
        """Every known account, sorted by id."""
        accounts = (await roster.current()).accounts
        return {"accounts": [account.model_dump(mode="json") for account in accounts]}

    @router.put("/v1/accounts/{account_id}", response_model=None)
    async def replace_account(
        account_id: str, body: Document, _: ApiToken, response: Response
    ) -> dict[str, Any] | JSONResponse:
        """Create or replace an account: its email domains and the rep who owns its leads."""
        account = _validate(Account, account_id, body)
        if isinstance(account, JSONResponse):
            return account
        outcome = await roster.put_account(account)
        if isinstance(outcome, list):
            return problem(outcome)
        log.info("account %s %s through the API", account.id, "created" if outcome else "replaced")
        response.status_code = status.HTTP_201_CREATED if outcome else status.HTTP_200_OK
        return account.model_dump(mode="json")

    return router


def fairness_document(report: Sequence[PoolFairness], window: str) -> dict[str, Any]:
    """The fairness part of ``GET /v1/reps``: per pool, each rep's expected and actual share."""
    return {
        "window": window,
        "pools": [
            {
                "pool": pool.pool,
                "largest_deviation": round(pool.largest_deviation, 4),
                "reps": [
                    {
                        "rep_id": share.rep_id,
                        "weight": share.weight,
                        "assigned": share.assigned,
                        "expected_share": round(share.expected, 4),
                        "actual_share": round(share.actual, 4),
                    }
                    for share in pool.shares
                ],
            }
            for pool in report
        ],
    }


def rep_problems(rep: Rep, routing: RoutingConfig) -> list[FieldError]:
    """References the model alone cannot check: every territory is a country or a region."""
    return [
        FieldError(json_pointer(["territories", position]), message)
        for position, message in unknown_territories(routing, rep)
    ]


def account_problems(account: Account, roster: Roster) -> list[FieldError]:
    """References the model alone cannot check: the owner exists, no domain has two accounts."""
    errors = []
    if account.owner_rep_id is not None and roster.rep(account.owner_rep_id) is None:
        errors.append(FieldError("/owner_rep_id", "no rep with this id in the roster"))
    others = {
        domain: other.id
        for other in roster.accounts
        if other.id != account.id
        for domain in other.domains
    }
    errors += [
        FieldError(
            json_pointer(["domains", position]), f"already belongs to account {others[domain]}"
        )
        for position, domain in enumerate(account.domains)
        if domain in others
    ]
    return errors


def _validate(model: type[_M], entry_id: str, body: dict[str, Any]) -> _M | JSONResponse:
    """The body as ``model`` with the path's id; a body naming another id is refused."""
    if "id" in body and body["id"] != entry_id:
        return problem([FieldError("/id", "must match the id in the path")])
    try:
        return model.model_validate({**body, "id": entry_id})
    except ValidationError as error:
        return problem(from_pydantic(error).errors)


def problem(errors: Sequence[FieldError]) -> JSONResponse:
    """RFC 9457 problem details naming each bad field (never echoing its value)."""
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        media_type=PROBLEM_JSON,
        content={
            "type": "about:blank",
            "title": "The entry is not valid",
            "status": status.HTTP_422_UNPROCESSABLE_CONTENT,
            "detail": "; ".join(f"{error.pointer}: {error.message}" for error in errors),
            "errors": [{"pointer": error.pointer, "detail": error.message} for error in errors],
        },
    )
