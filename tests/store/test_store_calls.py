"""Calls: idempotent creation, live then final record, filters, pagination, export."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from legato.core.catalogue import Status
from legato.store import accounts
from legato.store import calls as store
from legato.store.accounts import NotFound
from legato.store.db import Database

RecordFactory = Callable[..., dict[str, object]]

T0 = datetime(2026, 11, 23, 5, 30, tzinfo=UTC)


def _new(key: str | None = None, to: str = "+919811000002", **extra: object) -> store.NewCall:
    body = {
        "service": "click_to_call",
        "number": "+918047001000",
        "from": ["+919811000001"],
        "to": [to],
        **extra,
    }
    return store.NewCall(
        service="click_to_call",
        number="+918047001000",
        from_numbers=("+919811000001",),
        to_numbers=(to,),
        request=body,
        custom_data={"order": 42},
        idempotency_key=key,
    )


def _account(db: Database, name: str = "Acme") -> str:
    with db.session() as s:
        return accounts.create_account(s, name).account_id


def test_idempotency_key_replays_same_body_and_rejects_another(db: Database) -> None:
    acc = _account(db)
    other = _account(db, "Other")
    with db.session() as s:
        first, created = store.create_call(s, acc, _new("k1"))
        assert created
    with db.session() as s:
        again, created = store.create_call(s, acc, _new("k1"))
        assert not created and again.id == first.id
        with pytest.raises(store.IdempotencyConflict) as err:
            store.create_call(s, acc, _new("k1", to="+919811000003"))
        assert err.value.call_id == first.id
    with db.session() as s:  # keys are per account: another tenant's key space is its own
        theirs, created = store.create_call(s, other, _new("k1"))
        assert created and theirs.id != first.id


def test_body_hash_ignores_key_order() -> None:
    assert store.body_hash({"a": 1, "b": [1, 2]}) == store.body_hash({"b": [1, 2], "a": 1})
    assert store.body_hash({"a": 1}) != store.body_hash({"a": 2})


def test_live_then_final_record_round_trips_with_legs_and_events(
    db: Database, make_record: RecordFactory
) -> None:
    acc = _account(db)
    with db.session() as s:
        call, _ = store.create_call(s, acc, _new(), now=T0)
        call_id = call.id
    live = make_record(call_id, T0)
    live["status"] = None
    with db.session() as s:
        store.save_live(s, call_id, live)
    with db.session() as s:
        doc = store.call_document(store.get_call(s, acc, call_id))
        assert doc["state"] == "in_progress" and doc["status"] is None
        assert len(doc["legs"]) == 2 and doc["custom_data"] == {"order": 42}
    final = make_record(call_id, T0, Status.ANSWER, talk=7.5)
    with db.session() as s:
        store.finish_call(s, call_id, final)
    with db.session() as s:
        row = store.get_call(s, acc, call_id, full=True)
        assert row.state == "completed" and row.status == "ANSWER"
        assert row.started_at == T0 and row.started_at.tzinfo is not None
        assert row.answered_at == T0 + timedelta(seconds=4)
        assert row.connected_seconds == pytest.approx(7.5)
        assert [(leg.leg, leg.outcome, leg.sip_code) for leg in row.legs] == [
            (1, "ANSWERED", 200),
            (2, "ANSWERED", 200),
        ]
        assert row.legs[0].pdd_ms == 250.0
        doc = store.call_document(row)
        assert doc["status"] == "ANSWER" and doc["connected_to"] == "+919811000002"
        with pytest.raises(NotFound):
            store.get_call(s, _account(db, "Intruder"), call_id)
    with db.session() as s:  # finishing twice keeps the first final record
        store.finish_call(s, call_id, make_record(call_id, T0, Status.BUSY_LEG2))
        assert store.get_call(s, acc, call_id).status == "ANSWER"


def test_filters_and_cursor_pagination_visit_every_call_once(
    db: Database, make_record: RecordFactory
) -> None:
    acc = _account(db)
    other = _account(db, "Other")
    ids: list[str] = []
    with db.session() as s:
        for i in range(7):
            call, _ = store.create_call(
                s, acc, _new(to=f"+91981100010{i}"), now=T0 + timedelta(minutes=i)
            )
            status = Status.ANSWER if i % 2 == 0 else Status.BUSY_LEG2
            store.finish_call(
                s,
                call.id,
                make_record(call.id, call.started_at, status, customer=f"+91981100010{i}"),
            )
            ids.append(call.id)
        store.create_call(s, other, _new())
    seen: list[str] = []
    cursor = None
    with db.session() as s:
        while True:
            page, cursor = store.list_calls(s, acc, store.CallFilter(), limit=3, cursor=cursor)
            seen += [c.id for c in page]
            if cursor is None:
                break
        assert seen == ids[::-1]
        busy = store.CallFilter(status=("BUSY_LEG2",))
        assert {c.id for c in store.list_calls(s, acc, busy)[0]} == {ids[1], ids[3], ids[5]}
        by_to = store.CallFilter(to_number="+919811000104")
        assert [c.id for c in store.list_calls(s, acc, by_to)[0]] == [ids[4]]
        by_leg = store.CallFilter(
            disconnected_by="leg2",
            started_after=T0 + timedelta(minutes=2),
            started_before=T0 + timedelta(minutes=5),
        )
        assert [c.id for c in store.list_calls(s, acc, by_leg)[0]] == [ids[3]]
        assert [c.id for c in store.iter_calls(s, acc, store.CallFilter(), batch=2)] == ids[::-1]
        with pytest.raises(store.BadCursor):
            store.list_calls(s, acc, store.CallFilter(), cursor="!!notacursor")


def test_unfinished_calls_lists_queued_and_in_progress(
    db: Database, make_record: RecordFactory
) -> None:
    acc = _account(db)
    with db.session() as s:
        queued, _ = store.create_call(s, acc, _new())
        live, _ = store.create_call(s, acc, _new(to="+919811000005"))
        store.save_live(s, live.id, {"legs": []})
        done, _ = store.create_call(s, acc, _new(to="+919811000006"))
        store.finish_call(s, done.id, make_record(done.id, done.started_at))
    with db.session() as s:
        assert [c.id for c in store.unfinished_calls(s)] == [queued.id, live.id]
