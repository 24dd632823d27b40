"""Blacklist entries per number and DND lookups, and their effect on live calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from legato.cli.main import app

from .api_testkit import BUSY, CUSTOMER, NUMBER


def test_blacklist_entries_block_incoming_callers(server: Any) -> None:
    api = server.account()
    api.add_number(config={"lines": 4, "flow": [{"dial": {"to": ["+919811000001"]}}]})
    url = f"/v1/numbers/{NUMBER}/blacklist"
    assert api.get(url).json() == {"number": NUMBER, "entries": []}
    r = api.post(url, json={"entries": [CUSTOMER, "+9198119*", CUSTOMER]})
    assert r.status_code == 200, r.text
    assert r.json()["entries"] == [CUSTOMER, "+9198119*"]
    bad = api.post(url, json={"entries": ["+919811000005", "not a number"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "entries[1]"
    assert api.get(url).json()["entries"] == [CUSTOMER, "+9198119*"]  # unchanged
    assert api.get(f"/v1/numbers/{NUMBER}").json()["config"]["lines"] == 4  # rest kept
    blocked = api.post("/v1/sim/incoming", json={"number": NUMBER, "from": CUSTOMER}).json()
    doc = api.wait(blocked["id"])
    assert doc["status"] == "BLOCKED" and doc["disconnected_by"] == "platform"
    assert api.delete(f"{url}/{CUSTOMER}").status_code == 204
    assert api.delete(f"{url}/{CUSTOMER}").status_code == 404
    assert api.get(url).json()["entries"] == ["+9198119*"]
    allowed = api.post("/v1/sim/incoming", json={"number": NUMBER, "from": CUSTOMER}).json()
    assert api.wait(allowed["id"])["status"] == "ANSWER"


def test_dnd_lookup_answers_from_the_imported_registry(
    db_url: str, make_server: Any, tmp_path: Path
) -> None:
    before = make_server()
    api = before.account()
    empty = api.get(f"/v1/dnd/{BUSY}").json()
    assert empty["version"] is None and empty["dnd"] is False
    registry = tmp_path / "ncpr.csv"
    registry.write_text(f"{BUSY},1|3\n{CUSTOMER}\n")
    r = CliRunner().invoke(app, ["dnd", "import", str(registry), "--db", db_url])
    assert r.exit_code == 0, r.output
    after = make_server()
    api = after.account("Second")
    partial = api.get(f"/v1/dnd/{BUSY}").json()
    assert partial["registered"] and partial["categories"] == [1, 3]
    assert partial["dnd"] is True and partial["version"] is not None
    assert api.get(f"/v1/dnd/{BUSY}", params={"category": 2}).json()["dnd"] is False
    assert api.get(f"/v1/dnd/{BUSY}", params={"category": 3}).json()["dnd"] is True
    assert api.get(f"/v1/dnd/{CUSTOMER}").json()["fully_blocked"] is True
    assert api.get("/v1/dnd/+919811000077").json()["registered"] is False
    assert api.get("/v1/dnd/12").status_code == 422
    r = api.get(f"/v1/dnd/{BUSY}", params={"category": 2, "transactional": True})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "category"
