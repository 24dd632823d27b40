"""`/2010-04-01/Accounts/{AccountSid}/Calls`: the Twilio Calls API on Legato's engine.

A call created here is a Legato `outbound` call (leg 1 = `To`) from the account's number
`From`, stored and run exactly like `POST /v1/calls`; its `Url` becomes the call's
`flow_url` (TwiML or Legato JSON fetched when the subscriber answers) and inline `Twiml`
is translated to flow steps at once. Parameters Legato does not support are a 400 naming
them, never silently ignored.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, Header, Path, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from legato.api.arrival import received_at
from legato.api.deps import RuntimeDep, SessionDep
from legato.core.catalogue import Service
from legato.core.config import FlowUrl, NumberConfig, Step, parse_flow
from legato.core.policy.permissions import InvalidNumber, normalize_number
from legato.service.journal import JournaledCall
from legato.service.orders import effective_config
from legato.service.runtime import CallRuntime
from legato.service.spec import CallOrder
from legato.store import calls as store
from legato.store import numbers as numbers_store
from legato.store.accounts import NotFound
from legato.store.calls import COMPLETED
from legato.store.models import Account, Call
from legato.store.types import utcnow
from legato.twilio import errors
from legato.twilio.accounts import authenticate
from legato.twilio.callbacks import watch
from legato.twilio.errors import TwilioError, bad_parameter
from legato.twilio.ids import ACCOUNT_SID, CALL_SID, account_sid, call_sid
from legato.twilio.models import TwilioCall
from legato.twilio.resource import API_VERSION, call_resource, calls_uri
from legato.twilio.twiml import TwimlError, translate

CREATE_PARAMS = {"To", "From", "Url", "Twiml", "Method", "StatusCallback",
                 "StatusCallbackEvent", "StatusCallbackMethod", "Timeout", "TimeLimit",
                 "CallerId", "SendDigits", "Record"}
UPDATE_PARAMS = {"Status", "Url", "Twiml", "Method"}
LIST_PARAMS = {"To", "From", "PageSize", "Page", "PageToken"}
CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
#: Twilio's defaults and limits for the ring time and the call's length.
DEFAULT_TIMEOUT, MAX_TIMEOUT = 60, 600
DEFAULT_TIME_LIMIT, MAX_TIME_LIMIT = 14_400, 86_400
MAX_PAGE_SIZE = 1000
#: What a create puts in the call's stored request and its configuration. Crash recovery
#: rebuilds a call that never started from the request (`service.orders.order_for`), so
#: its OVERRIDES must carry each of these, the call's flow replacing the number's.
CALL_KEYS = ("ring_timeout", "max_duration", "flow", "flow_url", "send_digits", "record")
SEND_DIGITS_KEYS, MAX_SEND_DIGITS = "0123456789*#ABCDwW", 256

AuthHeader = Annotated[str | None, Header(alias="Authorization", include_in_schema=False)]
AccountSidPath = Annotated[str, Path(alias="AccountSid", max_length=34)]
CallSidPath = Annotated[str, Path(alias="CallSid", max_length=34)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Attach the TwiML fetcher and the callback outbox to the runtime; run the sender."""
    from legato.twilio.wiring import attach

    async with attach(app):
        yield


# Twilio publishes this API's own description; it is kept out of Legato's /openapi.json.
router = APIRouter(prefix=f"/{API_VERSION}/Accounts", tags=["twilio"], lifespan=lifespan,
                   include_in_schema=False)


# ---------------------------------------------------------------------- helpers
class Form:
    """The request's form parameters, repeated keys kept, checked against what we support."""

    def __init__(self, pairs: list[tuple[str, str]], allowed: set[str]) -> None:
        unknown = sorted({k for k, _ in pairs} - allowed)
        if unknown:
            raise bad_parameter(
                errors.UNKNOWN_PARAMETER,
                f"Unsupported parameter(s): {', '.join(unknown)}. Legato's Twilio layer "
                f"supports: {', '.join(sorted(allowed))} (see docs/twilio.md)")
        self.pairs = pairs

    def get(self, name: str) -> str | None:
        values = self.all(name)
        return values[-1] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]


async def _pairs(request: Request) -> list[tuple[str, str]]:
    """The form body's (name, value) pairs, repeated names kept."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qsl(body, keep_blank_values=True)


def _account(session: Session, header: str | None, sid: str) -> str:
    account_id = authenticate(session, header)
    if not ACCOUNT_SID.match(sid) or sid != account_sid(account_id):
        raise errors.not_found(f"/{API_VERSION}/Accounts/{sid}")
    return account_id


def _number(value: str | None, name: str, missing: int, invalid: int) -> str:
    if not value:
        raise bad_parameter(missing, f"A '{name}' phone number is required.")
    try:
        return normalize_number(value)
    except InvalidNumber as exc:
        raise bad_parameter(invalid, f"The '{name}' number {value} is not valid: {exc}") from None


def _method(form: Form, name: str) -> str:
    value = (form.get(name) or "POST").upper()
    if value not in ("GET", "POST"):
        raise bad_parameter(errors.URL_INVALID, f"{name} must be GET or POST, not {value!r}")
    return value


def _url(form: Form, name: str) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        return None
    if not value.startswith(("http://", "https://")) or len(value) > 2048:
        raise bad_parameter(errors.URL_INVALID, f"{name} {value!r} is not a valid http(s) URL")
    return value


def _integer(form: Form, name: str, default: int, high: int) -> int:
    raw = form.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_parameter(errors.UNKNOWN_PARAMETER,
                            f"{name} must be a whole number, not {raw!r}") from None
    if not 1 <= value <= high:
        raise bad_parameter(errors.UNKNOWN_PARAMETER, f"{name} must be between 1 and {high}")
    return value


def _flow(form: Form) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
    """(flow_url, flow steps) from Url/Method or inline Twiml: exactly one is given."""
    url, twiml = _url(form, "Url"), form.get("Twiml")
    if (url is None) == (twiml is None):
        raise bad_parameter(errors.URL_INVALID,
                            "Give exactly one of 'Url' (a TwiML or Legato flow URL) or 'Twiml'")
    if url is not None:
        return {"url": url, "method": _method(form, "Method")}, None
    try:
        steps = translate(twiml or "")
    except TwimlError as exc:
        raise bad_parameter(errors.TWIML_INVALID, f"Twiml: {exc}") from None
    return None, [s.model_dump(mode="json", exclude_unset=True) for s in steps]


def _record(form: Form) -> bool | None:
    """Record=true|false (None: not given, the number's own `record` setting holds)."""
    raw = form.get("Record")
    if raw is None or raw == "":
        return None
    if raw.lower() not in ("true", "false"):
        raise bad_parameter(errors.UNKNOWN_PARAMETER,
                            f"Record must be true or false, not {raw!r}")
    return raw.lower() == "true"


def _send_digits(form: Form) -> str:
    """SendDigits: keys 0-9 * # A-D, `w` (wait 0.5 s) and `W` (1 s), as Twilio takes them."""
    value = form.get("SendDigits") or ""
    bad = sorted(set(value) - set(SEND_DIGITS_KEYS))
    if bad or len(value) > MAX_SEND_DIGITS:
        why = (f"contains {', '.join(repr(c) for c in bad)}" if bad
               else f"is longer than {MAX_SEND_DIGITS} characters")
        raise bad_parameter(errors.SEND_DIGITS_INVALID, f"SendDigits {why}: it may hold only "
                            f"{SEND_DIGITS_KEYS} (w waits half a second, W a second)")
    return value


def _row(session: Session, account_id: str, sid: str) -> tuple[TwilioCall, Call]:
    row = session.get(TwilioCall, sid) if CALL_SID.match(sid) else None
    if row is None or row.account_id != account_id or row.deleted_at is not None:
        raise errors.not_found(f"Call {sid}")
    return row, store.get_call(session, account_id, row.call_id)


# ---------------------------------------------------------------------- routes
@router.post("/{AccountSid}/Calls.json", status_code=201)
async def create_call(request: Request, session: SessionDep, runtime: RuntimeDep,
                      sid: AccountSidPath, authorization: AuthHeader = None) -> Any:
    """Place a call (Twilio `Calls.create`)."""
    received = received_at(request.state)
    pairs = await _pairs(request)
    # The store is synchronous: keep its I/O off the loop the call runtime runs on.
    return await run_in_threadpool(_create, session, runtime, sid, authorization, pairs,
                                   received)


def _create(session: Session, runtime: CallRuntime, sid: str, authorization: str | None,
            pairs: list[tuple[str, str]], received: float | None) -> Any:
    account_id = _account(session, authorization, sid)
    form = Form(pairs, CREATE_PARAMS)
    to = _number(form.get("To"), "To", errors.TO_MISSING, errors.TO_INVALID)
    from_ = _number(form.get("From"), "From", errors.FROM_MISSING, errors.FROM_INVALID)
    caller_id = form.get("CallerId")
    if caller_id and _number(caller_id, "CallerId", errors.FROM_INVALID,
                             errors.FROM_INVALID) != from_:
        raise bad_parameter(errors.FROM_INVALID, "CallerId must equal From: Legato presents "
                            "the account's number From as the caller ID")
    try:
        number_row = numbers_store.get_number(session, account_id, from_)
    except NotFound:
        raise bad_parameter(errors.FROM_NOT_OWNED, f"The From number {from_} is not a number of "
                            "this account; add it with POST /v1/numbers") from None
    flow_url, flow = _flow(form)
    callback = _url(form, "StatusCallback")
    events = form.all("StatusCallbackEvent")
    for event in events:
        if event not in CALLBACK_EVENTS:
            raise bad_parameter(errors.UNKNOWN_PARAMETER, f"StatusCallbackEvent {event!r} is not "
                                f"one of {', '.join(CALLBACK_EVENTS)}")
    request_doc: dict[str, Any] = {
        "service": "outbound", "number": from_, "to": [to],
        "ring_timeout": _integer(form, "Timeout", DEFAULT_TIMEOUT, MAX_TIMEOUT),
        "max_duration": _integer(form, "TimeLimit", DEFAULT_TIME_LIMIT, MAX_TIME_LIMIT),
        "flow": flow, "flow_url": flow_url,
    }
    digits = _send_digits(form)
    if digits:
        request_doc["send_digits"] = digits
    record = _record(form)
    if record is not None:
        request_doc["record"] = record
    account = session.get(Account, account_id)
    config = _config(number_row.config, request_doc, account.settings if account else None)
    call, _ = store.create_call(session, account_id, store.NewCall(
        service="outbound", number=from_, from_numbers=(), to_numbers=(to,),
        request=request_doc))
    session.flush()
    row = TwilioCall(
        call_sid=call_sid(call.id), call_id=call.id, account_id=account_id,
        url=None if flow_url is None else flow_url["url"],
        method="POST" if flow_url is None else flow_url["method"],
        status_callback=callback, status_callback_method=_method(form, "StatusCallbackMethod"),
        status_callback_events=sorted(set(events), key=CALLBACK_EVENTS.index) or ["completed"],
        reported=[], next_sequence=0)
    session.add(row)
    session.commit()
    if callback is not None:
        watch(call.id)
    runtime.launch(CallOrder(
        call_id=call.id, service=Service.OUTBOUND, number=from_, leg1=(to,), leg2=(),
        config=config, started_at=call.started_at,
        received_at=received if received is not None else time.perf_counter()))
    return call_resource(row, call)


def _config(base: dict[str, Any], request_doc: dict[str, Any],
            account_settings: dict[str, Any] | None) -> NumberConfig:
    """The number's configuration with the account's defaults and the call's own keys
    (`CALL_KEYS`). The call's TwiML replaces the number's `flow`/`flow_url`, which are
    for calls *to* the number (its voice URL), so the two never clash."""
    own = {k: v for k, v in base.items() if k not in ("flow", "flow_url")}
    for key in CALL_KEYS:
        if request_doc.get(key) is not None:
            own[key] = request_doc[key]
    return effective_config(own, {}, account_settings)


@router.get("/{AccountSid}/Calls.json")
def list_calls(request: Request, session: SessionDep, sid: AccountSidPath,
               authorization: AuthHeader = None) -> Any:
    """The account's Twilio-API calls, newest first, with Twilio's paging keys."""
    account_id = _account(session, authorization, sid)
    form = Form(list(request.query_params.multi_items()), LIST_PARAMS)
    size = _integer(form, "PageSize", 50, MAX_PAGE_SIZE)
    page = _integer(form, "Page", 0, 10**9) if form.get("Page") not in (None, "0") else 0
    token = form.get("PageToken")
    stmt = (select(TwilioCall, Call).join(Call, Call.id == TwilioCall.call_id)
            .where(TwilioCall.account_id == account_id, TwilioCall.deleted_at.is_(None))
            .order_by(Call.id.desc()))
    if token:
        if not token.startswith("PA"):
            raise bad_parameter(errors.UNKNOWN_PARAMETER, "PageToken is not one this API issued")
        stmt = stmt.where(Call.id < token[2:])
    for name, col in (("To", Call.to_index), ("From", Call.number)):
        value = form.get(name)
        if value:
            e164 = _number(value, name, errors.TO_MISSING, errors.TO_INVALID)
            stmt = stmt.where(col.contains(f"|{e164}|") if name == "To" else col == e164)
    rows = list(session.execute(stmt.limit(size + 1)).all())
    more = len(rows) > size
    rows = rows[:size]
    base = calls_uri(sid)
    filters = [(k, v) for k, v in form.pairs if k in ("To", "From")]

    def uri(extra: list[tuple[str, str]]) -> str:
        return f"{base}?{urlencode([*filters, ('PageSize', str(size)), *extra])}"

    return {
        "calls": [call_resource(r, c) for r, c in rows],
        "first_page_uri": uri([("Page", "0")]),
        "next_page_uri": uri([("Page", str(page + 1)), ("PageToken", "PA" + rows[-1][1].id)])
        if more else None,
        "previous_page_uri": None,
        "page": page,
        "page_size": size,
        "start": page * size,
        "end": page * size + max(len(rows) - 1, 0),
        "uri": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
    }


@router.get("/{AccountSid}/Calls/{CallSid}.json")
def fetch_call(session: SessionDep, sid: AccountSidPath, call: CallSidPath,
               authorization: AuthHeader = None) -> Any:
    account_id = _account(session, authorization, sid)
    row, stored = _row(session, account_id, call)
    return call_resource(row, stored)


@router.post("/{AccountSid}/Calls/{CallSid}.json")
async def update_call(request: Request, session: SessionDep, runtime: RuntimeDep,
                      sid: AccountSidPath, call: CallSidPath,
                      authorization: AuthHeader = None) -> Any:
    """End a call (Status=completed|canceled) or move it to new TwiML (Url/Twiml)."""
    pairs = await _pairs(request)
    account_id, call_id, status, to = await run_in_threadpool(
        _prepare_update, session, sid, call, authorization, pairs)
    if to is not None:
        done = await _redirect(runtime, call_id, to)
    else:
        done = await runtime.end_call(call_id, f"ended via the Twilio API (Status={status})",
                                      canceled=status == "canceled")
    return await run_in_threadpool(_after_update, session, account_id, call, done,
                                   status is not None)


async def _redirect(runtime: CallRuntime, call_id: str, to: FlowUrl | list[Step]) -> bool:
    """Run `to` from its start on the live call, journaled (`JournaledCall.redirect`)."""
    took = False

    def step(jcall: JournaledCall, now: float) -> None:
        nonlocal took
        took = jcall.redirect(now, to)

    return await runtime.act(call_id, step) and took


def _new_document(form: Form) -> FlowUrl | list[Step]:
    """Update's Url (+Method) or Twiml, validated like create's (a bad one is a 400)."""
    flow_url, flow = _flow(form)
    if flow_url is not None:
        return FlowUrl.model_validate(flow_url)
    return parse_flow(flow)


def _prepare_update(session: Session, sid: str, call: str, authorization: str | None,
                    pairs: list[tuple[str, str]],
                    ) -> tuple[str, str, str | None, FlowUrl | list[Step] | None]:
    account_id = _account(session, authorization, sid)
    row, stored = _row(session, account_id, call)
    form = Form(pairs, UPDATE_PARAMS)
    status = form.get("Status")
    moving = form.get("Url") is not None or form.get("Twiml") is not None
    if status is not None and status not in ("completed", "canceled"):
        raise bad_parameter(errors.UNKNOWN_PARAMETER,
                            f"Status must be 'completed' or 'canceled', not {status!r}")
    if status is not None and moving:
        raise bad_parameter(errors.UNKNOWN_PARAMETER, "Give Status (to end the call) or "
                            "Url/Twiml (to move it to new TwiML), not both")
    if status is None and not moving:
        raise bad_parameter(errors.UNKNOWN_PARAMETER, "Give Status=completed, Status=canceled, "
                            "or new TwiML with Url or Twiml")
    to = _new_document(form) if moving else None
    if stored.state == COMPLETED:
        raise bad_parameter(errors.CALL_STATE, f"Call {call} is not in progress: it has ended")
    if status == "canceled" and any(leg.get("answered_at") for leg in
                                    (stored.record or {}).get("legs") or []
                                    if leg.get("leg") == 1):
        raise bad_parameter(errors.CALL_STATE, "Status=canceled applies to queued or ringing "
                            "calls; this one is in progress: use Status=completed")
    if status is not None:
        row.ended_via_api = status
        session.commit()
    return account_id, stored.id, status, to


def _after_update(session: Session, account_id: str, call: str, done: bool,
                  ending: bool) -> Any:
    session.expire_all()
    row, stored = _row(session, account_id, call)
    if not done:  # it ended on its own meanwhile: the API did not end or move it
        if ending:
            row.ended_via_api = None
            session.commit()
        raise bad_parameter(errors.CALL_STATE, f"Call {call} is not in progress: it has ended")
    return call_resource(row, stored)


@router.delete("/{AccountSid}/Calls/{CallSid}.json", status_code=204)
def delete_call(session: SessionDep, sid: AccountSidPath, call: CallSidPath,
                authorization: AuthHeader = None) -> Response:
    """Remove a finished call from the Twilio API (the native record stays, for reports)."""
    account_id = _account(session, authorization, sid)
    row, stored = _row(session, account_id, call)
    if stored.state != COMPLETED:
        raise bad_parameter(errors.CALL_STATE,
                            f"Call {call} is in progress; end it before deleting it")
    row.deleted_at = utcnow()
    session.commit()
    return Response(status_code=204)


__all__ = ["TwilioError", "router"]
