"""Every store test runs against SQLite and the real PostgreSQL on 127.0.0.1:5432."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import pytest

from legato.core.catalogue import Service, Status
from legato.core.outcomes import Outcome
from legato.core.record import CallRecord, LegRecord
from legato.store.db import Database
from legato.store.scratch import scratch_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with scratch_url(request.param) as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.upgrade()
    yield database
    database.dispose()


def _click_to_call_record(
    call_id: str,
    started_at: datetime,
    status: Status = Status.ANSWER,
    *,
    agent: str = "+919811000001",
    customer: str = "+919811000002",
    talk: float = 7.5,
    pdd: float = 0.25,
) -> dict[str, object]:
    """A click-to-call record: leg 1 answers after 2 s; leg 2 as `status` says."""
    leg1 = LegRecord(
        leg=1,
        attempt=1,
        role="agent",
        number=agent,
        direction="outbound",
        outcome=Outcome.ANSWERED,
        sip_code=200,
        q850_cause=16,
        dialed_at=0.0,
        ringing_at=pdd,
        answered_at=2.0,
        ended_by="leg1",
    )
    leg2 = LegRecord(
        leg=2,
        attempt=1,
        role="customer",
        number=customer,
        direction="outbound",
        dialed_at=2.0,
        ringing_at=2.0 + pdd,
    )
    rec = CallRecord(
        id=call_id,
        service=Service.CLICK_TO_CALL,
        number="+918047001000",
        started_at=started_at,
        t0=0.0,
        status=status,
        legs=[leg1, leg2],
        from_numbers=(agent,),
        to_numbers=(customer,),
        picked_by=agent,
    )
    if status is Status.ANSWER:
        leg2.outcome, leg2.sip_code, leg2.q850_cause = Outcome.ANSWERED, 200, 16
        leg2.answered_at = 4.0
        end = 4.0 + talk
        rec.answered_at, rec.connected_to, rec.disconnected_by = 4.0, customer, "leg1"
    else:
        leg2.outcome, leg2.sip_code, leg2.q850_cause = Outcome.BUSY, 486, 17
        end = 3.0
        rec.disconnected_by = "leg2"
    leg1.ended_at = leg2.ended_at = rec.ended_at = end
    return rec.to_dict()


RecordFactory = Callable[..., dict[str, object]]


@pytest.fixture
def make_record() -> RecordFactory:
    """Build call records with the core's own CallRecord, never hand-written JSON."""
    return _click_to_call_record
