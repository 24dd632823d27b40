"""Every route needs a live key, and no account can read or change another's data.

The route list is taken from the app's OpenAPI document, so a route added later without a test here
fails `test_every_route_is_covered`.
"""

from __future__ import annotations

from typing import Any

from .api_testkit import AGENT, CUSTOMER, NUMBER, NUMBER_B

#: Each route with a request that would succeed for the owner (filled in per test).
ROUTES = {
    ("GET", "/v1/account/settings"),
    ("PUT", "/v1/account/settings"),
    ("POST", "/v1/numbers"),
    ("GET", "/v1/numbers"),
    ("GET", "/v1/numbers/{number}"),
    ("PUT", "/v1/numbers/{number}"),
    ("DELETE", "/v1/numbers/{number}"),
    ("POST", "/v1/calls"),
    ("GET", "/v1/calls"),
    ("GET", "/v1/calls/export.csv"),
    ("GET", "/v1/calls/{call_id}"),
    ("POST", "/v1/calls/{call_id}/hangup"),
    ("GET", "/v1/reports/summary"),
    ("POST", "/v1/sim/incoming"),
    ("GET", "/v1/numbers/{number}/blacklist"),
    ("POST", "/v1/numbers/{number}/blacklist"),
    ("DELETE", "/v1/numbers/{number}/blacklist/{entry}"),
    ("GET", "/v1/dnd/{number}"),
    ("POST", "/v1/webhooks/endpoints"),
    ("GET", "/v1/webhooks/endpoints"),
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}"),
    ("PATCH", "/v1/webhooks/endpoints/{endpoint_id}"),
    ("DELETE", "/v1/webhooks/endpoints/{endpoint_id}"),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret"),
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}/deliveries"),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/redeliver"),
    ("POST", "/v1/webhooks/callback-secret"),
}


def _app_routes(server: Any) -> set[tuple[str, str]]:
    paths = server.client.get("/openapi.json").json()["paths"]
    # The Legato API lives under /v1; compatibility layers (e.g. /2010-04-01 for Twilio
    # clients) authenticate their own way and are tested by their owners.
    return {
        (method.upper(), path)
        for path, ops in paths.items()
        if path.startswith("/v1/")
        for method in ops
    }


def test_every_route_is_covered(server: Any) -> None:
    assert _app_routes(server) == ROUTES


def test_every_route_refuses_missing_wrong_and_revoked_keys(server: Any) -> None:
    api = server.account()
    from legato.store import accounts

    with server.database.session() as s:
        old = accounts.issue_key(s, api.account_id)
        accounts.revoke_key(s, old.key_id)
    for method, path in sorted(ROUTES):
        url = (
            path.replace("{number}", NUMBER)
            .replace("{call_id}", "call_x")
            .replace("{endpoint_id}", "whe_x")
            .replace("{entry}", CUSTOMER)
        )
        for headers in (
            {},
            {"Authorization": "Bearer lgk_wrong"},
            {"Authorization": f"Bearer {old.api_key}"},
            {"Authorization": f"Basic {api.key}"},
        ):
            r = server.client.request(method, url, headers=headers, json={})
            assert r.status_code == 401, (method, url, headers, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["www-authenticate"].startswith("Bearer")


def test_no_account_sees_or_changes_another_accounts_data(server: Any) -> None:
    a, b = server.account("A"), server.account("B")
    a.add_number(NUMBER, {"lines": 3})
    b.add_number(NUMBER_B)
    call_id = a.call().json()["id"]
    a.wait(call_id)

    # account settings
    assert a.put("/v1/account/settings", json={"allowed_countries": ["IN"]}).status_code == 200
    assert b.get("/v1/account/settings").json()["allowed_countries"] is None
    # numbers
    assert [n["number"] for n in b.get("/v1/numbers").json()["data"]] == [NUMBER_B]
    assert b.get(f"/v1/numbers/{NUMBER}").status_code == 404
    assert b.put(f"/v1/numbers/{NUMBER}", json={"config": {"lines": 0}}).status_code == 404
    assert b.delete(f"/v1/numbers/{NUMBER}").status_code == 404
    assert a.get(f"/v1/numbers/{NUMBER}").json()["config"] == {"lines": 3}
    blacklist = f"/v1/numbers/{NUMBER}/blacklist"
    assert b.get(blacklist).status_code == 404
    assert b.post(blacklist, json={"entries": [CUSTOMER]}).status_code == 404
    assert a.post(blacklist, json={"entries": [CUSTOMER]}).status_code == 200
    assert b.delete(f"{blacklist}/{CUSTOMER}").status_code == 404
    assert a.get(blacklist).json()["entries"] == [CUSTOMER]
    assert a.delete(f"{blacklist}/{CUSTOMER}").status_code == 204
    # calls
    assert b.get(f"/v1/calls/{call_id}").status_code == 404
    assert b.post(f"/v1/calls/{call_id}/hangup").status_code == 404
    assert b.get("/v1/calls").json()["data"] == []
    assert b.get("/v1/calls", params={"number": NUMBER}).json()["data"] == []
    assert b.get("/v1/calls/export.csv").text.strip().count("\n") == 0  # header only
    r = b.post(
        "/v1/calls",
        json={"service": "click_to_call", "number": NUMBER, "from": AGENT, "to": CUSTOMER},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "account_number"
    # an idempotency key of A's means nothing to B
    key = {"Idempotency-Key": "same"}
    first = a.post(
        "/v1/calls",
        headers=key,
        json={"service": "click_to_call", "number": NUMBER, "from": AGENT, "to": CUSTOMER},
    )
    other = b.post(
        "/v1/calls",
        headers=key,
        json={"service": "click_to_call", "number": NUMBER_B, "from": AGENT, "to": CUSTOMER},
    )
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    # reports
    assert b.get("/v1/reports/summary").json()["totals"]["calls"] == 0
    assert a.get("/v1/reports/summary").json()["totals"]["calls"] >= 1
    # sim
    r = b.post("/v1/sim/incoming", json={"number": NUMBER, "from": CUSTOMER})
    assert r.status_code == 404
    for cid in (first.json()["id"], other.json()["id"]):
        (a if cid == first.json()["id"] else b).wait(cid)
    assert [c["id"] for c in a.get("/v1/calls").json()["data"]] == [first.json()["id"], call_id]


def test_webhook_endpoints_are_scoped_to_their_account(server: Any) -> None:
    a, b = server.account("A"), server.account("B")
    r = a.post("/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/hook"})
    assert r.status_code == 201, r.text
    ep = r.json()["id"]
    assert b.get("/v1/webhooks/endpoints").json()["data"] == []
    base = f"/v1/webhooks/endpoints/{ep}"
    assert b.get(base).status_code == 404
    assert b.request("PATCH", base, json={"enabled": False}).status_code == 404
    assert b.post(f"{base}/rotate-secret", json={}).status_code == 404
    assert b.get(f"{base}/deliveries").status_code == 404
    assert b.post(f"{base}/redeliver", json={"since": "2026-01-01T00:00:00Z"}).status_code == 404
    assert b.delete(base).status_code == 404
    assert a.get(base).json()["enabled"] is True  # untouched by B
