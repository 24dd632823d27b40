"""`/v1/webhooks` on the real app (store, runtime, sim network, delivery worker), with real
receivers on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from legato.api.app import ServerSettings, create_app
from legato.store.db import Database

from .kit import new_account
from .receiver import Receiver

NUMBER = "+918047001000"
AGENT = "+919811000001"
CUSTOMER = "+919811000002"
BUSY = "+919811000003"
PHONES = f"""
phones:
  "{AGENT}": {{answer_after: 0.2, hangup_after: 1}}
  "{CUSTOMER}": {{answer_after: 0.2, hangup_after: 0.5}}
  "{BUSY}": {{busy: true}}
default: {{unreachable: true}}
"""
FAST_ENV = {
    "LEGATO_WEBHOOK_BACKOFF_BASE": "0.05",
    "LEGATO_WEBHOOK_BACKOFF_MAX": "0.2",
    "LEGATO_WEBHOOK_POLL_INTERVAL": "0.05",
    "LEGATO_WEBHOOK_TIMEOUT": "2",
    "LEGATO_WEBHOOK_LEASE": "5",
}


class Client:
    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    def __call__(self, method: str, url: str, **kw: Any) -> Any:
        return self.client.request(method, url, headers=self.headers, **kw)


@pytest.fixture
def app_client(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Database]]:
    for k, v in FAST_ENV.items():
        monkeypatch.setenv(k, v)
    phones = tmp_path / "phones.yaml"
    phones.write_text(PHONES)
    app = create_app(ServerSettings(db_url=database.url, sim_speed=10.0, phones=phones))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, database


@pytest.fixture
def acme(app_client: tuple[TestClient, Database]) -> Client:
    client, database = app_client
    _, key = new_account(database, "Acme")
    return Client(client, key)


@pytest.fixture
def other(app_client: tuple[TestClient, Database]) -> Client:
    client, database = app_client
    _, key = new_account(database, "Other")
    return Client(client, key)


def test_endpoint_lifecycle(acme: Client) -> None:
    r = acme(
        "POST",
        "/v1/webhooks/endpoints",
        json={"url": "https://example.com/hooks", "events": ["call.completed"]},
    )
    assert r.status_code == 201, r.text
    ep = r.json()
    assert ep["secret"].startswith("whsec_") and ep["id"].startswith("wh_")
    assert r.headers["location"] == f"/v1/webhooks/endpoints/{ep['id']}"
    listed = acme("GET", "/v1/webhooks/endpoints").json()["data"]
    assert [e["id"] for e in listed] == [ep["id"]] and "secret" not in listed[0]
    got = acme("GET", f"/v1/webhooks/endpoints/{ep['id']}").json()
    assert got["events"] == ["call.completed"] and got["enabled"] and "secret" not in got
    r = acme("PATCH", f"/v1/webhooks/endpoints/{ep['id']}", json={"enabled": False, "events": []})
    assert r.status_code == 200
    assert r.json()["enabled"] is False and r.json()["disabled_by"] == "user"
    assert r.json()["events"] == []
    r = acme("PATCH", f"/v1/webhooks/endpoints/{ep['id']}", json={"enabled": True})
    assert r.json()["enabled"] and r.json()["disabled_reason"] is None
    rotated = acme(
        "POST", f"/v1/webhooks/endpoints/{ep['id']}/rotate-secret", json={"overlap_seconds": 600}
    ).json()
    assert rotated["secret"] != ep["secret"] and rotated["previous_secret_expires_at"]
    assert acme("DELETE", f"/v1/webhooks/endpoints/{ep['id']}").status_code == 204
    assert acme("GET", f"/v1/webhooks/endpoints/{ep['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"url": "ftp://example.com"}, "url", "http_url"),
        ({"url": "not a url"}, "url", "http_url"),
        ({"url": "https://x.example", "events": ["call.exploded"]}, "events[0]", "literal_error"),
        ({"url": "https://x.example", "colour": "red"}, "colour", "extra_forbidden"),
        ({}, "url", "missing"),
    ],
)
def test_bad_input_names_the_field_and_rule(
    acme: Client, body: dict[str, Any], field: str, rule: str
) -> None:
    r = acme("POST", "/v1/webhooks/endpoints", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    errors = r.json()["errors"]
    assert {"field": field, "rule": rule} in [
        {"field": e["field"], "rule": e["rule"]} for e in errors
    ]


def test_other_accounts_cannot_see_or_touch_an_endpoint(acme: Client, other: Client) -> None:
    ep = acme("POST", "/v1/webhooks/endpoints", json={"url": "https://example.com/h"}).json()
    base = f"/v1/webhooks/endpoints/{ep['id']}"
    assert other("GET", "/v1/webhooks/endpoints").json()["data"] == []
    for method, url, body in [
        ("GET", base, None),
        ("PATCH", base, {"enabled": False}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate-secret", None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/redeliver", {}),
    ]:
        r = other(method, url, json=body)
        assert r.status_code == 404, (method, url, r.text)
    assert acme("GET", base).json()["enabled"] is True
    anonymous = acme.client.get("/v1/webhooks/endpoints")
    assert anonymous.status_code == 401


def _place(client: Client, **extra: Any) -> str:
    body = {"service": "click_to_call", "number": NUMBER, "from": AGENT, "to": CUSTOMER, **extra}
    r = client("POST", "/v1/calls", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_calls_through_the_api_reach_endpoint_and_callback_url(
    acme: Client, receiver: Receiver
) -> None:
    assert acme("POST", "/v1/numbers", json={"number": NUMBER}).status_code == 201
    ep = acme("POST", "/v1/webhooks/endpoints", json={"url": receiver.url}).json()
    callback_secret = acme("POST", "/v1/webhooks/callback-secret").json()["secret"]
    answered = _place(acme)
    busy = _place(acme, to=BUSY, callback_url=receiver.url + "/per-call")
    receiver.wait(lambda got: sum(r.json["type"] == "call.completed" for r in got) >= 3, timeout=30)
    got = receiver.delivered()
    for r in got:
        secret = callback_secret if r.path.endswith("/per-call") else ep["secret"]
        Webhook(secret).verify(r.body, r.headers)
    completed = {
        (r.path, r.json["data"]["id"]): r.json["data"]
        for r in got
        if r.json["type"] == "call.completed"
    }
    assert completed[("/hook", answered)]["status"] == "ANSWER"
    assert completed[("/hook", busy)]["status"] == "BUSY_LEG2"
    assert completed[("/hook/per-call", busy)]["status"] == "BUSY_LEG2"
    # One start everywhere: the call's, when the runtime started it (after storing it).
    stored = acme("GET", f"/v1/calls/{answered}").json()["started_at"]
    initiated = next(
        r.json["data"]
        for r in got
        if r.json["type"] == "call.initiated" and r.json["data"]["id"] == answered
    )
    assert initiated["started_at"] == completed[("/hook", answered)]["started_at"] == stored
    # the log and a redelivery, through the API
    deadline = time.monotonic() + 10  # the receiver has it before the log records it
    while True:
        log = acme(
            "GET", f"/v1/webhooks/endpoints/{ep['id']}/deliveries", params={"call_id": answered}
        ).json()["data"]
        if log and all(d["state"] == "delivered" for d in log):
            break
        assert time.monotonic() < deadline, [(d["sequence"], d["state"]) for d in log]
        time.sleep(0.05)
    assert all(d["log"][-1]["status_code"] == 200 for d in log)
    first = min(log, key=lambda d: d["sequence"])
    assert first["event_type"] == "call.initiated"
    r = acme(
        "POST", f"/v1/webhooks/endpoints/{ep['id']}/redeliver", json={"event_id": first["event_id"]}
    )
    assert r.status_code == 202 and r.json() == {"queued": 1}
    receiver.wait(lambda got: sum(x.msg_id == first["event_id"] for x in got) >= 2)
    r = acme(
        "POST",
        f"/v1/webhooks/endpoints/{ep['id']}/redeliver",
        json={"event_id": first["event_id"], "since": "2026-01-01T00:00:00Z"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "event_id"
