"""The summary report's figures, checked against hand-computed values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from legato.core.catalogue import Status
from legato.store import accounts, reports
from legato.store import calls as store
from legato.store.db import Database

RecordFactory = Callable[..., dict[str, object]]

T0 = datetime(2026, 11, 23, 5, 30, tzinfo=UTC)


def _call(
    make_record: RecordFactory,
    s: object,
    acc: str,
    at: datetime,
    status: Status,
    talk: float,
    pdd: float,
) -> None:
    new = store.NewCall(
        service="click_to_call",
        number="+918047001000",
        from_numbers=("+919811000001",),
        to_numbers=("+919811000002",),
        request={"at": at.isoformat()},
    )
    call, _ = store.create_call(s, acc, new, now=at)  # type: ignore[arg-type]
    store.finish_call(
        s,
        call.id,
        make_record(  # type: ignore[arg-type]
            call.id, at, status, talk=talk, pdd=pdd
        ),
    )


def test_summary_figures(db: Database, make_record: RecordFactory) -> None:
    with db.session() as s:
        acc = accounts.create_account(s, "Acme").account_id
        other = accounts.create_account(s, "Other").account_id
        _call(make_record, s, acc, T0, Status.ANSWER, talk=10.0, pdd=0.1)
        _call(make_record, s, acc, T0 + timedelta(minutes=10), Status.ANSWER, talk=20.0, pdd=0.2)
        _call(make_record, s, acc, T0 + timedelta(hours=1), Status.BUSY_LEG2, talk=0, pdd=0.3)
        _call(make_record, s, other, T0, Status.ANSWER, talk=99.0, pdd=5.0)
        store.create_call(
            s,
            acc,
            store.NewCall(
                service="outbound",
                number="+918047001000",
                from_numbers=(),
                to_numbers=("+919811000009",),
                request={},
            ),
        )
    with db.session() as s:
        rep = reports.summary(s, acc, group_by="hour")
    tot = rep["totals"]
    assert tot["calls"] == 3 and rep["in_progress"] == 1
    assert tot["statuses"] == {"ANSWER": 2, "BUSY_LEG2": 1}
    assert tot["asr"] == pytest.approx(2 / 3, abs=1e-4)
    assert tot["ner"] == 1.0
    assert tot["acd_seconds"] == pytest.approx(15.0)
    # six legs, each with its PDD: 100,100,200,200,300,300 ms
    assert tot["pdd_ms_p50"] == 200.0 and tot["pdd_ms_p95"] == 300.0
    assert tot["disconnected_by"] == {
        "leg1": pytest.approx(2 / 3, abs=1e-4),
        "leg2": pytest.approx(1 / 3, abs=1e-4),
    }
    assert [(g["key"], g["calls"]) for g in rep["groups"]] == [
        ("2026-11-23T05:00:00Z", 2),
        ("2026-11-23T06:00:00Z", 1),
    ]
    with db.session() as s:
        day = reports.summary(s, acc, since=T0 + timedelta(minutes=5), group_by="day")
        assert [(g["key"], g["calls"]) for g in day["groups"]] == [("2026-11-23", 2)]
        by_status = reports.summary(s, acc, group_by="status")
        assert {g["key"]: g["asr"] for g in by_status["groups"]} == {
            "ANSWER": 1.0,
            "BUSY_LEG2": 0.0,
        }
