"""A `legato serve` process is killed with SIGKILL while it delivers ~100 calls' events and
is started again: every event arrives at least once, none out of order within its call,
and after de-duplication by `webhook-id` every call has exactly one `call.completed`."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import httpx
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from legato.store.db import Database
from legato.testing import ServeProcess
from legato.webhooks.models import WebhookDelivery, WebhookEvent

from .kit import new_account
from .receiver import Behaviour, Receiver

NUMBER = "+918047001000"
AGENTS = [f"+9198110001{i:02d}" for i in range(10)]
CUSTOMERS = [f"+9199110001{i:02d}" for i in range(10)]
BUSY = "+919811000999"
CALLS = 100
ENV = {
    "LEGATO_WEBHOOK_BACKOFF_BASE": "0.1",
    "LEGATO_WEBHOOK_BACKOFF_MAX": "0.5",
    "LEGATO_WEBHOOK_POLL_INTERVAL": "0.1",
    "LEGATO_WEBHOOK_TIMEOUT": "3",
    "LEGATO_WEBHOOK_LEASE": "4",
    "LEGATO_WEBHOOK_MAX_ATTEMPTS": "1000",
}


def _phones(path: Path) -> Path:
    lines = ["phones:"]
    lines += [f'  "{a}": {{answer_after: 0.5, hangup_after: 3}}' for a in AGENTS]
    lines += [f'  "{c}": {{answer_after: 0.5, hangup_after: 1}}' for c in CUSTOMERS]
    lines += [f'  "{BUSY}": {{busy: true}}', "default: {unreachable: true}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def serve(db_url: str, phones: Path, cwd: Path, port: int | None = None) -> ServeProcess:
    return ServeProcess("--db", db_url, "--phones", str(phones), cwd=cwd, env=ENV, port=port)


def _first_sightings(received: list) -> dict[str, list[tuple[int, str]]]:  # type: ignore[type-arg]
    seen: set[str] = set()
    per_call: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in received:
        if r.msg_id in seen:
            continue
        seen.add(r.msg_id)
        data = r.json["data"]
        per_call[data.get("call_id") or data["id"]].append((r.json["sequence"], r.json["type"]))
    return per_call


def test_sigkill_while_delivering_loses_nothing(
    database: Database, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.behaviour = Behaviour(delay=0.03)
    phones = _phones(tmp_path / "phones.yaml")
    _, key = new_account(database)
    auth = {"Authorization": f"Bearer {key}"}
    server = serve(database.url, phones, tmp_path)
    try:
        with httpx.Client(base_url=server.base, headers=auth, timeout=10) as http:
            assert http.post("/v1/numbers", json={"number": NUMBER}).status_code == 201
            ep = http.post("/v1/webhooks/endpoints", json={"url": receiver.url}).json()
            ids = []
            for i in range(CALLS):
                to = BUSY if i % 5 == 0 else CUSTOMERS[i % 10]
                r = http.post(
                    "/v1/calls",
                    json={
                        "service": "click_to_call",
                        "number": NUMBER,
                        "from": AGENTS[i % 10],
                        "to": to,
                    },
                )
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
        # kill while calls run and events are in flight to the (slow) receiver
        receiver.wait(lambda got: len(got) >= 150, timeout=30)
    finally:
        server.kill()
    before = len(receiver.requests)
    assert before < CALLS * 8, "the kill came after everything was delivered"
    with database.session() as s:
        assert s.scalars(
            select(WebhookDelivery.state).where(WebhookDelivery.state == "pending")
        ).first()
    server = serve(database.url, phones, tmp_path, port=server.port)
    try:
        receiver.wait(
            lambda got: (
                {r.json["data"]["id"] for r in got if r.json["type"] == "call.completed"}
                >= set(ids)
            ),
            timeout=90,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with database.session() as s:
                states = set(s.scalars(select(WebhookDelivery.state)))
            if states == {"delivered"}:
                break
            time.sleep(0.2)
        assert states == {"delivered"}
    finally:
        server.stop()

    got = receiver.delivered()
    wh = Webhook(ep["secret"])
    for r in got:
        wh.verify(r.body, r.headers)
    with database.session() as s:
        stored = {e.id: (e.call_id, e.sequence, e.type) for e in s.scalars(select(WebhookEvent))}
    received_ids = {r.msg_id for r in got}
    assert set(stored) <= received_ids, "an event was never delivered"
    per_call = _first_sightings(got)
    assert set(per_call) == set(ids)
    for call_id, seen in per_call.items():
        seqs = [s for s, _ in seen]
        assert seqs == list(range(1, len(seqs) + 1)), f"{call_id}: {seen}"
        types = [t for _, t in seen]
        assert types[0] == "call.initiated"
        assert types.count("call.completed") == 1 and types[-1] == "call.completed"
    # events were not just re-sent: they went out at least once, some twice around the kill
    assert len(got) >= len(stored)
