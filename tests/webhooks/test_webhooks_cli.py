"""`legato webhooks ...` as an operator uses it against a live store: create (the secret
shown once), list and show (with a failing run as it grows), the delivery log, enable /
disable, delete; bad input is refused naming the field."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from typer.testing import CliRunner

from legato.cli.main import app
from legato.store.db import Database

from .kit import FAST, calls_with_events, new_account, running_worker
from .receiver import Behaviour, Receiver

runner = CliRunner()


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["webhooks", *args])
    assert result.exit_code == code, result.output
    return result.output


def test_an_operator_manages_an_endpoint_and_sees_its_failures(
    database: Database, receiver: Receiver
) -> None:
    account, _ = new_account(database)
    store = ("--db", database.url, "--account", account)
    created = cli("create", receiver.url, "--event", "call.completed", *store)
    assert "secret: whsec_" in created and "shown only now" in created
    (doc,) = json.loads(cli("list", *store, "--json"))
    assert doc["events"] == ["call.completed"] and "secret" not in doc
    assert (doc["consecutive_failures"], doc["failing_since"]) == (0, None)
    endpoint_id = doc["id"]

    receiver.behaviour = Behaviour(status=503)
    calls_with_events(database, account, 2)
    with running_worker(database, replace(FAST, disable_after=1000, max_attempts=1000)):
        deadline = time.monotonic() + 10
        while len(receiver.requests) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # attempts are recorded every 100 ms
        shown = cli("show", endpoint_id, *store)
        assert "enabled: True" in shown and "failing_since: " in shown
        assert " since " in cli("list", *store)  # the failures column says since when
        receiver.behaviour = Behaviour(status=200)
        receiver.wait(lambda got: len({r.msg_id for r in got}) >= 2)
        time.sleep(0.3)
    log = json.loads(cli("deliveries", endpoint_id, *store, "--json"))
    assert {d["state"] for d in log} == {"delivered"} and len(log) == 2
    for d in log:  # every attempt is in the log: the failures, then the success
        codes = [a["status_code"] for a in d["log"]]
        assert codes[-1] == 200 and set(codes[:-1]) <= {503}
    assert "failing_since" not in cli("show", endpoint_id, *store)  # the run is over

    cli("update", endpoint_id, "--disable", *store)
    (doc,) = json.loads(cli("list", *store, "--json"))
    assert (doc["enabled"], doc["disabled_by"]) == (False, "user")
    cli("update", endpoint_id, "--enable", *store)
    assert json.loads(cli("list", *store, "--json"))[0]["enabled"] is True

    refused = cli("create", "ftp://example.test/hook", *store, code=2)
    assert "url" in refused.lower()
    cli("delete", endpoint_id, *store)
    assert json.loads(cli("list", *store, "--json")) == []
