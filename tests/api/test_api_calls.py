"""Calls through the API on the live sim runtime: statuses, live state, idempotency,
listing, CSV export and the summary report."""

from __future__ import annotations

import csv
import io
from typing import Any

from .api_testkit import AGENT, AGENT_2, BUSY, CUSTOMER, NUMBER, SLOW


def test_click_to_call_runs_to_answer_with_its_legs(server: Any) -> None:
    api = server.account()
    api.add_number()
    r = api.call(custom_data={"ticket": 7}, callback_url="http://127.0.0.1:9/hook")
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["state"] in ("queued", "in_progress") and created["status"] is None
    assert r.headers["location"] == f"/v1/calls/{created['id']}"
    doc = api.wait(created["id"])
    assert doc["status"] == "ANSWER" and doc["disconnected_by"] == "leg2"
    assert doc["picked_by"] == AGENT and doc["connected_to"] == CUSTOMER
    assert [(leg["leg"], leg["outcome"], leg["sip_code"]) for leg in doc["legs"]] == [
        (1, "ANSWERED", 200),
        (2, "ANSWERED", 200),
    ]
    assert doc["custom_data"] == {"ticket": 7}
    assert doc["callback_url"] == "http://127.0.0.1:9/hook"
    assert doc["billable_seconds"] == 10 and doc["events"]


def test_busy_customer_and_parallel_agents(server: Any) -> None:
    api = server.account()
    api.add_number()
    busy = api.wait(api.call(to=BUSY).json()["id"])
    assert (busy["status"], busy["disconnected_by"]) == ("BUSY_LEG2", "leg2")
    both = api.wait(api.call(**{"from": [AGENT_2, AGENT]}).json()["id"])
    assert both["status"] == "ANSWER" and both["picked_by"] == AGENT
    outbound = api.wait(api.call(service="outbound", to=BUSY, **{"from": None}).json()["id"])
    assert outbound["status"] == "BUSY"


def test_live_state_is_readable_while_the_call_runs(make_server: Any) -> None:
    server = make_server(speed=10.0)
    api = server.account()
    api.add_number()
    call_id = api.call(to=SLOW).json()["id"]
    live = None
    for _ in range(200):
        doc = api.get(f"/v1/calls/{call_id}").json()
        if doc["state"] == "in_progress" and len(doc["legs"]) == 2:
            live = doc
            break
        __import__("time").sleep(0.02)
    assert live is not None, "never saw the call in progress with leg 2 ringing"
    assert live["status"] is None and live["legs"][1]["outcome"] is None
    assert api.get("/v1/calls", params={"state": "in_progress"}).json()["data"][0]["id"] == call_id
    final = api.wait(call_id, timeout=10)
    assert final["status"] == "ANSWER"


def test_policy_outcome_comes_from_the_number_config(server: Any) -> None:
    api = server.account()
    api.add_number(config={"allowed_countries": ["GB"]})
    doc = api.wait(api.call().json()["id"])
    assert doc["status"] == "NOTALLOWED" and doc["legs"] == []
    assert doc["admission"]["verdict"] == "NOTALLOWED"


def test_idempotency_key_same_body_same_call_other_body_conflict(server: Any) -> None:
    api = server.account()
    api.add_number()
    key = {"Idempotency-Key": "order-42"}
    first = api.post(
        "/v1/calls",
        headers=key,
        json={"service": "click_to_call", "number": NUMBER, "from": AGENT, "to": CUSTOMER},
    )
    again = api.post(
        "/v1/calls",
        headers=key,
        json={"to": CUSTOMER, "from": [AGENT], "number": NUMBER, "service": "click_to_call"},
    )
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = api.post(
        "/v1/calls",
        headers=key,
        json={"service": "click_to_call", "number": NUMBER, "from": AGENT, "to": BUSY},
    )
    assert other.status_code == 409
    assert first.json()["id"] in other.json()["detail"]
    api.wait(first.json()["id"])
    assert len(api.get("/v1/calls").json()["data"]) == 1


def test_request_errors_name_field_and_rule(server: Any) -> None:
    api = server.account()
    api.add_number()
    cases = [
        ({"to": CUSTOMER, "service": "click_to_call", "number": NUMBER}, "(request)", "missing"),
        (
            {"service": "outbound", "number": NUMBER, "from": AGENT, "to": CUSTOMER},
            "(request)",
            "forbidden",
        ),
        (
            {"service": "click_to_call", "number": "+918047009999", "from": AGENT, "to": CUSTOMER},
            "number",
            "account_number",
        ),
        (
            {"service": "fax", "number": NUMBER, "from": AGENT, "to": CUSTOMER},
            "service",
            "literal_error",
        ),
        (
            {
                "service": "click_to_call",
                "number": NUMBER,
                "from": AGENT,
                "to": CUSTOMER,
                "ring_timeout": 0,
            },
            "ring_timeout",
            "greater_than",
        ),
        (
            {
                "service": "click_to_call",
                "number": NUMBER,
                "from": AGENT,
                "to": CUSTOMER,
                "callback_url": "ftp://x",
            },
            "callback_url",
            "url_scheme",
        ),
    ]
    for body, field, rule in cases:
        r = api.post("/v1/calls", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert (field, rule) in {(e["field"], e["rule"]) for e in r.json()["errors"]}, r.text
    r = api.post("/v1/calls", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "Traceback" not in r.text
    assert api.get("/v1/calls").json()["data"] == []


def test_list_filters_pagination_export_and_report(server: Any) -> None:
    api = server.account()
    api.add_number()
    ids = [api.call(to=to).json()["id"] for to in (CUSTOMER, BUSY, CUSTOMER, BUSY, CUSTOMER)]
    for call_id in ids:
        api.wait(call_id)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/calls", params=params).json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    busy = api.get("/v1/calls", params={"status": "BUSY_LEG2"}).json()["data"]
    assert {c["id"] for c in busy} == {ids[1], ids[3]}
    to_busy = api.get("/v1/calls", params={"to": BUSY, "disconnected_by": "leg2"}).json()["data"]
    assert {c["id"] for c in to_busy} == {ids[1], ids[3]}
    assert api.get("/v1/calls", params={"cursor": "garbage"}).status_code == 422
    assert api.get("/v1/calls", params={"status": "NOPE"}).status_code == 422

    r = api.get("/v1/calls/export.csv", params={"status": ["ANSWER"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["id"] for row in rows] == [ids[4], ids[2], ids[0]]
    assert rows[0]["status"] == "ANSWER" and rows[0]["to"] == CUSTOMER

    rep = api.get("/v1/reports/summary", params={"group_by": "status"}).json()
    assert rep["totals"]["calls"] == 5
    assert rep["totals"]["statuses"] == {"ANSWER": 3, "BUSY_LEG2": 2}
    assert rep["totals"]["asr"] == 0.6 and rep["totals"]["acd_seconds"] == 10.0
    assert {g["key"] for g in rep["groups"]} == {"ANSWER", "BUSY_LEG2"}
    bad = api.get("/v1/reports/summary", params={"since": "2026-01-02", "until": "2026-01-01"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "until"


def test_sim_incoming_call_to_a_number(server: Any) -> None:
    api = server.account()
    api.add_number(config={"flow": [{"dial": {"to": [AGENT]}}]})
    r = api.post("/v1/sim/incoming", json={"number": NUMBER, "from": CUSTOMER})
    assert r.status_code == 201, r.text
    doc = api.wait(r.json()["id"])
    assert doc["service"] == "incoming" and doc["status"] == "ANSWER"
    assert doc["picked_by"] == AGENT
    missed = server.account("Other")
    missed.add_number("+918047001001", config={"missed_call": True})
    r = missed.post("/v1/sim/incoming", json={"number": "+918047001001", "from": CUSTOMER})
    assert missed.wait(r.json()["id"])["status"] == "MISWIG"


def test_national_dnd_registry_scrubs_live_calls(
    db_url: str, make_server: Any, tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    from legato.cli.main import app

    registry = tmp_path / "ncpr.txt"
    registry.write_text(f"{BUSY}\n")
    r = CliRunner().invoke(app, ["dnd", "import", str(registry), "--db", db_url])
    assert r.exit_code == 0, r.output
    server = make_server()  # loads the registry's current version at start
    api = server.account()
    api.add_number()
    blocked = api.wait(api.call(to=BUSY).json()["id"])
    assert blocked["status"] == "DND" and blocked["legs"] == []
    assert blocked["admission"]["verdict"] == "DND"
    allowed = api.wait(api.call(to=CUSTOMER).json()["id"])
    assert allowed["status"] == "ANSWER"


def test_hangup_ends_a_live_call_as_the_platform(make_server: Any) -> None:
    server = make_server(speed=10.0)
    api = server.account()
    api.add_number()
    call_id = api.call(to=SLOW).json()["id"]
    for _ in range(200):  # wait until leg 2 rings
        doc = api.get(f"/v1/calls/{call_id}").json()
        if len(doc["legs"]) == 2:
            break
        __import__("time").sleep(0.02)
    r = api.post(f"/v1/calls/{call_id}/hangup")
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["state"] == "completed" and ended["disconnected_by"] == "platform"
    assert [leg["outcome"] for leg in ended["legs"]] == ["ANSWERED", "CANCELLED"]
    assert any(e["type"] == "terminated" for e in ended["events"])
    assert api.get(f"/v1/calls/{call_id}").json() == ended
    again = api.post(f"/v1/calls/{call_id}/hangup")
    assert again.status_code == 409 and "not in progress" in again.json()["detail"]
    assert api.post("/v1/calls/nope/hangup").status_code == 404


def test_the_record_times_count_from_when_the_call_started(server: Any) -> None:
    """The row is stored first and the call started after that commit: the start the
    call shows is the latter, so its end minus its start is its duration."""
    from datetime import datetime

    api = server.account()
    api.add_number()
    keyed = api.post(
        "/v1/calls",
        headers={"Idempotency-Key": "times-1"},
        json={"service": "click_to_call", "number": NUMBER, "from": AGENT, "to": CUSTOMER},
    )
    for r in (api.call(), keyed):
        accepted = datetime.fromisoformat(r.json()["started_at"])
        doc = api.wait(r.json()["id"])
        started = datetime.fromisoformat(doc["started_at"])
        ended = datetime.fromisoformat(doc["ended_at"])
        assert started > accepted  # stored, committed, then started
        assert abs((ended - started).total_seconds() - doc["duration_seconds"]) < 0.0015
        assert datetime.fromisoformat(doc["legs"][0]["dialed_at"]) >= started
