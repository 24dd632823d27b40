"""The delivery worker against real HTTP receivers on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import random
import time
from collections import defaultdict
from dataclasses import replace

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from legato.store import calls as call_store
from legato.store.db import Database
from legato.testing import free_port
from legato.webhooks import manage, outbox
from legato.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from legato.webhooks.outbox import on_call_writes
from legato.webhooks.settings import WebhookSettings

from .kit import (
    FAST,
    Write,
    add_call,
    calls_with_events,
    finish,
    new_account,
    running_worker,
    sim_record,
)
from .receiver import Behaviour, Receiver

EVENTS_PER_CALL = 8  # initiated, 2 legs x (ringing, answered, ended), completed


def endpoint(database: Database, account_id: str, url: str, **kw: object) -> tuple[str, str]:
    with database.session() as s:
        issued = manage.create_endpoint(s, account_id, url, **kw)  # type: ignore[arg-type]
        return issued.endpoint.id, issued.secret


def deliveries(database: Database, **where: object) -> list[WebhookDelivery]:
    with database.session() as s:
        stmt = select(WebhookDelivery).filter_by(**where).order_by(WebhookDelivery.id)
        return list(s.scalars(stmt))


def call_of(doc: dict) -> str:  # type: ignore[type-arg]
    """Leg events carry `call_id`; call events are the call itself (`id`)."""
    data = doc["data"]
    return str(data["call_id"] if "call_id" in data else data["id"])


def assert_in_order_per_call(received: list) -> dict[str, list[int]]:  # type: ignore[type-arg]
    """First sighting of each event id, per call, must come in sequence order."""
    seen: set[str] = set()
    per_call: dict[str, list[int]] = defaultdict(list)
    for r in received:
        if r.msg_id in seen:
            continue
        seen.add(r.msg_id)
        per_call[call_of(r.json)].append(r.json["sequence"])
    for call_id, seqs in per_call.items():
        assert seqs == sorted(seqs), f"{call_id} out of order: {seqs}"
        assert seqs == list(range(1, len(seqs) + 1)), f"{call_id} has gaps: {seqs}"
    return per_call


def test_every_event_delivered_signed_and_in_order(database: Database, receiver: Receiver) -> None:
    account, _ = new_account(database)
    _, secret = endpoint(database, account, receiver.url)
    ids = calls_with_events(database, account, 5)
    with running_worker(database):
        receiver.wait(lambda got: len(got) >= 5 * EVENTS_PER_CALL)
    got = receiver.delivered()
    wh = Webhook(secret)  # the independent implementation from PyPI
    for r in got:
        assert wh.verify(r.body, r.headers) == r.json
        assert r.msg_id.startswith("msg_")
        assert set(r.json) == {"type", "timestamp", "data", "sequence"}
    per_call = assert_in_order_per_call(got)
    assert set(per_call) == set(ids)
    for call_id in ids:
        types = [r.json["type"] for r in got if call_of(r.json) == call_id]
        assert types[0] == "call.initiated" and types[-1] == "call.completed"
        assert types.count("call.completed") == 1
        completed = next(
            r.json
            for r in got
            if r.json["type"] == "call.completed" and r.json["data"]["id"] == call_id
        )
        assert completed["data"]["status"] == "ANSWER"
        assert [leg["leg"] for leg in completed["data"]["legs"]] == [1, 2]
        ended = [
            r.json["data"]
            for r in got
            if r.json["type"] == "call.leg.ended" and r.json["data"]["call_id"] == call_id
        ]
        assert all({"outcome", "sip_code", "q850_cause"} <= set(d) for d in ended)
    assert {d.state for d in deliveries(database)} == {"delivered"}


def test_finishing_twice_does_not_announce_twice(database: Database, receiver: Receiver) -> None:
    account, _ = new_account(database)
    endpoint(database, account, receiver.url)
    call_id = add_call(database, account)
    record = sim_record(call_id)
    assert finish(database, call_id, record) == EVENTS_PER_CALL
    assert finish(database, call_id, record) == 0  # a retried write, recovery, a second node


def test_receiver_down_then_up(database: Database) -> None:
    port = free_port()
    account, _ = new_account(database)
    endpoint(database, account, f"http://127.0.0.1:{port}/hook")
    calls_with_events(database, account, 2)
    settings = replace(FAST, max_attempts=100)
    with running_worker(database, settings):
        time.sleep(0.6)  # nobody listens: connection refused, retried with back-off
        failed = deliveries(database)
        assert all(d.state == "pending" for d in failed)
        assert max(d.attempts for d in failed) >= 2
        receiver = Receiver(port=port).start()
        try:
            receiver.wait(lambda got: len({r.msg_id for r in got}) >= 2 * EVENTS_PER_CALL)
        finally:
            receiver.stop()
    assert_in_order_per_call(receiver.delivered())
    with database.session() as s:
        errors = list(
            s.scalars(select(WebhookAttempt.error).where(WebhookAttempt.error.is_not(None)))
        )
    assert errors and all("Connect" in e for e in errors)


def test_500s_are_retried_and_logged(database: Database, receiver: Receiver) -> None:
    receiver.behaviour = Behaviour(status=lambda n: 500 if n < 3 else 200)
    account, _ = new_account(database)
    endpoint_id, _ = endpoint(database, account, receiver.url)
    calls_with_events(database, account, 1)
    with running_worker(database):
        receiver.wait(lambda got: len(got) >= EVENTS_PER_CALL)
    assert [r.status for r in receiver.requests[:4]] == [500, 500, 500, 200]
    # the first event was retried until it passed, and nothing overtook it
    assert len({r.msg_id for r in receiver.requests[:4]}) == 1
    assert_in_order_per_call(receiver.delivered())
    with database.session() as s:
        docs, _ = manage.list_deliveries(s, account, endpoint_id, limit=500)
    first = next(d for d in docs if d["sequence"] == 1)
    assert [a["status_code"] for a in first["log"]] == [500, 500, 500, 200]
    assert first["log"][0]["error"] == "HTTP 500" and first["log"][0]["latency_ms"] > 0


def test_timeouts_and_slow_receivers(database: Database, receiver: Receiver) -> None:
    receiver.behaviour = Behaviour(delay=0.6)
    account, _ = new_account(database)
    endpoint_id, _ = endpoint(database, account, receiver.url)
    calls_with_events(database, account, 1)
    with running_worker(database, replace(FAST, timeout=0.3, max_attempts=100)):
        time.sleep(1.5)
        receiver.behaviour = Behaviour(delay=0.1)  # slow, but within the timeout
        receiver.wait(
            lambda got: (
                len({r.msg_id for r in got if r.at}) >= EVENTS_PER_CALL and _all_delivered(database)
            )
        )
    with database.session() as s:
        docs, _ = manage.list_deliveries(s, account, endpoint_id, limit=500)
    first = next(d for d in docs if d["sequence"] == 1)
    assert any(a["error"] and a["error"].startswith("timeout") for a in first["log"])
    ok = [a for d in docs for a in d["log"] if a["status_code"] == 200]
    assert ok and all(a["latency_ms"] >= 90 for a in ok)


def _all_delivered(database: Database) -> bool:
    return all(d.state == "delivered" for d in deliveries(database))


def test_given_up_event_lets_the_next_one_go(database: Database, receiver: Receiver) -> None:
    receiver.behaviour = Behaviour(status=lambda n: 503 if n < 3 else 200)
    account, _ = new_account(database)
    endpoint(database, account, receiver.url)
    calls_with_events(database, account, 1)
    with running_worker(database, replace(FAST, max_attempts=3)):
        receiver.wait(lambda got: len(got) >= EVENTS_PER_CALL - 1)
    rows = deliveries(database)
    assert [d.state for d in rows if d.sequence == 1] == ["failed"]
    assert all(d.state == "delivered" for d in rows if d.sequence > 1)
    assert [r.json["sequence"] for r in receiver.delivered()] == list(range(2, EVENTS_PER_CALL + 1))


def failing(database: Database, receiver: Receiver, status: int, calls: int) -> tuple[str, str]:
    """A receiver answering `status`, an endpoint for it, and `calls` calls' events."""
    receiver.behaviour = Behaviour(status=status)
    account, _ = new_account(database)
    endpoint_id, _ = endpoint(database, account, receiver.url)
    calls_with_events(database, account, calls)
    return account, endpoint_id


def test_endpoint_disabled_after_failures_keeps_events(
    database: Database, receiver: Receiver
) -> None:
    account, endpoint_id = failing(database, receiver, 500, calls=1)
    settings = replace(FAST, disable_after=4, disable_after_seconds=0.3, max_attempts=100)
    with running_worker(database, settings):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with database.session() as s:
                ep = s.get(WebhookEndpoint, endpoint_id)
                assert ep is not None
                if not ep.enabled:
                    break
            time.sleep(0.05)
        assert ep is not None and not ep.enabled and ep.disabled_by == "failures"
        with database.session() as s:  # the writer's memory of endpoints saw the disable
            (remembered,) = outbox._endpoints(s, [account])[account]
            assert not remembered.enabled
        assert "4 consecutive failed attempts over at least 0.3 s" in (ep.disabled_reason or "")
        assert ep.failing_since is not None and ep.disabled_at is not None
        assert (ep.disabled_at - ep.failing_since).total_seconds() >= 0.3
        assert "HTTP 500" in (ep.disabled_reason or "")
        n = len(receiver.requests)
        time.sleep(0.5)
        assert len(receiver.requests) == n  # nothing is sent to a disabled endpoint
        # events of new calls are kept for it while it is disabled by failures
        calls_with_events(database, account, 1)
        assert sum(1 for d in deliveries(database) if d.state == "pending") == 2 * EVENTS_PER_CALL
        receiver.behaviour = Behaviour(status=200)
        with database.session() as s:
            manage.update_endpoint(s, account, endpoint_id, enabled=True)
        receiver.wait(lambda got: len({r.msg_id for r in got}) >= 2 * EVENTS_PER_CALL)
    assert_in_order_per_call(receiver.delivered())


def test_a_short_outage_under_load_does_not_disable_the_endpoint(
    database: Database, receiver: Receiver
) -> None:
    """Many failed attempts in a short time (a receiver restarting while calls keep
    ending) are not a reason to disable: the run must also last `disable_after_seconds`.
    When the receiver is back, everything arrives without the account doing anything."""
    _, endpoint_id = failing(database, receiver, 503, calls=3)
    settings = replace(FAST, disable_after=4, disable_after_seconds=3600, max_attempts=1000)
    with running_worker(database, settings):
        deadline = time.monotonic() + 10
        while len(receiver.requests) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)  # well past 4 failed attempts
        time.sleep(0.3)  # recorded (every 100 ms)
        with database.session() as s:
            ep = s.get(WebhookEndpoint, endpoint_id)
            assert ep is not None and ep.enabled and ep.consecutive_failures >= 4
            assert ep.failing_since is not None
        receiver.behaviour = Behaviour(status=200)
        receiver.wait(lambda got: len({r.msg_id for r in got}) >= 3 * EVENTS_PER_CALL)
        deadline = time.monotonic() + 5  # attempts are recorded every 100 ms
        while True:
            with database.session() as s:
                ep = s.get(WebhookEndpoint, endpoint_id)
                assert ep is not None and ep.enabled
                doc = manage.endpoint_document(ep)
            if doc["consecutive_failures"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert (doc["consecutive_failures"], doc["failing_since"]) == (0, None)
    assert_in_order_per_call(receiver.delivered())


def test_an_endpoint_that_answers_again_gets_its_backlog_at_once(
    database: Database, receiver: Receiver
) -> None:
    """After an outage the first success shows the receiver is back: events waiting out
    a long back-off (30-60 s here, up to an hour by default) are sent at once, in order,
    not at their next turn."""
    account, _ = failing(database, receiver, 503, calls=2)
    settings = replace(FAST, backoff_base=60.0, backoff_max=60.0, max_attempts=10)
    with running_worker(database, settings):
        deadline = time.monotonic() + 10
        while len(receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # each call's first event failed; the next try is 30-60 s away
        time.sleep(0.3)  # recorded
        receiver.behaviour = Behaviour(status=200)
        calls_with_events(database, account, 1)  # a new call's events: delivered, a success
        receiver.wait(lambda got: len({r.msg_id for r in got}) >= 3 * EVENTS_PER_CALL,
                      timeout=10)
    assert_in_order_per_call(receiver.delivered())


def test_redeliver_one_event_and_failed_range(database: Database, receiver: Receiver) -> None:
    account, _ = new_account(database)
    endpoint_id, _ = endpoint(database, account, receiver.url)
    receiver.behaviour = Behaviour(status=410)
    calls_with_events(database, account, 1)
    with running_worker(database, replace(FAST, max_attempts=1)):
        receiver.wait(lambda got: True)
        deadline = time.monotonic() + 10
        while not all(d.state == "failed" for d in deliveries(database)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        receiver.behaviour = Behaviour(status=200)
        with database.session() as s:
            assert manage.redeliver(s, account, endpoint_id) == EVENTS_PER_CALL
        receiver.wait(lambda got: len(got) >= EVENTS_PER_CALL)
        one = receiver.delivered()[2].msg_id
        with database.session() as s:
            assert manage.redeliver(s, account, endpoint_id, event_id=one) == 1
        receiver.wait(lambda got: len(got) >= EVENTS_PER_CALL + 1)
    assert receiver.delivered()[-1].msg_id == one  # same id: receivers de-duplicate
    assert_in_order_per_call(receiver.delivered())


def test_callback_url_receives_the_calls_events(database: Database, receiver: Receiver) -> None:
    account, _ = new_account(database)
    call_id = add_call(database, account, callback_url=receiver.url + "?call=1")
    with database.session() as s:
        secret = manage.rotate_callback_secret(s, account, 0).secret
    finish(database, call_id, sim_record(call_id))
    with running_worker(database):
        receiver.wait(lambda got: len(got) >= EVENTS_PER_CALL)
    assert all(r.path == "/hook?call=1" for r in receiver.delivered())
    wh = Webhook(secret)
    for r in receiver.delivered():
        wh.verify(r.body, r.headers)


def test_rotation_signs_with_both_secrets(database: Database, receiver: Receiver) -> None:
    account, _ = new_account(database)
    endpoint_id, old = endpoint(database, account, receiver.url)
    with database.session() as s:
        ep = manage.get_endpoint(s, account, endpoint_id)
        new = manage.rotate_secret(s, ep, 3600).secret
    calls_with_events(database, account, 1)
    with running_worker(database):
        receiver.wait(lambda got: len(got) >= EVENTS_PER_CALL)
    r = receiver.delivered()[0]
    assert len(r.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(r.body, r.headers)
    Webhook(new).verify(r.body, r.headers)


def test_two_workers_never_send_twice(database: Database, receiver: Receiver) -> None:
    receiver.behaviour = Behaviour(delay=0.01)
    account, _ = new_account(database)
    endpoint(database, account, receiver.url)
    calls_with_events(database, account, 10)
    with running_worker(database), running_worker(database):
        receiver.wait(lambda got: len(got) >= 10 * EVENTS_PER_CALL)
        time.sleep(0.3)
    ids = [r.msg_id for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 10 * EVENTS_PER_CALL
    assert_in_order_per_call(receiver.delivered())


@pytest.mark.parametrize("events", [["call.completed"]])
def test_subscription_filters_types(
    database: Database, receiver: Receiver, events: list[str]
) -> None:
    account, _ = new_account(database)
    endpoint(database, account, receiver.url, events=events)
    calls_with_events(database, account, 3)
    with running_worker(database):
        receiver.wait(lambda got: len(got) >= 3)
        time.sleep(0.2)
    assert [r.json["type"] for r in receiver.requests] == ["call.completed"] * 3
    # the sequence counts every event of the call, stored or not: the same number an
    # endpoint subscribed to every type sees
    assert {r.json["sequence"] for r in receiver.requests} == {EVENTS_PER_CALL}
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 3
        # an event no endpoint subscribes to is not stored
        stored = s.scalars(select(WebhookEvent.type).distinct()).all()
        assert stored == ["call.completed"]


# --------------------------------------------------------------- hand-over (a worker runs)
def _live_steps(call_id: str) -> list[tuple[dict, bool]]:  # type: ignore[type-arg]
    """A call's record as the runtime writes it: the first leg ringing, then the end."""
    final = sim_record(call_id)
    partial = copy.deepcopy(final)
    partial["legs"] = partial["legs"][:1]
    for key in ("answered_at", "ended_at"):
        partial["legs"][0][key] = None
    return [(partial, False), (final, True)]


def _write(database: Database, call_id: str, record: dict, final: bool) -> int:  # type: ignore[type-arg]
    with database.session() as s:
        if final:
            call_store.finish_call(s, call_id, record)
        return on_call_writes(s, [Write(call_id, record, final)])


def test_events_written_while_the_worker_runs_are_handed_over_in_order(
    database: Database, receiver: Receiver
) -> None:
    """The writer leases new deliveries to the running worker in their own transaction:
    no claim query; a slow receiver makes later events of a call queue behind earlier
    ones, and they still arrive in order."""
    receiver.behaviour = Behaviour(delay=0.05)
    account, _ = new_account(database)
    endpoint(database, account, receiver.url)
    with running_worker(database) as worker:
        calls = [add_call(database, account) for _ in range(3)]
        for step in range(2):
            for call_id in calls:
                record, final = _live_steps(call_id)[step]
                assert _write(database, call_id, record, final) > 0
        receiver.wait(lambda got: len(got) >= 3 * EVENTS_PER_CALL)
    assert worker.claimed == 0  # all of them came by hand-over
    per_call = assert_in_order_per_call(receiver.delivered())
    assert set(per_call) == set(calls)
    assert {d.state for d in deliveries(database)} == {"delivered"}


def test_a_failed_hand_over_is_not_overtaken(database: Database, receiver: Receiver) -> None:
    """The first event fails twice; what the writer adds meanwhile waits behind it (it is
    given back to the claim query), so the receiver still sees the call's events in order."""
    receiver.behaviour = Behaviour(status=lambda n: 500 if n < 2 else 200, delay=0.02)
    account, _ = new_account(database)
    endpoint(database, account, receiver.url)
    with running_worker(database):
        call_id = add_call(database, account)
        first, last = _live_steps(call_id)
        _write(database, call_id, *first)
        receiver.wait(lambda got: len(receiver.requests) >= 1)
        _write(database, call_id, *last)  # while the first event is failing
        receiver.wait(lambda got: len(got) >= EVENTS_PER_CALL)
    assert [r.status for r in receiver.requests[:3]] == [500, 500, 200]
    assert len({r.msg_id for r in receiver.requests[:3]}) == 1
    assert_in_order_per_call(receiver.delivered())


# --------------------------------------------------------------- endpoints in memory
def _stored_types(database: Database, call_id: str) -> list[str]:
    with database.session() as s:
        return list(s.scalars(select(WebhookEvent.type).where(WebhookEvent.call_id == call_id)))


def test_the_writer_remembers_endpoints_but_sees_changes(
    database: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Endpoints are remembered between writer passes: a change through this process
    (the API's ORM writes) applies to the next write at once; a plain SQL change (another
    process: the CLI against a running server) within the memory's bound."""
    from legato.webhooks import outbox

    monkeypatch.setattr(outbox._endpoint_memory, "seconds", 0.3)
    account, _ = new_account(database)
    endpoint_id, _ = endpoint(database, account, receiver.url, events=["call.completed"])
    first = calls_with_events(database, account, 1)[0]
    assert _stored_types(database, first) == ["call.completed"]
    with database.session() as s:  # as PATCH /v1/webhooks/endpoints/{id} does
        manage.update_endpoint(s, account, endpoint_id, events=["call.initiated"])
    second = calls_with_events(database, account, 1)[0]
    assert _stored_types(database, second) == ["call.initiated"]
    with database.engine.begin() as conn:  # no ORM event sees this
        t = WebhookEndpoint.__table__
        conn.execute(
            t.update().where(t.c.id == endpoint_id).values(enabled=False, disabled_by="user")
        )
    time.sleep(0.4)
    third = calls_with_events(database, account, 1)[0]
    assert _stored_types(database, third) == []


def test_back_off_doubles_with_jitter_up_to_its_cap_for_any_attempt_count() -> None:
    """Equal jitter: between half and all of base*2^(n-1), capped; an endpoint down for a
    week with LEGATO_WEBHOOK_MAX_ATTEMPTS in the thousands still gets a delay (2.0**1024
    would overflow)."""
    settings = WebhookSettings(backoff_base=2.0, backoff_max=3600.0)
    rng = random.Random(1)
    for attempts, full in ((1, 2.0), (2, 4.0), (5, 32.0), (12, 3600.0), (5000, 3600.0)):
        delays = [settings.backoff(attempts, rng) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays), (attempts, min(delays), max(delays))
        assert max(delays) - min(delays) > full / 4  # spread, not one instant
