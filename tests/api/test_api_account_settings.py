"""Account-wide dialling permissions and DND scrubbing: defaults a number overrides."""

from __future__ import annotations

from typing import Any

from .api_testkit import AGENT, CUSTOMER, NUMBER


def test_account_permissions_apply_to_calls_and_a_number_overrides_them(server: Any) -> None:
    api = server.account()
    api.add_number(NUMBER)
    assert api.get("/v1/account/settings").json() == {
        "allowed_countries": None, "allowed_number_types": None, "dnd_scrub": None}
    r = api.put("/v1/account/settings", json={"allowed_countries": ["gb"]})
    assert r.status_code == 200 and r.json()["allowed_countries"] == ["GB"]

    refused = api.wait(api.call().json()["id"])
    assert refused["status"] == "NOTALLOWED"
    assert refused["admission"]["rule"] == "country"
    assert refused["legs"] == []

    # the number's own permissions win over the account's
    r = api.put(f"/v1/numbers/{NUMBER}", json={"config": {"allowed_countries": ["IN"]}})
    assert r.status_code == 200
    allowed = api.wait(api.call().json()["id"])
    assert allowed["status"] != "NOTALLOWED"
    assert [leg["number"] for leg in allowed["legs"]][:1] == [AGENT]


def test_bad_settings_name_the_item_and_change_nothing(server: Any) -> None:
    api = server.account()
    api.put("/v1/account/settings", json={"allowed_number_types": ["mobile"]})
    r = api.put("/v1/account/settings", json={"allowed_countries": ["IN", "India"]})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["allowed_countries[1]"], r.json()
    r = api.put("/v1/account/settings", json={"allowed_countries": ["IN"], "dnd": True})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "dnd"
    assert api.get("/v1/account/settings").json()["allowed_number_types"] == ["mobile"]


def test_dnd_scrub_off_for_the_account(server: Any) -> None:
    api = server.account()
    api.add_number(NUMBER, {"dnd": [CUSTOMER]})
    scrubbed = api.wait(api.call().json()["id"])
    assert scrubbed["status"] == "DND"
    api.put("/v1/account/settings", json={"dnd_scrub": False})
    dialled = api.wait(api.call().json()["id"])
    assert dialled["status"] != "DND"
