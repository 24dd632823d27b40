"""Fetches dynamic flows over HTTP for the runtime: TwiML or Legato's own JSON.

The engine asks with `FetchFlow` (why: start, gather, dial, redirect); this adds the
call's facts with Twilio's parameter names (CallSid, AccountSid, From, To, CallStatus,
Direction, ApiVersion, Digits, DialCallStatus, ...), signs the request with
X-Twilio-Signature, and answers with `FlowFetched`: the translated steps, or the reason
there are none (the engine then records a flow error and ends the call).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from legato.core.catalogue import Service
from legato.core.config import Step, parse_flow
from legato.core.errors import describe_errors
from legato.core.events import FetchFlow, FlowFetched
from legato.store.db import Database
from legato.store.models import Call as CallRow
from legato.twilio.accounts import signing_token
from legato.twilio.callbacks import signed_request
from legato.twilio.ids import account_sid, call_sid
from legato.twilio.models import TwilioCall
from legato.twilio.resource import API_VERSION
from legato.twilio.status import dial_status
from legato.twilio.twiml import MAX_TWIML_BYTES, TwimlError, translate

log = logging.getLogger("legato.twilio")

#: Twilio waits 15 s for a TwiML document; so do we.
FETCH_TIMEOUT = 15.0


#: Waits (seconds) for the row of a call that started before it was stored.
STORE_WAITS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8)


class NotStored(TwimlError):
    """The call has no row (yet)."""


@dataclass(frozen=True, slots=True)
class _Who:
    account_id: str
    call_sid: str
    token: str | None


def documents(body: bytes, content_type: str, url: str, method: str) -> list[Step]:
    """The steps of a fetched document: Legato JSON (application/json) or TwiML."""
    if len(body) > MAX_TWIML_BYTES:
        raise TwimlError(f"the document is {len(body)} bytes; the limit is {MAX_TWIML_BYTES}")
    if "json" in content_type.lower():
        try:
            data: Any = json.loads(body)
        except ValueError as exc:
            raise TwimlError(f"the Legato flow document is not valid JSON: {exc}") from None
        if isinstance(data, dict) and "flow" in data:
            data = data["flow"]
        try:
            return parse_flow(data)
        except ValidationError as exc:
            (loc, rule), *_ = describe_errors(exc.errors())
            where = ".".join(str(p) for p in loc) or "(document)"
            raise TwimlError(f"the Legato flow document is invalid at {where}: {rule}") from None
    return translate(body, url, method)


def twilio_params(command: FetchFlow, call: Any, who: _Who) -> list[tuple[str, str]]:
    """The request parameters of a fetch: the call's facts and why it is fetched."""
    spec = call.spec
    record = call.record
    inbound = spec.service in (Service.INCOMING, Service.MISSED_CALL)
    caller = spec.leg1[0] if spec.leg1 else ""
    frm, to = (caller, spec.number) if inbound else (spec.number, caller)
    answered = any(leg.answered_at is not None for leg in record.legs if leg.leg == 1)
    params: list[tuple[str, str]] = [
        ("AccountSid", account_sid(who.account_id)), ("ApiVersion", API_VERSION),
        ("CallSid", who.call_sid),
        ("CallStatus", "in-progress" if answered else "ringing"),
        ("Direction", "inbound" if inbound else "outbound-api"),
        ("From", frm), ("Caller", frm), ("To", to), ("Called", to),
        ("LegatoCallId", spec.id), ("LegatoEvent", command.params.get("event", "")),
    ]
    p = command.params
    if p.get("event") == "gather":
        params.append(("Digits", p.get("digits", "")))
    elif p.get("event") == "dial":
        number = p.get("number", "")
        params += [
            ("DialCallStatus", dial_status(p.get("outcome", ""))),
            ("DialCallSid", call_sid(f"{spec.id}:dial:{command.request}:{number}")),
            ("DialCallDuration", str(int(float(p.get("talk_seconds") or 0)))),
            ("LegatoDialOutcome", p.get("outcome", "")),
            ("LegatoDialNumber", number),
        ]
        if p.get("sip_code"):
            params.append(("DialSipResponseCode", p["sip_code"]))
    return params


class HttpFlowFetcher:
    """The `SimNetwork` fetcher of `legato serve`: one HTTP fetch per `FetchFlow`."""

    def __init__(self, database: Database, client: httpx.AsyncClient,
                 wake: Callable[[], None]) -> None:
        self.database = database
        self.client = client
        self.wake = wake  # tells the runtime's pump an answer is waiting
        self._who: dict[str, _Who] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, command: FetchFlow, call: Any,
                 reply: Callable[[FlowFetched], None]) -> None:
        task = asyncio.get_running_loop().create_task(self._fetch(command, call, reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _fetch(self, command: FetchFlow, call: Any,
                     reply: Callable[[FlowFetched], None]) -> None:
        try:
            steps = await self._document(command, call)
            answer = FlowFetched(command.request, tuple(steps))
        except TwimlError as exc:
            answer = FlowFetched(command.request, None, str(exc))
        except httpx.HTTPError as exc:
            answer = FlowFetched(command.request, None,
                                 f"fetching {command.url} failed: {type(exc).__name__}: {exc}")
        except Exception as exc:  # never leave the call waiting for an answer
            log.exception("fetching %s failed", command.url)
            answer = FlowFetched(command.request, None, f"internal error: {exc}")
        if call.finished:
            return
        reply(answer)
        self.wake()

    async def _document(self, command: FetchFlow, call: Any) -> list[Step]:
        who = await self._identify(call.spec.id)
        params = twilio_params(command, call, who)
        url, headers, body = signed_request(who.token, command.method, command.url, params)
        headers["Accept"] = "application/xml, text/xml, application/json"
        response = await self.client.request(command.method, url, headers=headers, content=body,
                                             timeout=FETCH_TIMEOUT)
        if not 200 <= response.status_code < 300:
            raise TwimlError(f"{command.method} {command.url} answered HTTP "
                             f"{response.status_code}")
        return documents(response.content, response.headers.get("content-type", ""),
                         command.url, command.method)

    async def _identify(self, call_id: str) -> _Who:
        who = self._who.get(call_id)
        if who is None:
            for delay in STORE_WAITS:
                try:
                    who = await asyncio.to_thread(self._load, call_id)
                    break
                except NotStored:
                    # A call that started by itself (an incoming SIP call) fetches its
                    # flow at once, while the runtime's writer is still inserting its row.
                    await asyncio.sleep(delay)
            else:
                who = await asyncio.to_thread(self._load, call_id)
            if len(self._who) > 10_000:
                self._who.clear()
            self._who[call_id] = who
        return who

    def _load(self, call_id: str) -> _Who:
        with self.database.session() as session:
            account_id = session.scalar(select(CallRow.account_id).where(CallRow.id == call_id))
            if account_id is None:
                raise NotStored(f"call {call_id} is not in the store")
            sid = session.scalar(select(TwilioCall.call_sid).where(TwilioCall.call_id == call_id))
            token = signing_token(session, account_id)
        if sid is None:
            sid = self._register(call_id, account_id)
        return _Who(account_id, sid, token)

    def _register(self, call_id: str, account_id: str) -> str:
        """Give a call the Twilio layer did not create (an incoming call, one placed with
        `/v1/calls`) its CallSid row before the SID is first sent out, so the app that gets
        it can fetch, list and update the call like Twilio's own (no status callbacks: it
        never asked for any)."""
        sid = call_sid(call_id)
        try:
            with self.database.session() as session:
                session.add(TwilioCall(call_sid=sid, call_id=call_id, account_id=account_id,
                                       reported=[], next_sequence=0))
        except IntegrityError:  # registered meanwhile by another fetch of the same call
            pass
        return sid
