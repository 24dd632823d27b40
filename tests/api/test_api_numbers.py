"""Numbers CRUD: the `config` block is validated exactly as in scenario files."""

from __future__ import annotations

from typing import Any

NUMBER = "+918047001000"

CONFIG = {
    "lines": 2,
    "blacklist": ["+919811000009"],
    "office_hours": {"timezone": "Asia/Kolkata", "days": {"mon": "09:00-18:00"}},
    "flow": [{"answer": {"after": 1}}, {"dial": {"to": ["+919811000001"]}}],
}


def test_create_read_replace_delete(server: Any) -> None:
    api = server.account()
    created = api.add_number(NUMBER, CONFIG)
    assert created["number"] == NUMBER and created["config"]["lines"] == 2
    got = api.get(f"/v1/numbers/{NUMBER}")
    assert got.status_code == 200 and got.json()["config"] == created["config"]
    assert api.get("/v1/numbers/%2B918047001000").json()["id"] == created["id"]
    r = api.put(f"/v1/numbers/{NUMBER}", json={"config": {"missed_call": True}})
    assert r.status_code == 200 and r.json()["config"] == {"missed_call": True}
    assert [n["number"] for n in api.get("/v1/numbers").json()["data"]] == [NUMBER]
    assert api.delete(f"/v1/numbers/{NUMBER}").status_code == 204
    assert api.get(f"/v1/numbers/{NUMBER}").status_code == 404
    assert api.delete(f"/v1/numbers/{NUMBER}").status_code == 404


def test_config_errors_name_the_field_and_the_rule(server: Any) -> None:
    api = server.account()
    r = api.post("/v1/numbers", json={"number": NUMBER, "config": {"lines": -1, "colour": 1}})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    errors = {(e["field"], e["rule"]) for e in r.json()["errors"]}
    assert ("config.lines", "greater_than_equal") in errors
    assert ("config.colour", "extra_forbidden") in errors
    r = api.post(
        "/v1/numbers",
        json={
            "number": NUMBER,
            "config": {"office_hours": {"timezone": "Mars/Olympus", "days": {}}},
        },
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"].startswith("config.office_hours")
    assert "Mars/Olympus" in r.json()["errors"][0]["message"]
    r = api.post("/v1/numbers", json={"number": "12345"})
    assert r.status_code == 422 and r.json()["errors"][0] == {
        "field": "number",
        "location": "body",
        "rule": "e164",
        "message": r.json()["errors"][0]["message"],
    }
    r = api.get("/v1/numbers/not-a-number")
    assert r.status_code == 422 and r.json()["errors"][0]["location"] == "path"
    assert api.get("/v1/numbers").json()["data"] == []  # nothing was stored


def test_number_belongs_to_one_account(server: Any) -> None:
    a, b = server.account("A"), server.account("B")
    a.add_number(NUMBER)
    r = b.post("/v1/numbers", json={"number": NUMBER})
    assert r.status_code == 409 and r.json()["type"].endswith("number-taken")
