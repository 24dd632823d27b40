"""Calls: creation with idempotency, live state, the final record, queries and export."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, make_transient_to_detached, selectinload

from legato.store.accounts import NotFound
from legato.store.ids import new_id
from legato.store.models import Call, Event, Leg
from legato.store.types import UTCDateTime, utcnow

#: Call lifecycle states (the status is only known in the last one).
QUEUED, IN_PROGRESS, COMPLETED = "queued", "in_progress", "completed"
UNFINISHED = (QUEUED, IN_PROGRESS)


class IdempotencyConflict(Exception):
    """The idempotency key was used before with a different request body."""

    def __init__(self, key: str, call_id: str) -> None:
        super().__init__(key)
        self.key = key
        self.call_id = call_id


def body_hash(body: Any) -> str:
    """A stable hash of a request body: same JSON value, same hash, whatever the key order."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def party_index(numbers: Sequence[str]) -> str:
    """`|a|b|`: lets `from`/`to` filters match one number of a list on every engine."""
    return "|" + "|".join(numbers) + "|" if numbers else ""


@dataclass(frozen=True, slots=True)
class NewCall:
    """What the API validated for a new call."""

    service: str
    number: str
    from_numbers: tuple[str, ...]
    to_numbers: tuple[str, ...]
    request: dict[str, Any]
    custom_data: Any = None
    callback_url: str | None = None
    idempotency_key: str | None = None


def create_call(
    session: Session,
    account_id: str,
    new: NewCall,
    now: datetime | None = None,
    call_id: str | None = None,
) -> tuple[Call, bool]:
    """Store a new call, or return the earlier one for a repeated idempotency key.
    ``call_id``: the id the runtime already gave a call that started by itself (incoming).

    Returns (call, created). The same key with another body raises IdempotencyConflict.
    The unique (account, key) constraint settles races between concurrent requests.
    """
    digest = body_hash(new.request)
    if new.idempotency_key is not None:
        earlier = _by_idempotency_key(session, account_id, new.idempotency_key)
        if earlier is not None:
            return _replay(earlier, new.idempotency_key, digest), False
    call, row = _new_call(account_id, new, now or utcnow(), call_id or new_id("call"), digest)
    # A Core INSERT, not an ORM flush (the unit of work costs more than the statement).
    if new.idempotency_key is None:
        session.execute(_INSERT_CALL, row)
    else:
        try:
            with session.begin_nested():
                session.execute(_INSERT_CALL, row)
        except IntegrityError:
            earlier = _by_idempotency_key(session, account_id, new.idempotency_key)
            if earlier is None:
                raise
            return _replay(earlier, new.idempotency_key, digest), False
    session.add(call)
    return call, True


def build_calls(items: Sequence[tuple[str, NewCall, datetime, str]]) -> NewRows:
    """New calls without an idempotency key (account, call, start, id), built but not
    written: `insert_calls` writes them in one statement. A writer builds them before
    its first write (SQLite's write lock is taken there)."""
    built = [
        _new_call(a, new, started, call_id, body_hash(new.request))
        for a, new, started, call_id in items
    ]
    return NewRows([c for c, _ in built], [r for _, r in built])


def insert_calls(session: Session, new: NewRows) -> list[Call]:
    """Write what `build_calls` built (one executemany); the Calls join the session."""
    if new.rows:
        session.execute(_INSERT_CALL, new.rows)
        session.add_all(new.calls)
    return new.calls


@dataclass(slots=True)
class NewRows:
    calls: list[Call]
    rows: list[dict[str, Any]]


def _new_call(
    account_id: str, new: NewCall, started: datetime, call_id: str, digest: str
) -> tuple[Call, dict[str, Any]]:
    """A new call's whole row and its Call, clean as if loaded (reading it never queries)."""
    row = _new_row(
        id=call_id,
        account_id=account_id,
        service=new.service,
        state=QUEUED,
        number=new.number,
        from_numbers=list(new.from_numbers),
        to_numbers=list(new.to_numbers),
        from_index=party_index(new.from_numbers),
        to_index=party_index(new.to_numbers),
        started_at=started,
        custom_data=new.custom_data,
        callback_url=new.callback_url,
        idempotency_key=new.idempotency_key,
        request_hash=digest,
        request=new.request,
        record={},
    )
    call = Call(**row)
    make_transient_to_detached(call)
    return call, row


_CALLS = cast(Table, Call.__table__)
_LEGS = cast(Table, Leg.__table__)
_EVENTS = cast(Table, Event.__table__)
_INSERT_CALL = _CALLS.insert()
#: Every column of the calls table with its model default (None where it has none).
_CALL_DEFAULTS = tuple((column.key, column.default) for column in _CALLS.columns)


def _new_row(**values: Any) -> dict[str, Any]:
    """A whole new calls row: `values`, and the model's default for every other column, so
    that the Call built from it has every attribute loaded (reading one never queries)."""
    for key, default in _CALL_DEFAULTS:
        if key not in values:
            if default is None:
                values[key] = None
            elif default.is_callable:
                values[key] = default.arg(None)  # type: ignore[attr-defined]
            else:
                values[key] = default.arg  # type: ignore[attr-defined]
    return values


def _by_idempotency_key(session: Session, account_id: str, key: str) -> Call | None:
    return session.scalar(
        select(Call).where(Call.account_id == account_id, Call.idempotency_key == key)
    )


def _replay(earlier: Call, key: str, digest: str) -> Call:
    if earlier.request_hash != digest:
        raise IdempotencyConflict(key, earlier.id)
    return earlier


#: Columns only the runtime needs (replay inputs): never loaded to answer a read.
_READ_ONLY_VIEW = (defer(Call.journal), defer(Call.snapshot), defer(Call.request))


def get_call(session: Session, account_id: str, call_id: str, *, full: bool = False) -> Call:
    """The account's call; another account's call is reported as not found."""
    stmt = (
        select(Call)
        .where(Call.account_id == account_id, Call.id == call_id)
        .options(*_READ_ONLY_VIEW)
    )
    if full:
        stmt = stmt.options(selectinload(Call.legs), selectinload(Call.events))
    call = session.scalar(stmt)
    if call is None:
        raise NotFound(f"call {call_id} not found")
    return call


def save_live(
    session: Session,
    call_id: str,
    record: dict[str, Any],
    journal: list[Any] | None = None,
    snapshot: dict[str, Any] | None = None,
) -> None:
    """Persist the running call's partial record and journal (one UPDATE, no read)."""
    save_lives(session, [Live(call_id, record, journal, snapshot)])


@dataclass(frozen=True, slots=True)
class Live:
    """A running call's partial record, as the runtime hands it to the store."""

    call_id: str
    record: dict[str, Any]
    journal: list[Any] | None = None
    snapshot: dict[str, Any] | None = None


def save_lives(session: Session, lives: Sequence[Live]) -> None:
    """Persist running calls' partial records: one UPDATE statement run for all of them
    (an executemany: one statement built and compiled, not one per call; pipelined on
    PostgreSQL). A call already completed is left as it is."""
    now = utcnow()
    groups: dict[tuple[bool, bool], list[dict[str, Any]]] = {}
    for live in lives:
        row: dict[str, Any] = {
            "b_id": live.call_id, "b_record": live.record, "b_journal": live.journal}
        row["b_snapshot"] = live.snapshot
        if live.snapshot is not None:  # the first write since the call started
            row["b_started_at"] = _started(live.record)
        groups.setdefault((live.journal is not None, live.snapshot is not None), []).append(row)
    for (with_journal, with_snapshot), rows in groups.items():
        values: dict[str, Any] = {
            "state": IN_PROGRESS,
            "record": bindparam("b_record"),
            "updated_at": now,
        }
        if with_journal:
            values["journal"] = bindparam("b_journal")
        if with_snapshot:
            values["snapshot"] = bindparam("b_snapshot")
            values["started_at"] = _STARTED_AT
        session.execute(_update_open(values), rows)


#: A call's start as its record gives it (the runtime starts a call after its row was
#: stored: the record's times count from that start), else the stored one.
_STARTED_AT = func.coalesce(
    bindparam("b_started_at", type_=UTCDateTime()), _CALLS.c.started_at
)


def _started(record: dict[str, Any]) -> datetime | None:
    return _instant(record.get("started_at"))


def _update_open(values: dict[str, Any]) -> Any:
    """UPDATE calls SET values WHERE id = :b_id, unless the call is completed (Core: the
    writer's hot path needs no ORM session bookkeeping)."""
    calls = _CALLS
    return (
        calls.update()
        .where(calls.c.id == bindparam("b_id"), calls.c.state != COMPLETED)
        .values(**values)
    )


@dataclass(frozen=True, slots=True)
class Final:
    """A call's final record, as the runtime hands it to the store."""

    call_id: str
    record: dict[str, Any]
    end_reason: str | None = None
    journal: list[Any] | None = None
    snapshot: dict[str, Any] | None = None


def finish_call(
    session: Session,
    call_id: str,
    record: dict[str, Any],
    end_reason: str | None = None,
    journal: list[Any] | None = None,
    snapshot: dict[str, Any] | None = None,
) -> bool:
    """Write one final record; False when the call is unknown or already completed."""
    return bool(finish_calls(session, [Final(call_id, record, end_reason, journal, snapshot)]))


def finish_calls(session: Session, finals: Sequence[Final]) -> list[str]:
    """Write final records: the calls not completed yet (read in one query, locked on
    PostgreSQL) get their columns in one UPDATE statement run for all, then the legs and
    events of all of them go in two bulk INSERTs. Returns the ids of the calls finished now
    (a call given twice is finished by its first record)."""
    return apply_finals(session, prepare_finals(session, finals))


@dataclass(slots=True)
class Ending:
    """Final records read and turned into rows, not written yet (`prepare_finals`)."""

    finished: list[str] = field(default_factory=list)
    groups: dict[tuple[bool, bool], list[dict[str, Any]]] = field(default_factory=dict)
    legs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    now: datetime | None = None


def prepare_finals(session: Session, finals: Sequence[Final]) -> Ending:
    """The reading and row-building half of `finish_calls`: no write, so a writer can do
    it before taking SQLite's write lock (the runtime's writer does)."""
    calls = _CALLS
    if not finals:
        return Ending()
    ids = list(dict.fromkeys(f.call_id for f in finals))
    open_stmt = select(calls.c.id).where(calls.c.id.in_(ids), calls.c.state != COMPLETED)
    if session.get_bind().dialect.name == "postgresql":
        open_stmt = open_stmt.with_for_update()
    still_open = set(session.scalars(open_stmt))
    finished: list[str] = []
    groups: dict[tuple[bool, bool], list[dict[str, Any]]] = {}
    legs: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    now = utcnow()
    for final in finals:
        if final.call_id not in still_open:
            continue
        still_open.discard(final.call_id)
        record = final.record
        answered_at = _instant(record.get("answered_at"))
        ended_at = _instant(record.get("ended_at"))
        row: dict[str, Any] = {
            "b_id": final.call_id,
            "b_status": record.get("status"),
            "b_answered_at": answered_at,
            "b_ended_at": ended_at,
            "b_duration_seconds": record.get("duration_seconds"),
            "b_billable_seconds": record.get("billable_seconds"),
            "b_connected_seconds": (
                (ended_at - answered_at).total_seconds() if answered_at and ended_at else None
            ),
            "b_disconnected_by": record.get("disconnected_by"),
            "b_connected_to": record.get("connected_to"),
            "b_picked_by": record.get("picked_by"),
            "b_end_reason": final.end_reason,
            "b_started_at": _started(record),
            "b_record": record,
            "b_journal": final.journal,
            "b_snapshot": final.snapshot,
        }
        key = (final.journal is not None, final.snapshot is not None)
        groups.setdefault(key, []).append(row)
        finished.append(final.call_id)
        legs.extend(_legs(final.call_id, record.get("legs") or []))
        events.extend(_events(final.call_id, record.get("events") or []))
    return Ending(finished, groups, legs, events, now)


def apply_finals(session: Session, ending: Ending) -> list[str]:
    """The writing half of `finish_calls`; returns the ids of the calls finished."""
    for (with_journal, with_snapshot), rows in ending.groups.items():
        values: dict[str, Any] = {name: bindparam(f"b_{name}") for name in _FINAL_COLUMNS}
        values.update(state=COMPLETED, updated_at=ending.now, started_at=_STARTED_AT)
        if with_journal:
            values["journal"] = bindparam("b_journal")
        if with_snapshot:
            values["snapshot"] = bindparam("b_snapshot")
        session.execute(_update_open(values), rows)
    if ending.legs:
        session.execute(_LEGS.insert(), ending.legs)
    if ending.events:
        session.execute(_EVENTS.insert(), ending.events)
    return ending.finished


#: The call columns a final record sets (besides state, journal, snapshot, updated_at).
_FINAL_COLUMNS = (
    "status",
    "answered_at",
    "ended_at",
    "duration_seconds",
    "billable_seconds",
    "connected_seconds",
    "disconnected_by",
    "connected_to",
    "picked_by",
    "end_reason",
    "record",
)


def _legs(call_id: str, legs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "call_id": call_id,
            "position": i,
            "leg": leg["leg"],
            "attempt": leg.get("attempt", 1),
            "role": leg.get("role"),
            "number": leg.get("number"),
            "direction": leg.get("direction"),
            "outcome": leg.get("outcome"),
            "sip_code": leg.get("sip_code"),
            "sip_reason": leg.get("sip_reason"),
            "q850_cause": leg.get("q850_cause"),
            "q850_derived": leg.get("q850_derived"),
            "dialed_at": _instant(leg.get("dialed_at")),
            "ringing_at": _instant(leg.get("ringing_at")),
            "answered_at": _instant(leg.get("answered_at")),
            "ended_at": _instant(leg.get("ended_at")),
            "ended_by": leg.get("ended_by"),
            "ring_seconds": leg.get("ring_seconds"),
            "talk_seconds": leg.get("talk_seconds"),
            "pdd_ms": leg.get("pdd_ms"),
        }
        for i, leg in enumerate(legs)
    ]


_EVENT_KEYS = ("t", "type", "leg")


def _events(call_id: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "call_id": call_id,
            "seq": i,
            "t": float(e.get("t", 0.0)),
            "leg": e.get("leg"),
            "type": str(e.get("type", "")),
            "data": {k: v for k, v in e.items() if k not in _EVENT_KEYS},
        }
        for i, e in enumerate(events)
    ]


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def unfinished_calls(session: Session) -> list[Call]:
    """Calls left queued or in progress, e.g. by a crash, oldest first."""
    return list(session.scalars(select(Call).where(Call.state.in_(UNFINISHED)).order_by(Call.id)))


@dataclass(frozen=True, slots=True)
class CallFilter:
    """The filters `GET /v1/calls`, the CSV export and `legato calls list` share."""

    status: tuple[str, ...] = ()
    service: str | None = None
    state: str | None = None
    number: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    disconnected_by: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        if self.status:
            stmt = stmt.where(Call.status.in_(self.status))
        if self.service:
            stmt = stmt.where(Call.service == self.service)
        if self.state:
            stmt = stmt.where(Call.state == self.state)
        if self.number:
            stmt = stmt.where(Call.number == self.number)
        if self.from_number:
            stmt = stmt.where(Call.from_index.contains(f"|{self.from_number}|", autoescape=True))
        if self.to_number:
            stmt = stmt.where(Call.to_index.contains(f"|{self.to_number}|", autoescape=True))
        if self.disconnected_by:
            stmt = stmt.where(Call.disconnected_by == self.disconnected_by)
        if self.started_after:
            stmt = stmt.where(Call.started_at >= self.started_after)
        if self.started_before:
            stmt = stmt.where(Call.started_at < self.started_before)
        return stmt


class BadCursor(ValueError):
    """A cursor that this server did not hand out."""


def encode_cursor(call_id: str) -> str:
    return base64.urlsafe_b64encode(call_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor(cursor) from exc
    if not raw.startswith("call_"):
        raise BadCursor(cursor)
    return raw


def list_calls(
    session: Session,
    account_id: str,
    where: CallFilter,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Call], str | None]:
    """A page of calls, newest first, and the cursor of the next page (None at the end).

    Keyset pagination on the time-ordered id: stable while new calls arrive.
    """
    stmt = where.apply(select(Call).where(Call.account_id == account_id).options(*_READ_ONLY_VIEW))
    if cursor is not None:
        stmt = stmt.where(Call.id < decode_cursor(cursor))
    rows = list(session.scalars(stmt.order_by(Call.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].id) if more and rows else None)


def iter_calls(
    session: Session, account_id: str, where: CallFilter, batch: int = 500
) -> Iterator[Call]:
    """Every matching call, newest first, fetched in keyset batches (bounded memory)."""
    cursor: str | None = None
    while True:
        rows, cursor = list_calls(session, account_id, where, batch, cursor)
        yield from rows
        session.expunge_all()
        if cursor is None:
            return


def call_document(call: Call, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """The call as the API, the CLI and exports show it: the DESIGN section 7 record
    (partial while the call runs) plus the request's echo and the lifecycle state.
    ``record``: the call's record when the caller has it (then `call.record` is not read)."""
    record = (call.record if record is None else record) or {}
    doc: dict[str, Any] = {
        "id": call.id,
        "service": call.service,
        "state": call.state,
        "status": call.status if call.state == COMPLETED else None,
        "status_description": record.get("status_description") if call.state == COMPLETED else None,
        "number": call.number,
        "from": list(call.from_numbers),
        "to": list(call.to_numbers),
        "started_at": call.started_at.isoformat(),
        "answered_at": record.get("answered_at"),
        "ended_at": record.get("ended_at"),
        "duration_seconds": record.get("duration_seconds"),
        "billable_seconds": record.get("billable_seconds"),
        "disconnected_by": record.get("disconnected_by"),
        "connected_to": record.get("connected_to"),
        "picked_by": record.get("picked_by"),
        "admission": record.get("admission"),
        "end_reason": call.end_reason,
        "custom_data": call.custom_data,
        "callback_url": call.callback_url,
        "legs": record.get("legs") or [],
        "events": record.get("events") or [],
        "recording": record.get("recording"),
    }
    return doc
