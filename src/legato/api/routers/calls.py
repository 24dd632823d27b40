"""`/v1/calls`: place calls, read their live state and final record, list and export them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from legato.api.arrival import received_at
from legato.api.deps import AccountId, DatabaseDep, RuntimeDep, SessionDep
from legato.api.problems import (
    ApiProblem,
    field_problem,
    not_found,
    problem_responses,
    store_unavailable,
)
from legato.api.routers.reports import aware
from legato.api.schemas.calls import (
    CallCreate,
    CallList,
    CallPublic,
    Party,
    State,
    request_document,
)
from legato.core.catalogue import Service, Status
from legato.core.policy.permissions import InvalidNumber, normalize_number
from legato.service.orders import effective_config, order_from
from legato.service.runtime import CallRuntime
from legato.store import calls as store
from legato.store import numbers as numbers_store
from legato.store.accounts import NotFound
from legato.store.db import Database
from legato.store.export import csv_rows
from legato.store.models import Call
from legato.store.numbers import CallingNumber

NOT_PLACED = "the call was not stored and not placed"

router = APIRouter(prefix="/v1/calls", tags=["calls"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        min_length=1,
        description="Same key and body: the same call comes back. Same key, other body: 409.",
    ),
]


@router.post(
    "",
    status_code=201,
    response_model=CallPublic,
    responses={
        200: {"model": CallPublic, "description": "Idempotent replay"},
        **problem_responses(400, 401, 409, 422, 503),
    },
)
async def create_call(
    body: CallCreate,
    request: Request,
    response: Response,
    database: DatabaseDep,
    account: AccountId,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Place a click-to-call or outbound call from one of the account's numbers."""
    received = received_at(request.state)
    if idempotency_key is None:
        call, created = await _place_new_call(database, account, runtime, body, received), True
    else:
        # `async`, with the store work in a worker thread: FastAPI would validate a sync
        # route's answer in a second thread hop; here it runs on the loop.
        call, created = await run_in_threadpool(
            _place_keyed_call, database, account, runtime, body, received, idempotency_key
        )
    response.headers["Location"] = f"/v1/calls/{call.id}"
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return store.call_document(call)


async def _place_new_call(
    database: Database, account: str, runtime: CallRuntime, body: CallCreate, received: float
) -> Call:
    """A call without an idempotency key: its row goes into the runtime writer's next
    transaction (group commit), and it is launched once that has committed."""
    number = numbers_store.remembered_number(account, body.number)
    if number is None:
        number = await run_in_threadpool(_look_up_number, database, account, body.number)
    doc = request_document(body)
    new = _new_call(body, doc, None)
    config = effective_config(number.config, doc, number.account_settings)
    try:
        call = await runtime.store_call(account, new)
    except Exception as exc:  # nothing stored, nothing placed
        raise store_unavailable(exc, NOT_PLACED) from None
    runtime.launch(order_from(call, config, received))
    return call  # type: ignore[no-any-return]


def _look_up_number(database: Database, account: str, number: str) -> CallingNumber:
    try:
        with database.sessions() as session:
            return _calling_number(session, account, number)
    except ApiProblem:
        raise
    except Exception as exc:
        raise store_unavailable(exc, NOT_PLACED) from None


def _calling_number(session: Session, account: str, number: str) -> CallingNumber:
    try:
        return numbers_store.calling_number(session, account, number)
    except NotFound:
        raise field_problem(
            "number",
            "account_number",
            f"{number} is not a number of this account; add it with POST /v1/numbers",
        ) from None


def _new_call(body: CallCreate, doc: dict[str, Any], idempotency_key: str | None) -> store.NewCall:
    return store.NewCall(
        service=body.service,
        number=body.number,
        from_numbers=tuple(body.from_ or ()),
        to_numbers=tuple(body.to),
        request=doc,
        custom_data=body.custom_data,
        callback_url=None if body.callback_url is None else str(body.callback_url),
        idempotency_key=idempotency_key,
    )


def _place_keyed_call(
    database: Database,
    account: str,
    runtime: CallRuntime,
    body: CallCreate,
    received: float,
    idempotency_key: str,
) -> tuple[Call, bool]:
    """Store the new call, commit and launch it: (call, True); or (the earlier call,
    False) for a replayed idempotency key. Its own transaction: the key's uniqueness
    decides replays. The session is this thread's own, closed here (no `get_session`
    set-up and teardown per request; a rollback never on the loop)."""
    with database.sessions() as session:
        number = _calling_number(session, account, body.number)
        doc = request_document(body)
        try:
            call, created = store.create_call(
                session, account, _new_call(body, doc, idempotency_key)
            )
        except store.IdempotencyConflict as exc:
            raise ApiProblem(
                409,
                "Idempotency key reused",
                f"Idempotency-Key {exc.key!r} was used for call {exc.call_id} with another "
                "request body; use a new key for a new call",
                kind="idempotency-conflict",
            ) from None
        # Built before the commit (a replay builds none): a config that fails stores nothing.
        config = effective_config(number.config, doc, number.account_settings) if created else None
        session.commit()
    if config is not None:
        runtime.launch(order_from(call, config, received))
    return call, created


StatusQ = Annotated[list[Status] | None, Query(description="one or more status codes")]
ServiceQ = Annotated[Service | None, Query()]
StateQ = Annotated[State | None, Query()]
NumberQ = Annotated[str | None, Query(max_length=32, description="the Legato number")]
FromQ = Annotated[
    str | None, Query(alias="from", max_length=32, description="a number of the `from` side")
]
ToQ = Annotated[str | None, Query(max_length=32, description="a number of the `to` side")]
DiscQ = Annotated[Party | None, Query()]
AfterQ = Annotated[datetime | None, Query(description="started at or after (ISO 8601)")]
BeforeQ = Annotated[datetime | None, Query(description="started before (ISO 8601)")]


async def call_filter(
    status: StatusQ = None,
    service: ServiceQ = None,
    state: StateQ = None,
    number: NumberQ = None,
    from_: FromQ = None,
    to: ToQ = None,
    disconnected_by: DiscQ = None,
    started_after: AfterQ = None,
    started_before: BeforeQ = None,
) -> store.CallFilter:
    """The filters the call list and the CSV export share (query parameters)."""

    def e164(field: str, raw: str | None) -> str | None:
        if raw is None:
            return None
        try:
            return normalize_number(raw)
        except InvalidNumber as exc:
            raise field_problem(field, "e164", str(exc), "query") from None

    return store.CallFilter(
        status=tuple(s.value for s in status or ()),
        service=None if service is None else service.value,
        state=state,
        number=e164("number", number),
        from_number=e164("from", from_),
        to_number=e164("to", to),
        disconnected_by=disconnected_by,
        started_after=aware(started_after),
        started_before=aware(started_before),
    )


FilterDep = Annotated[store.CallFilter, Depends(call_filter)]


@router.get("", response_model=CallList, responses=problem_responses(401, 422))
def list_calls(
    session: SessionDep,
    account: AccountId,
    where: FilterDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    """The account's calls, newest first, one page at a time (`next_cursor`)."""
    try:
        rows, next_cursor = store.list_calls(session, account, where, limit, cursor)
    except store.BadCursor:
        raise field_problem(
            "cursor", "cursor", "not a cursor returned by this API", "query"
        ) from None
    return {"data": [store.call_document(c) for c in rows], "next_cursor": next_cursor}


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "CSV of the calls"},
        **problem_responses(401, 422),
    },
)
def export_calls(
    database: DatabaseDep,
    account: AccountId,
    where: FilterDep,
) -> StreamingResponse:
    """Every call matching the filters as CSV, streamed in batches (any size)."""

    def stream() -> Iterator[str]:
        with database.sessions() as session:
            yield from csv_rows(
                store.call_document(c) for c in store.iter_calls(session, account, where)
            )

    return StreamingResponse(
        stream(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
    )


@router.get("/{call_id}", response_model=CallPublic, responses=problem_responses(401, 404, 422))
def get_call(
    call_id: Annotated[str, Path(max_length=64)], session: SessionDep, account: AccountId
) -> Any:
    """The call record: live state while the call runs, the final record once it ends."""
    try:
        return store.call_document(store.get_call(session, account, call_id))
    except NotFound:
        raise not_found(f"call {call_id}") from None


@router.post(
    "/{call_id}/hangup",
    response_model=CallPublic,
    responses=problem_responses(401, 404, 409, 422),
)
async def hangup_call(
    call_id: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    account: AccountId,
    runtime: RuntimeDep,
) -> Any:
    """End a call in progress as the platform: answered legs are hung up, ringing ones
    cancelled (CANCELLED). Answers with the final record; 409 when the call has ended."""
    try:
        await run_in_threadpool(store.get_call, session, account, call_id)
    except NotFound:
        raise not_found(f"call {call_id}") from None
    ended = await runtime.end_call(call_id, "ended via the API (hangup)", canceled=True)
    session.expire_all()
    call = await run_in_threadpool(store.get_call, session, account, call_id)
    if not ended:
        raise ApiProblem(409, "Conflict", f"call {call_id} is not in progress (state {call.state})")
    return store.call_document(call)
