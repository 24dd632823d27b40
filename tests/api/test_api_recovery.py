"""Crash recovery keeps what the driver, not the engine, wrote into a live record: a bridge
recording's path (the SIP driver sets it; the journal cannot replay it)."""

from __future__ import annotations

import time

from legato.core.engine import create_call
from legato.service.journal import JournaledCall
from legato.service.orders import order_for
from legato.service.runtime import INTERRUPTED, CallRuntime
from legato.service.spec import snapshot, spec_from_order
from legato.sim import SimNetwork
from legato.store import accounts
from legato.store import calls as store
from legato.store import numbers as numbers_store
from legato.store.db import Database

from .api_testkit import AGENT, CUSTOMER, NUMBER


def test_a_recovered_call_keeps_its_recording_path(db_url: str) -> None:
    database = Database(db_url)
    database.upgrade()
    with database.session() as s:
        account = accounts.create_account(s, "Acme").account_id
        numbers_store.create_number(s, account, NUMBER, {})
        call, _ = store.create_call(s, account, store.NewCall(
            "click_to_call", NUMBER, (AGENT,), (CUSTOMER,), {"service": "click_to_call"}))
        order = order_for(s, call)
    jcall = JournaledCall(create_call(spec_from_order(order, 0), 5.0), time.perf_counter(),
                          time.perf_counter)
    jcall.start(5.0)  # leg 1 dialled: the journal has the start
    live = {**jcall.record.to_dict(), "recording": "/srv/recordings/call.wav"}
    with database.session() as s:
        store.save_live(s, order.call_id, live, jcall.journal, snapshot(order, 5.0, 0))

    assert CallRuntime(database, SimNetwork({})).recover() == 1
    with database.session() as s:
        doc = store.call_document(store.get_call(s, account, order.call_id))
    assert doc["state"] == "completed" and doc["end_reason"] == INTERRUPTED
    assert doc["recording"] == "/srv/recordings/call.wav"
    assert doc["disconnected_by"] == "platform" and doc["legs"]
    database.dispose()
