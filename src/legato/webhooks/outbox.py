"""The outbox: webhook events and their deliveries, written in the caller's transaction.

`on_call_writes` is called by the runtime's writer inside the transaction that persists
call state, so an event row exists if and only if the state change behind it committed.
`reconcile` covers calls a path outside that writer finished (crash recovery at start-up):
it derives their missing events from the stored final record, once, under the same cursor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Protocol, cast

from sqlalchemy import Engine, Table, bindparam, event, insert, or_, select, update
from sqlalchemy.orm import Session

from legato.store.calls import COMPLETED, call_document
from legato.store.ids import new_id
from legato.store.memory import Memory
from legato.store.models import Call
from legato.store.types import utcnow
from legato.webhooks.claim import Claim
from legato.webhooks.events import Progress, envelope, pending_events, subscribed
from legato.webhooks.models import (
    CALLBACK,
    ENDPOINT,
    PENDING,
    WebhookCallCursor,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from legato.webhooks.signing import new_secret, signing_keys

log = logging.getLogger("legato.webhooks")

#: How far back start-up reconciliation looks for completed calls without their events.
RECONCILE_WINDOW = timedelta(hours=24)


class CallWrite(Protocol):
    """What the runtime's writer persists for a call (its `_Write` has these fields)."""

    call_id: str
    record: dict[str, Any]
    final: bool


# ------------------------------------------------------------------ wake-ups
_wakers: list[Callable[[], None]] = []
_wakers_lock = threading.Lock()


def add_waker(fn: Callable[[], None]) -> None:
    """Call `fn` (from any thread) after a transaction that queued deliveries commits."""
    with _wakers_lock:
        _wakers.append(fn)


def remove_waker(fn: Callable[[], None]) -> None:
    with _wakers_lock:
        if fn in _wakers:
            _wakers.remove(fn)


def _wake_all(_session: Session) -> None:
    with _wakers_lock:
        wakers = list(_wakers)
    for fn in wakers:
        try:
            fn()
        except Exception:  # a closed loop must not fail the writer's commit
            log.debug("webhook waker failed", exc_info=True)


# ------------------------------------------------------------------ hand-over
class LocalWorker(Protocol):
    """The delivery worker of this process, as the outbox sees it."""

    @property
    def worker_id(self) -> str: ...

    @property
    def lease_seconds(self) -> float: ...

    def is_sending(self, pair: tuple[str, str]) -> bool:
        """Whether a run of this (endpoint, call) is in progress (any thread may ask)."""

    def hand_over(self, items: list[Claim]) -> None:
        """Send these now (called from the writer's thread after the commit)."""


_local: dict[str, LocalWorker] = {}


def set_local_worker(engine: Engine, worker: LocalWorker | None) -> None:
    """Let the writer lease new deliveries to `worker` in their own transaction and hand
    them over after the commit: no claim query, no poll between a call's end and its
    event's first attempt. Keyed by database, for processes that hold several."""
    with _wakers_lock:
        if worker is None:
            _local.pop(_database_key(engine), None)
        else:
            _local[_database_key(engine)] = worker


def _local_worker(session: Session) -> LocalWorker | None:
    if not _local:
        return None
    return _local.get(_database_key(session.get_bind().engine))


def _database_key(engine: Engine) -> str:
    """The database an engine reaches (two engines on one URL reach the same one)."""
    return engine.url.render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a call's events go: an endpoint, or the account's per-call callback URL."""

    endpoint_id: str
    url: str
    events: list[str]
    kind: str
    enabled: bool
    keys: tuple[bytes, ...]


# ------------------------------------------------------------------ the hook
def on_call_writes(session: Session, writes: Sequence[CallWrite]) -> int:
    """Queue the webhook events these call writes imply; returns how many deliveries."""
    return prepare_call_writes(session, writes)()


def prepare_call_writes(session: Session, writes: Sequence[CallWrite]) -> Callable[[], int]:
    """Read and work out what these call writes imply; return the function that writes
    it (and returns how many deliveries). The runtime's writer calls this before its own
    writes and the result after them, in one transaction: on SQLite the store's single
    write lock is then held only while rows are written, not while events are built.

    A handful of statements per batch whatever its size: the calls, their endpoints and
    cursors are read in one query each, and the new rows are written in bulk. A final
    write's call is read before its final state is written: its document takes that
    state from the write (`_as_written`).
    """
    if not writes:
        return _nothing
    ids = list(dict.fromkeys(w.call_id for w in writes))
    with session.no_autoflush:
        calls = {row.id: row for row in session.execute(select(*_LIGHT).where(Call.id.in_(ids)))}
        endpoints = _endpoints(session, {row.account_id for row in calls.values()})
        # A call's final write matters to any target; a live write only to targets of
        # some type other than call.completed (a callback URL receives every type).
        targeted_calls = {
            i for i, row in calls.items() if endpoints.get(row.account_id) or row.callback_url
        }
        live = {
            i
            for i in targeted_calls
            if calls[i].callback_url
            or any(_wants_live(e.events) for e in endpoints.get(calls[i].account_id, []))
        }
        useful = [w for w in writes if w.call_id in (targeted_calls if w.final else live)]
        needed = {w.call_id for w in useful}
        targeted = [i for i in ids if i in needed]
        if not targeted:
            return _nothing
        cursors = _cursors(session, targeted)
        callback = _callback_endpoints(
            session, {calls[i].account_id for i in targeted if calls[i].callback_url}
        )
    now = utcnow()
    new_cursors = {i: Progress(1, {}, False) for i in targeted if i not in cursors}
    progress = {**cursors, **new_cursors}
    events: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    routes: list[_Target] = []
    for w in useful:
        meta = calls[w.call_id]
        targets = [
            _target(e, e.url or "", e.events, now) for e in endpoints.get(meta.account_id, [])
        ]
        if meta.callback_url:
            targets.append(_target(callback[meta.account_id], meta.callback_url, [], now))
        call = _as_written(meta, w)
        _emit(
            progress[w.call_id], call, w.record, w.final, targets, now, events, deliveries, routes
        )
    # A cursor is saved when its call stored an event or ended. Events nobody receives
    # are only counted: recounted from the record on the call's next write, they get the
    # same numbers, so a live write that stores nothing needs no cursor write.
    keep = {e["call_id"] for e in events} | {w.call_id for w in writes if w.final}
    saved = {i: p for i, p in progress.items() if i in keep}
    fresh = {i: p for i, p in new_cursors.items() if i in keep}
    accounts = {i: calls[i].account_id for i in saved}
    local, chosen = _lease(session, deliveries, routes, now) if deliveries else (None, [])

    def apply() -> int:
        if saved:
            _save_cursors(session, saved, fresh, accounts, now)
        if not events:
            return 0
        session.execute(insert(WebhookEvent), events)  # events first: deliveries use them
        if deliveries:
            _insert_deliveries(session, deliveries, routes, events, local, chosen)
        return len(deliveries)

    return apply


def _wants_live(events: list[str] | None) -> bool:
    """Whether an endpoint subscribed to `events` receives any event of a running call."""
    return not events or any(e != "call.completed" for e in events)


def _nothing() -> int:
    return 0


def _as_written(row: Any, write: CallWrite) -> Any:
    """The call as this write leaves it (the row was read before the write): started
    when its record says (the runtime starts a call after its row is stored, and the
    write sets that start) and, for a final write, completed."""
    raw = write.record.get("started_at")
    started = row.started_at if raw is None else datetime.fromisoformat(raw)
    completing = write.final and row.state != COMPLETED
    if not completing and started == row.started_at:
        return row
    values = dict(row._mapping)
    values["started_at"] = started
    if completing:
        values.update(
            state=COMPLETED,
            status=write.record.get("status"),
            end_reason=getattr(write, "end_reason", None),
        )
    return SimpleNamespace(**values)


def _target(endpoint: Any, url: str, events: list[str], now: datetime) -> _Target:
    enabled = bool(endpoint.enabled)
    keys = signing_keys(endpoint, now) if enabled else ()
    return _Target(endpoint.id, url, list(events or []), endpoint.kind, enabled, keys)


def _lease(
    session: Session, deliveries: list[dict[str, Any]], routes: list[_Target], now: datetime
) -> tuple[LocalWorker | None, list[int]]:
    """Lease to this process's worker the deliveries it may send at once (their rows carry
    the lease; they are handed over after the commit). A delivery qualifies only if its
    call has no pending earlier delivery to that endpoint, or all of them are in the same
    worker's run in progress (it then queues behind them): a call's events still leave in
    order. The others wait for the worker's claim query, as before."""
    local = _local_worker(session)
    chosen: list[int] = []
    if local is None:
        return None, chosen
    d = WebhookDelivery
    busy = set()
    for r in session.execute(
        select(d.endpoint_id, d.call_id, d.leased_by)
        .where(d.call_id.in_({row["call_id"] for row in deliveries}), d.state == PENDING)
        .distinct()
    ):
        pair = (r.endpoint_id, r.call_id)
        if r.leased_by != local.worker_id or not local.is_sending(pair):
            busy.add(pair)
    until = now + timedelta(seconds=local.lease_seconds)
    for i, (row, route) in enumerate(zip(deliveries, routes, strict=True)):
        free = route.enabled and (row["endpoint_id"], row["call_id"]) not in busy
        row["lease_until"] = until if free else None
        row["leased_by"] = local.worker_id if free else None
        if free:
            chosen.append(i)
    return local, chosen


def _insert_deliveries(
    session: Session,
    deliveries: list[dict[str, Any]],
    routes: list[_Target],
    events: list[dict[str, Any]],
    local: LocalWorker | None,
    chosen: list[int],
) -> None:
    """Insert the deliveries; hand the leased ones over after the commit, wake claimers
    for the others."""
    if local is None or not chosen:
        session.execute(insert(WebhookDelivery), deliveries)
        event.listen(session, "after_commit", _wake_all, once=True)
        return
    # RETURNING matched by (event, endpoint), not by position: ordered RETURNING makes
    # SQLite insert row by row.
    d = WebhookDelivery
    returned = session.execute(insert(d).returning(d.id, d.event_id, d.endpoint_id), deliveries)
    id_of = {(r.event_id, r.endpoint_id): r.id for r in returned}
    ids = [id_of[(row["event_id"], row["endpoint_id"])] for row in deliveries]
    bodies = {e["id"]: e["body"] for e in events}
    leased_at = time.monotonic()
    items = [
        Claim(
            delivery_id=ids[i],
            call_id=deliveries[i]["call_id"],
            endpoint_id=routes[i].endpoint_id,
            kind=routes[i].kind,
            url=routes[i].url,
            event_id=deliveries[i]["event_id"],
            body=bodies[deliveries[i]["event_id"]].encode("utf-8"),
            keys=routes[i].keys,
            attempts=0,
            leased_at=leased_at,
            handed_over=True,
        )
        for i in chosen
    ]
    event.listen(session, "after_commit", lambda _s: local.hand_over(items), once=True)
    if len(chosen) < len(deliveries):  # the others wait for a claim
        event.listen(session, "after_commit", _wake_all, once=True)


#: What events read of a call: its document without the JSON columns (the record is the
#: one being written; decoding journal, snapshot and request was a third of the hook's CPU).
_LIGHT = (
    Call.id,
    Call.account_id,
    Call.service,
    Call.state,
    Call.status,
    Call.number,
    Call.from_numbers,
    Call.to_numbers,
    Call.started_at,
    Call.end_reason,
    Call.custom_data,
    Call.callback_url,
)


#: How long the writer trusts an account's endpoints without reading them again (one
#: statement less per writer pass). Changes through this process's API apply at once,
#: an endpoint the delivery worker disables too (`forget_endpoints`); another process's
#: (the CLI against a running server) within this many seconds.
ENDPOINTS_SECONDS = 2.0
_endpoint_memory: Memory[str, list[_Endpoint]] = Memory(
    "webhook_endpoints", ENDPOINTS_SECONDS, WebhookEndpoint
)


def forget_endpoints() -> None:
    """The next writer pass reads the endpoints from the store."""
    _endpoint_memory.forget()


def _endpoints(session: Session, accounts: Iterable[str]) -> dict[str, list[_Endpoint]]:
    """Endpoints that receive new events: enabled, or paused by failures (kept, not lost)."""
    out: dict[str, list[_Endpoint]] = {}
    missing = []
    for account_id in accounts:
        known = _endpoint_memory.get(account_id)
        if known is None:
            missing.append(account_id)
        elif known:
            out[account_id] = known
    if not missing:
        return out

    def load() -> dict[str, list[_Endpoint]]:
        read: dict[str, list[_Endpoint]] = {a: [] for a in missing}
        rows = session.execute(
            select(*_ENDPOINT_COLUMNS).where(
                WebhookEndpoint.account_id.in_(missing),
                WebhookEndpoint.kind == ENDPOINT,
                or_(WebhookEndpoint.enabled.is_(True), WebhookEndpoint.disabled_by == "failures"),
            )
        )
        for r in rows:
            read[r.account_id].append(_Endpoint(*r))
        return read

    out.update((a, found) for a, found in _endpoint_memory.read_many(load).items() if found)
    return out


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """What the writer needs of an endpoint (`signing_keys` reads the secrets)."""

    id: str
    account_id: str
    url: str | None
    events: list[str]
    kind: str
    enabled: bool
    secret: str
    previous_secret: str | None
    previous_expires_at: datetime | None


_ENDPOINT_COLUMNS = tuple(getattr(WebhookEndpoint, f.name) for f in fields(_Endpoint))


def _callback_endpoints(session: Session, accounts: set[str]) -> dict[str, WebhookEndpoint]:
    """The per-account signer of per-call callback URLs, created on first need."""
    out: dict[str, WebhookEndpoint] = {}
    if not accounts:
        return out
    for e in session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.account_id.in_(list(accounts)), WebhookEndpoint.kind == CALLBACK
        )
    ):
        out.setdefault(e.account_id, e)
    for account_id in accounts - set(out):
        out[account_id] = callback_endpoint(session, account_id)
    return out


def callback_endpoint(session: Session, account_id: str) -> WebhookEndpoint:
    """The account's callback signer (one per account), created if missing."""
    found = session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.account_id == account_id, WebhookEndpoint.kind == CALLBACK
        )
    )
    if found is not None:
        return found
    endpoint = WebhookEndpoint(
        id=new_id("wh"),
        account_id=account_id,
        kind=CALLBACK,
        url=None,
        description="per-call callback URLs",
        events=[],
        enabled=True,
        consecutive_failures=0,
        secret=new_secret(),
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def _cursors(session: Session, call_ids: list[str]) -> dict[str, Progress]:
    """What each call has announced so far (calls never announced are absent).

    On PostgreSQL the rows are locked for the transaction. A call is run by one node and
    its writes are serialised by that node's writer, so two transactions never create the
    same call's cursor; reconciliation only touches calls that no runtime runs any more.
    """
    c = WebhookCallCursor
    stmt = select(c.call_id, c.next_sequence, c.legs, c.completed).where(c.call_id.in_(call_ids))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return {
        r.call_id: Progress(r.next_sequence, dict(r.legs or {}), bool(r.completed))
        for r in session.execute(stmt)
    }


def _save_cursors(
    session: Session,
    progress: dict[str, Progress],
    new: dict[str, Progress],
    accounts: dict[str, str],
    now: datetime,
) -> None:
    def row(call_id: str, p: Progress) -> dict[str, Any]:
        return {
            "call_id": call_id,
            "next_sequence": p.next_sequence,
            "legs": p.legs,
            "completed": p.completed,
            "updated_at": now,
        }

    if new:
        session.execute(
            insert(WebhookCallCursor),
            [{**row(i, p), "account_id": accounts[i]} for i, p in new.items()],
        )
    old = [row(i, p) for i, p in progress.items() if i not in new]
    if old:  # one Core executemany by primary key (the ORM's bulk path costs more)
        t = cast(Table, WebhookCallCursor.__table__)
        session.execute(
            update(t)
            .where(t.c.call_id == bindparam("b_call_id"))
            .values(
                next_sequence=bindparam("b_next_sequence"),
                legs=bindparam("b_legs"),
                completed=bindparam("b_completed"),
                updated_at=now,
            ),
            [{f"b_{k}": v for k, v in r.items() if k != "updated_at"} for r in old],
        )


def _emit(
    progress: Progress,
    call: Any,
    record: dict[str, Any],
    final: bool,
    targets: list[_Target],
    now: datetime,
    events: list[dict[str, Any]],
    deliveries: list[dict[str, Any]],
    routes: list[_Target],
) -> None:
    """Append the call's new events and their deliveries; advance its progress."""
    base = progress.next_sequence
    completed = call_document(call, record) if final else None
    new = pending_events(
        progress,
        record,
        final=final,
        initiated=_initiated(call),
        completed=completed,
        now=now,
    )
    for seq, ev in enumerate(new, start=base):
        wanted = [t for t in targets if subscribed(t.events, ev.type)]
        if not wanted:  # counted in the sequence, stored only if someone receives it
            continue
        event_id = new_id("msg")
        events.append(
            {
                "id": event_id,
                "account_id": call.account_id,
                "call_id": call.id,
                "sequence": seq,
                "type": ev.type,
                "body": envelope(ev, seq),
                "created_at": now,
            }
        )
        for target in wanted:
            routes.append(target)
            deliveries.append(
                {
                    "account_id": call.account_id,
                    "endpoint_id": target.endpoint_id,
                    "event_id": event_id,
                    "url": target.url,
                    "call_id": call.id,
                    "sequence": seq,
                    "event_type": ev.type,
                    "state": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )


def _initiated(call: Any) -> dict[str, Any]:
    """`call.initiated` data: who is called, from which number, with the client's data."""
    return {
        "id": call.id,
        "service": call.service,
        "number": call.number,
        "from": list(call.from_numbers),
        "to": list(call.to_numbers),
        "started_at": call.started_at.isoformat(),
        "custom_data": call.custom_data,
    }


# ------------------------------------------------------------------ reconciliation
class _Final:
    __slots__ = ("call_id", "final", "record")

    def __init__(self, call_id: str, record: dict[str, Any]) -> None:
        self.call_id = call_id
        self.record = record
        self.final = True


def reconcile(database: Any, batch: int = 200) -> int:
    """Write the missing events of completed calls (e.g. ended by crash recovery).

    Looks at calls completed within RECONCILE_WINDOW whose cursor is missing or not
    completed, for accounts that have an endpoint or calls with a callback URL.
    Returns how many calls were completed here.
    """
    since = utcnow() - RECONCILE_WINDOW
    with database.session() as session:
        with_endpoints = select(WebhookEndpoint.account_id).where(WebhookEndpoint.kind == ENDPOINT)
        rows = session.execute(
            select(Call.id)
            .outerjoin(WebhookCallCursor, WebhookCallCursor.call_id == Call.id)
            .where(
                Call.state == COMPLETED,
                Call.updated_at >= since,
                or_(Call.callback_url.is_not(None), Call.account_id.in_(with_endpoints)),
                or_(WebhookCallCursor.call_id.is_(None), WebhookCallCursor.completed.is_(False)),
            )
            .order_by(Call.id)
        ).all()
    ids = [r.id for r in rows]
    done = 0
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        with database.session() as session:
            records = session.execute(select(Call.id, Call.record).where(Call.id.in_(chunk)))
            writes = [_Final(r.id, dict(r.record or {})) for r in records]
            on_call_writes(session, writes)
            done += len(writes)
    return done


__all__ = [
    "add_waker",
    "on_call_writes",
    "prepare_call_writes",
    "reconcile",
    "remove_waker",
    "set_local_worker",
]
