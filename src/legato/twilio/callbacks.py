"""Status callbacks in Twilio's form: derived in the call writer's transaction (an outbox),
delivered in sequence order per call, signed, retried with back-off.

Each call reports `initiated`, `ringing`, `answered` (CallStatus `in-progress`) and
`completed` at most once each, in that order, whatever the writes coalesced; the final
callback is sent for every call that has a StatusCallback, subscribed or not, so there is
exactly one per call. `SequenceNumber` counts the call's callbacks from 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
from sqlalchemy import event as sa_event
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from legato.store.calls import COMPLETED
from legato.store.db import Database
from legato.store.models import Call
from legato.store.types import utcnow
from legato.twilio.accounts import signing_token
from legato.twilio.ids import account_sid
from legato.twilio.models import DELIVERED, FAILED, PENDING, TwilioCall, TwilioCallback
from legato.twilio.resource import API_VERSION
from legato.twilio.signing import SIGNATURE_HEADER, signature
from legato.twilio.status import (
    call_status,
    rfc2822,
    sip_response_code,
    subscriber_legs,
    talk_seconds,
)

log = logging.getLogger("legato.twilio")

ORDER = ("initiated", "ringing", "answered", "completed")
#: How far back start-up reconciliation looks for finished calls without a final callback.
RECONCILE_WINDOW = timedelta(hours=24)
USER_AGENT = "Legato-Twilio-Layer/1"


class CallWrite(Protocol):
    call_id: str
    record: dict[str, Any]
    final: bool


# --------------------------------------------------------------------- deriving
def _reached(record: dict[str, Any], final: bool) -> dict[str, str | None]:
    """The progress events a record shows, with when each happened (ISO)."""
    legs = subscriber_legs(record)
    out: dict[str, str | None] = {"initiated": record.get("started_at")}
    ringing = next((leg["ringing_at"] for leg in legs if leg.get("ringing_at")), None)
    answered = next((leg["answered_at"] for leg in legs if leg.get("answered_at")), None)
    if ringing or answered:
        out["ringing"] = ringing or answered
    if answered:
        out["answered"] = answered
    if final:
        out["completed"] = record.get("ended_at")
    return out


def callback_params(row: TwilioCall, record: dict[str, Any], event: str, sequence: int,
                    at: str | None) -> list[tuple[str, str]]:
    """The form parameters of one callback: Twilio's names, then Legato's own facts."""
    final = event == "completed"
    status = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress"}.get(
        event) or call_status(record, True, row.ended_via_api)
    to = (record.get("to") or [""])[0]
    number = record.get("number") or ""
    params: list[tuple[str, str]] = [
        ("AccountSid", account_sid(row.account_id)), ("ApiVersion", API_VERSION),
        ("CallSid", row.call_sid), ("CallStatus", status), ("Direction", "outbound-api"),
        ("From", number), ("Caller", number), ("To", to), ("Called", to),
        ("CallbackSource", "call-progress-events"), ("SequenceNumber", str(sequence)),
        ("Timestamp", rfc2822(at) or rfc2822(utcnow()) or ""),
        ("LegatoCallId", row.call_id),
    ]
    code = sip_response_code(record)
    if final:
        seconds = talk_seconds(record)
        params += [("CallDuration", str(seconds)), ("Duration", str(math.ceil(seconds / 60)))]
        if code is not None:
            params.append(("SipResponseCode", str(code)))
        params += [("LegatoStatus", record.get("status") or ""),
                   ("LegatoStatusDescription", record.get("status_description") or ""),
                   ("LegatoDisconnectedBy", record.get("disconnected_by") or "")]
        flow_errors = [e for e in record.get("events") or [] if e.get("type") == "flow_error"]
        if flow_errors:  # the notification of a TwiML or flow document that could not run
            params.append(("LegatoFlowError", str(flow_errors[-1].get("error") or "")))
        admission = record.get("admission") or {}
        if admission.get("verdict") not in (None, "admit"):
            params.append(("LegatoAdmissionRule", str(admission.get("rule") or "")))
    elif event == "answered" and code is not None:
        params.append(("SipResponseCode", str(code)))
    for i, leg in enumerate(record.get("legs") or [], start=1):
        for key, name in (("number", "Number"), ("role", "Role"), ("outcome", "Outcome"),
                          ("sip_code", "SipCode"), ("q850_cause", "Q850Cause")):
            if leg.get(key) is not None:
                params.append((f"LegatoLeg{i}{name}", str(leg[key])))
    return params


_wakers: list[Callable[[], object]] = []
_wakers_lock = threading.Lock()


def _wake_senders(_session: Session) -> None:
    with _wakers_lock:
        wakers = list(_wakers)
    for wake in wakers:
        with contextlib.suppress(Exception):  # a closed loop must not fail a commit
            wake()


#: Calls this process placed with a StatusCallback and has not finished writing: only
#: their writes can imply callbacks, so the runtime writer's passes without any of them
#: skip the lookup (one statement per pass). Calls of an earlier process are ended by
#: crash recovery and get their callbacks from `reconcile`, not from the writer.
_watched: set[str] = set()


def watch(call_id: str) -> None:
    """A call with a StatusCallback was stored; call before it is launched."""
    _watched.add(call_id)


def on_runtime_writes(session: Session, writes: Sequence[CallWrite]) -> int:
    """The runtime writer's hook: `on_call_writes` for the watched calls among `writes`."""
    mine = [w for w in writes if w.call_id in _watched]
    if not mine:
        return 0
    ended = [w.call_id for w in mine if w.final]
    if ended:  # once their final callbacks are committed (a failed pass is retried)
        sa_event.listen(session, "after_commit", lambda _s: _watched.difference_update(ended))
    return on_call_writes(session, mine)


def on_call_writes(session: Session, writes: Sequence[CallWrite]) -> int:
    """Queue the callbacks these call writes imply (same transaction); returns how many."""
    ids = {w.call_id for w in writes}
    rows = {r.call_id: r for r in session.scalars(select(TwilioCall).where(
        TwilioCall.call_id.in_(ids), TwilioCall.status_callback.is_not(None)))}
    queued = 0
    for w in writes:
        row = rows.get(w.call_id)
        if row is None or "completed" in row.reported:
            continue
        reached = _reached(w.record, w.final)
        reported = list(row.reported)
        for event in ORDER:
            if event not in reached or event in reported:
                continue
            reported.append(event)
            if event != "completed" and event not in row.status_callback_events:
                continue
            assert row.status_callback is not None
            session.add(TwilioCallback(
                call_sid=row.call_sid, sequence=row.next_sequence, event=event,
                url=row.status_callback, method=row.status_callback_method,
                params=[list(p) for p in callback_params(
                    row, w.record, event, row.next_sequence, reached[event])]))
            row.next_sequence += 1
            queued += 1
        row.reported = reported
    if queued:  # the sender learns of them once they are committed
        sa_event.listen(session, "after_commit", _wake_senders, once=True)
    return queued


class _Final:
    """A call's stored final record, shaped like a writer's final write."""

    final = True

    def __init__(self, call_id: str, record: dict[str, Any]) -> None:
        self.call_id = call_id
        self.record = record


def reconcile(database: Database, window: timedelta = RECONCILE_WINDOW) -> int:
    """Queue the callbacks of calls a path outside the writer finished (crash recovery at
    start-up ends calls directly in the store); returns how many were queued."""
    since = utcnow() - window
    with database.session() as session:
        rows = session.execute(
            select(TwilioCall.call_id, TwilioCall.reported, Call.record)
            .join(Call, Call.id == TwilioCall.call_id)
            .where(TwilioCall.status_callback.is_not(None), TwilioCall.created_at >= since,
                   Call.state == COMPLETED)).all()
        finals = [_Final(call_id, record or {}) for call_id, reported, record in rows
                  if "completed" not in (reported or [])]
        return on_call_writes(session, finals) if finals else 0


def chain(*hooks: Callable[[Session, Sequence[Any]], object] | None
          ) -> Callable[[Session, Sequence[Any]], object]:
    """Run several writer hooks in the same transaction, in order."""
    present = [h for h in hooks if h is not None]

    def run(session: Session, writes: Sequence[Any]) -> Callable[[], None]:
        # A hook may return a function that writes what it prepared (the runtime's
        # writer calls it after its own writes): those run in the hooks' order.
        later = [f for f in (hook(session, writes) for hook in present) if callable(f)]

        def apply() -> None:
            for f in later:
                f()

        return apply

    return run


# --------------------------------------------------------------------- sending
def signed_request(token: str | None, method: str, url: str, params: list[tuple[str, str]]
                   ) -> tuple[str, dict[str, str], bytes | None]:
    """(url, headers, body) of a signed request: POST sends the parameters as a form (each
    repeated key kept), GET carries them in the URL."""
    headers = {"User-Agent": USER_AGENT}
    body: bytes | None
    signed: list[tuple[str, str]]
    if method == "GET":
        url = url + ("&" if "?" in url else "?") + urlencode(params)
        body, signed = None, []
    else:
        body, signed = urlencode(params).encode("ascii"), params
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token is not None:
        headers[SIGNATURE_HEADER] = signature(token, url, signed)
    return url, headers, body


class CallbackSender:
    """Delivers pending callbacks: per call in sequence order, each until 2xx or given up."""

    def __init__(self, database: Database, client: httpx.AsyncClient, *,
                 max_attempts: int = 8, base_delay: float = 1.0, max_delay: float = 300.0,
                 poll: float = 2.0, batch: int = 200, concurrency: int = 16) -> None:
        self.database = database
        self.client = client
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.poll = poll
        self.batch = batch
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)  # receivers are not flooded
        self._waker: Callable[[], object] = lambda: None

    async def start(self) -> None:
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._waker = lambda: loop.call_soon_threadsafe(self._wake.set)
        with _wakers_lock:
            _wakers.append(self._waker)
        self._task = asyncio.create_task(self._run(), name="legato-twilio-callbacks")

    async def stop(self) -> None:
        with _wakers_lock:
            if self._waker in _wakers:
                _wakers.remove(self._waker)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before looking: a wake-up during the pass is not lost
            try:
                due = await asyncio.to_thread(self._due)
                if due:
                    results = await asyncio.gather(*(self._send(d) for d in due))
                    await asyncio.to_thread(self._record, results)
                    continue
            except Exception:  # the sender keeps serving; the rows stay pending
                log.exception("twilio callback delivery pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)

    def _due(self) -> list[dict[str, Any]]:
        """Due callbacks that are the first pending one of their call (order per call);
        a call whose head is backing off waits, other calls go on."""
        earlier = aliased(TwilioCallback)
        head = ~exists().where(earlier.call_sid == TwilioCallback.call_sid,
                               earlier.state == PENDING,
                               earlier.sequence < TwilioCallback.sequence)
        with self.database.session() as session:
            rows = session.execute(
                select(TwilioCallback, TwilioCall.account_id)
                .join(TwilioCall, TwilioCall.call_sid == TwilioCallback.call_sid)
                .where(TwilioCallback.state == PENDING,
                       TwilioCallback.next_attempt_at <= utcnow(), head)
                .order_by(TwilioCallback.next_attempt_at, TwilioCallback.id)
                .limit(self.batch)).all()
            tokens: dict[str, str | None] = {}
            due = []
            for cb, account_id in rows:
                if account_id not in tokens:
                    tokens[account_id] = signing_token(session, account_id)
                due.append({"id": cb.id, "url": cb.url, "method": cb.method,
                            "params": [(k, v) for k, v in cb.params],
                            "attempts": cb.attempts, "token": tokens[account_id]})
            return due

    async def _send(self, cb: dict[str, Any]) -> tuple[int, int | None, str | None]:
        url, headers, body = signed_request(cb["token"], cb["method"], cb["url"], cb["params"])
        async with self._slots:
            try:
                try:
                    response = await self.client.request(cb["method"], url, headers=headers,
                                                         content=body)
                except (httpx.ReadError, httpx.RemoteProtocolError):
                    # a kept-alive connection the receiver had closed: one fresh try
                    response = await self.client.request(cb["method"], url, headers=headers,
                                                         content=body)
            except httpx.HTTPError as exc:
                return cb["id"], None, f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return cb["id"], response.status_code, None
        return cb["id"], response.status_code, f"HTTP {response.status_code}"

    def _record(self, results: list[tuple[int, int | None, str | None]]) -> None:
        now = utcnow()
        with self.database.session() as session:
            for cb_id, status, error in results:
                cb = session.get(TwilioCallback, cb_id)
                if cb is None:
                    continue
                cb.attempts += 1
                cb.last_status, cb.last_error = status, error
                if error is None:
                    cb.state = DELIVERED
                elif cb.attempts >= self.max_attempts:
                    cb.state = FAILED  # given up; later callbacks of the call go on
                    log.warning("twilio callback %s to %s failed %d times: %s",
                                cb.id, cb.url, cb.attempts, error)
                else:
                    delay = min(self.max_delay, self.base_delay * 2 ** (cb.attempts - 1))
                    cb.next_attempt_at = now + timedelta(
                        seconds=delay * random.uniform(0.5, 1.0))
