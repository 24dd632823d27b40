"""The operator's CLI over the same store: accounts and keys, numbers, calls, report."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from legato.cli.main import app
from legato.store import accounts
from legato.store.db import Database
from legato.twilio.ids import account_sid

from .api_testkit import BUSY, CUSTOMER, NUMBER

runner = CliRunner()


def cli(db_url: str, *args: str) -> Any:
    return runner.invoke(app, [*args, "--db", db_url])


def test_accounts_create_list_revoke_rotate(db_url: str) -> None:
    r = cli(db_url, "accounts", "create", "Acme", "--json")
    assert r.exit_code == 0, r.output
    created = json.loads(r.output)
    assert set(created) == {"id", "api_key", "twilio_account_sid"}
    assert created["api_key"].startswith("lgk_")
    assert created["twilio_account_sid"] == account_sid(created["id"])
    database = Database(db_url)
    with database.session() as s:
        assert accounts.account_id_for_key(s, created["api_key"]) == created["id"]
    listed = json.loads(cli(db_url, "accounts", "list", "--json").output)
    assert created["api_key"] not in json.dumps(listed)
    prefix = listed[0]["keys"][0]["prefix"]
    assert created["api_key"].startswith(prefix)
    rotated = json.loads(cli(db_url, "accounts", "rotate", created["id"], "--json").output)
    with database.session() as s:
        assert accounts.account_id_for_key(s, created["api_key"]) is None
        assert accounts.account_id_for_key(s, rotated["api_key"]) == created["id"]
    r = cli(db_url, "accounts", "revoke", rotated["key_id"])
    assert r.exit_code == 0 and "revoked" in r.output
    with database.session() as s:
        assert accounts.account_id_for_key(s, rotated["api_key"]) is None
    assert cli(db_url, "accounts", "rotate", "acc_nope").exit_code == 1
    assert cli(db_url, "accounts", "create", " ").exit_code == 2
    database.dispose()


def test_numbers_with_config_files(db_url: str, tmp_path: Path) -> None:
    assert cli(db_url, "accounts", "create", "Acme").exit_code == 0
    good = tmp_path / "good.yaml"
    good.write_text("lines: 2\nblacklist: ['+919811000009']\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lines: -3\noffice_hours: {timezone: Nowhere/City, days: {}}\n")
    r = cli(db_url, "numbers", "add", NUMBER, "--config", str(good), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["config"] == {"lines": 2, "blacklist": ["+919811000009"]}
    r = cli(db_url, "numbers", "configure", NUMBER, str(bad))
    assert r.exit_code == 2
    assert "bad.yaml: lines:" in r.output and "office_hours" in r.output
    shown = json.loads(cli(db_url, "numbers", "show", NUMBER, "--json").output)
    assert shown["config"]["lines"] == 2  # nothing changed by the bad file
    assert cli(db_url, "numbers", "add", "12345").exit_code == 2
    assert cli(db_url, "numbers", "remove", NUMBER).exit_code == 0
    assert json.loads(cli(db_url, "numbers", "list", "--json").output) == []


def test_calls_list_show_export_and_report(server: Any, db_url: str) -> None:
    api = server.account()
    api.add_number()
    ids = [api.wait(api.call(to=to).json()["id"])["id"] for to in (CUSTOMER, BUSY)]
    listed = json.loads(cli(db_url, "calls", "list", "--json").output)
    assert [c["id"] for c in listed] == ids[::-1]
    busy = json.loads(cli(db_url, "calls", "list", "--status", "BUSY_LEG2", "--json").output)
    assert [c["id"] for c in busy] == [ids[1]]
    shown = json.loads(cli(db_url, "calls", "show", ids[0], "--json").output)
    assert shown["status"] == "ANSWER" and len(shown["legs"]) == 2
    table = cli(db_url, "calls", "show", ids[1])
    assert table.exit_code == 0 and "BUSY_LEG2" in table.output and "486" in table.output
    rows = list(csv.DictReader(io.StringIO(cli(db_url, "calls", "export").output)))
    assert {r["id"] for r in rows} == set(ids)
    rep = json.loads(cli(db_url, "report", "--group-by", "status", "--json").output)
    assert rep["totals"]["calls"] == 2 and rep["totals"]["asr"] == 0.5
    assert "ASR" in cli(db_url, "report").output
    assert cli(db_url, "calls", "list", "--status", "NOPE").exit_code == 2
    assert cli(db_url, "report", "--group-by", "week").exit_code == 2
    server.account("Second")
    r = cli(db_url, "calls", "list")
    assert r.exit_code == 2 and "--account" in r.output
    ok = cli(db_url, "calls", "list", "--account", api.account_id, "--json")
    assert len(json.loads(ok.output)) == 2
