"""`/v1/webhooks`: endpoints, secrets, the delivery log and redelivery.

The router also owns the delivery worker's lifespan: including it in the app starts the
worker after the store and the call runtime are up (so calls ended by crash recovery get
their events) and stops it before them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from legato.api.deps import AccountId, SessionDep
from legato.api.problems import field_problem, not_found, problem_responses
from legato.api.routers.reports import aware
from legato.store.accounts import NotFound
from legato.webhooks import manage
from legato.webhooks.delivery import DeliveryWorker
from legato.webhooks.events import EVENT_TYPES
from legato.webhooks.settings import WebhookSettings

log = logging.getLogger("legato.webhooks")

EventType = Literal[
    "call.initiated", "call.leg.ringing", "call.leg.answered", "call.leg.ended", "call.completed"
]
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the delivery worker for as long as the server runs."""
    settings = WebhookSettings.from_env()
    worker = DeliveryWorker(app.state.database, settings)
    app.state.webhooks = worker
    await worker.start()
    try:
        yield
    finally:
        await worker.stop()


router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], lifespan=lifespan)


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="absolute http(s) URL that receives POSTs")
    events: list[EventType] | None = Field(
        default=None, max_length=len(EVENT_TYPES), description="event types; absent: all"
    )
    description: str | None = Field(default=None, max_length=200)


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)
    events: list[EventType] | None = Field(default=None, max_length=len(EVENT_TYPES))
    enabled: bool | None = Field(
        default=None, description="false pauses it; true resumes it and clears the failure run"
    )
    description: str | None = Field(default=None, max_length=200)


class Endpoint(BaseModel):
    id: str
    url: str | None
    description: str | None
    events: list[str] = Field(description="subscribed types; empty: every type")
    enabled: bool
    disabled_by: Literal["user", "failures"] | None
    disabled_reason: str | None = Field(description="why it was disabled, for the account")
    disabled_at: str | None
    consecutive_failures: int
    failing_since: str | None = Field(
        description="when the current run of failed attempts began; null after a success"
    )
    previous_secret_expires_at: str | None = Field(
        description="while set, the previous secret also signs (a second `v1,` signature)"
    )
    created_at: str | None
    updated_at: str | None


class EndpointWithSecret(Endpoint):
    secret: str = Field(description="`whsec_` + base64; shown only now")


class EndpointList(BaseModel):
    data: list[Endpoint]


class Rotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: float | None = Field(
        default=None,
        ge=0,
        le=7 * 86400,
        description="how long the old secret keeps signing; default 24 h",
    )


class CallbackSecret(BaseModel):
    secret: str
    previous_secret_expires_at: str | None


class Attempt(BaseModel):
    attempted_at: str | None
    status_code: int | None
    latency_ms: float | None
    error: str | None
    response: str | None


class Delivery(BaseModel):
    id: int
    event_id: str
    event_type: str
    call_id: str
    sequence: int
    url: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: str | None
    created_at: str | None
    log: list[Attempt]


class DeliveryList(BaseModel):
    data: list[Delivery]
    next_cursor: str | None


class Redeliver(BaseModel):
    """One event by id, or every failed delivery created in [since, until)."""

    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(default=None, max_length=64)
    since: datetime | None = None
    until: datetime | None = None


class Redelivered(BaseModel):
    queued: int


EndpointIdP = Annotated[str, Path(max_length=64)]


def _invalid(exc: manage.InvalidField) -> Exception:
    return field_problem(exc.field, exc.rule, exc.message)


def _overlap(request: Request, body: Rotate | None) -> float:
    if body is not None and body.overlap_seconds is not None:
        return body.overlap_seconds
    worker = getattr(request.app.state, "webhooks", None)
    settings = worker.settings if worker is not None else WebhookSettings()
    return settings.rotation_overlap


@router.post(
    "/endpoints",
    status_code=201,
    response_model=EndpointWithSecret,
    responses=problem_responses(400, 401, 422),
)
def create_endpoint(
    body: EndpointCreate, response: Response, session: SessionDep, account: AccountId
) -> Any:
    """Register a URL for the account's call events; the signing secret is shown only here."""
    try:
        issued = manage.create_endpoint(
            session, account, body.url, list(body.events or []), body.description
        )
    except manage.InvalidField as exc:
        raise _invalid(exc) from None
    session.commit()
    response.headers["Location"] = f"/v1/webhooks/endpoints/{issued.endpoint.id}"
    return manage.endpoint_document(issued.endpoint, issued.secret)


@router.get("/endpoints", response_model=EndpointList, responses=problem_responses(401))
def list_endpoints(session: SessionDep, account: AccountId) -> Any:
    """The account's endpoints (secrets are never listed)."""
    return {"data": [manage.endpoint_document(e) for e in manage.list_endpoints(session, account)]}


@router.get(
    "/endpoints/{endpoint_id}", response_model=Endpoint, responses=problem_responses(401, 404, 422)
)
def get_endpoint(endpoint_id: EndpointIdP, session: SessionDep, account: AccountId) -> Any:
    """One endpoint, with why it is disabled when it is."""
    try:
        return manage.endpoint_document(manage.get_endpoint(session, account, endpoint_id))
    except NotFound:
        raise not_found(f"webhook endpoint {endpoint_id}") from None


@router.patch(
    "/endpoints/{endpoint_id}",
    response_model=Endpoint,
    responses=problem_responses(400, 401, 404, 422),
)
def patch_endpoint(
    endpoint_id: EndpointIdP, body: EndpointPatch, session: SessionDep, account: AccountId
) -> Any:
    """Change the URL, the event types, or enable/disable the endpoint."""
    try:
        endpoint = manage.update_endpoint(
            session,
            account,
            endpoint_id,
            url=body.url,
            events=None if body.events is None else list(body.events),
            enabled=body.enabled,
            description=body.description,
        )
    except NotFound:
        raise not_found(f"webhook endpoint {endpoint_id}") from None
    except manage.InvalidField as exc:
        raise _invalid(exc) from None
    session.commit()
    return manage.endpoint_document(endpoint)


@router.delete(
    "/endpoints/{endpoint_id}", status_code=204, responses=problem_responses(401, 404, 422)
)
def delete_endpoint(endpoint_id: EndpointIdP, session: SessionDep, account: AccountId) -> Response:
    """Delete the endpoint, its pending deliveries and its log."""
    try:
        manage.delete_endpoint(session, account, endpoint_id)
    except NotFound:
        raise not_found(f"webhook endpoint {endpoint_id}") from None
    session.commit()
    return Response(status_code=204)


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    response_model=EndpointWithSecret,
    responses=problem_responses(400, 401, 404, 422),
)
def rotate_secret(
    endpoint_id: EndpointIdP,
    request: Request,
    session: SessionDep,
    account: AccountId,
    body: Rotate | None = None,
) -> Any:
    """A new secret, shown once; the old one keeps signing during the overlap window."""
    try:
        endpoint = manage.get_endpoint(session, account, endpoint_id)
    except NotFound:
        raise not_found(f"webhook endpoint {endpoint_id}") from None
    issued = manage.rotate_secret(session, endpoint, _overlap(request, body))
    session.commit()
    return manage.endpoint_document(issued.endpoint, issued.secret)


@router.post(
    "/callback-secret",
    response_model=CallbackSecret,
    responses=problem_responses(400, 401, 422),
)
def callback_secret(
    request: Request, session: SessionDep, account: AccountId, body: Rotate | None = None
) -> Any:
    """The secret signing events sent to a call's own `callback_url`: created on the first
    call, rotated (with the overlap window) on later ones, shown once each time."""
    issued = manage.rotate_callback_secret(session, account, _overlap(request, body))
    session.commit()
    return {
        "secret": issued.secret,
        "previous_secret_expires_at": manage.endpoint_document(issued.endpoint)[
            "previous_secret_expires_at"
        ],
    }


@router.get(
    "/endpoints/{endpoint_id}/deliveries",
    response_model=DeliveryList,
    responses=problem_responses(401, 404, 422),
)
def deliveries(
    endpoint_id: EndpointIdP,
    session: SessionDep,
    account: AccountId,
    state: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    call_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> Any:
    """The delivery log: each event sent to this endpoint, its state and every attempt
    (status code, latency, error), newest first."""
    before: int | None = None
    if cursor is not None:
        if not cursor.isdigit():
            raise field_problem("cursor", "cursor", "not a cursor returned by this API", "query")
        before = int(cursor)
    try:
        docs, nxt = manage.list_deliveries(
            session,
            account,
            endpoint_id,
            state=state,
            call_id=call_id,
            limit=limit,
            before_id=before,
        )
    except NotFound:
        raise not_found(f"webhook endpoint {endpoint_id}") from None
    return {"data": docs, "next_cursor": None if nxt is None else str(nxt)}


@router.post(
    "/endpoints/{endpoint_id}/redeliver",
    status_code=202,
    response_model=Redelivered,
    responses=problem_responses(400, 401, 404, 422),
)
def redeliver(
    endpoint_id: EndpointIdP,
    body: Redeliver,
    request: Request,
    session: SessionDep,
    account: AccountId,
) -> Any:
    """Send one event again (`event_id`), or every failed delivery in [`since`, `until`)."""
    if body.event_id is not None and (body.since or body.until):
        raise field_problem(
            "event_id", "exclusive", "give either `event_id` or a `since`/`until` range"
        )
    since, until = aware(body.since), aware(body.until)
    if since and until and since >= until:
        raise field_problem("until", "after_since", "`until` must be after `since`")
    try:
        queued = manage.redeliver(
            session, account, endpoint_id, event_id=body.event_id, since=since, until=until
        )
    except NotFound as exc:
        raise not_found(str(exc).removesuffix(" not found")) from None
    except manage.InvalidField as exc:
        raise _invalid(exc) from None
    session.commit()
    worker = getattr(request.app.state, "webhooks", None)
    if worker is not None:
        worker.wake()
    return {"queued": queued}


__all__ = ["router"]
