"""Restarting the server loses nothing: a real `legato serve` process is killed with SIGKILL
mid-call and started again; the interrupted call is ended with a recorded reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from legato.service.runtime import INTERRUPTED, SHUTDOWN
from legato.store import accounts
from legato.store.db import Database
from legato.testing import ServeProcess

from .api_testkit import AGENT, CUSTOMER, NUMBER, SLOW


@pytest.fixture
def procs(db_url: str, phones_file: Path, tmp_path: Path) -> Iterator[Any]:
    started: list[ServeProcess] = []

    def start() -> ServeProcess:
        p = ServeProcess("--db", db_url, "--phones", str(phones_file), "--sim-speed", "5",
                         cwd=tmp_path)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


def _client(base: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def _wait(c: httpx.Client, call_id: str, pred: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = c.get(f"/v1/calls/{call_id}").json()
        if pred(doc):
            return doc  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, doc
        time.sleep(0.05)


def test_sigkill_mid_call_then_restart_ends_the_call_with_a_reason(db_url: str, procs: Any) -> None:
    database = Database(db_url)
    database.upgrade()
    with database.session() as s:
        key = accounts.create_account(s, "Acme").api_key
    database.dispose()
    first = procs()
    with _client(first.base, key) as c:
        assert c.post("/v1/numbers", json={"number": NUMBER}).status_code == 201
        done = c.post(
            "/v1/calls",
            json={
                "service": "click_to_call",
                "number": NUMBER,
                "from": AGENT,
                "to": "+919811000003",
            },
        ).json()["id"]
        done_doc = _wait(c, done, lambda d: d["state"] == "completed")
        live = c.post(
            "/v1/calls",
            json={"service": "click_to_call", "number": NUMBER, "from": AGENT, "to": SLOW},
        ).json()["id"]
        _wait(c, live, lambda d: len(d["legs"]) == 2)  # leg 2 ringing, persisted
    first.kill()

    second = procs()
    with _client(second.base, key) as c:
        doc = c.get(f"/v1/calls/{live}").json()
        assert doc["state"] == "completed" and doc["end_reason"] == INTERRUPTED
        assert doc["status"] == "NOANSWER_LEG2" and doc["disconnected_by"] == "platform"
        assert doc["legs"][0]["outcome"] == "ANSWERED"
        assert doc["legs"][1]["outcome"] == "NOANSWER" and doc["ended_at"] is not None
        assert c.get(f"/v1/calls/{done}").json() == done_doc  # untouched
        assert {x["id"] for x in c.get("/v1/calls").json()["data"]} == {live, done}
        # and the restarted server keeps serving new calls
        again = c.post(
            "/v1/calls",
            json={"service": "click_to_call", "number": NUMBER, "from": AGENT, "to": CUSTOMER},
        ).json()["id"]
        _wait(c, again, lambda d: len(d["legs"]) >= 1)
    second.stop()  # a graceful stop ends running calls at once

    third = procs()
    with _client(third.base, key) as c:
        doc = c.get(f"/v1/calls/{again}").json()
        assert doc["state"] == "completed", doc
        assert doc["end_reason"] in (SHUTDOWN, None)
    third.stop()


def test_database_outage_loses_no_call_state(db_url: str, make_server: Any) -> None:
    """PostgreSQL refuses every connection while a call runs; the runtime keeps the call's
    writes, retries, and stores the final record once the database is back."""
    if not db_url.startswith("postgresql"):
        pytest.skip("an outage is simulated by closing a PostgreSQL database to connections")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = make_server(speed=20.0)
    api = server.account()
    api.add_number()
    name = make_url(db_url).database
    admin = create_engine(make_url(db_url).set(database="test"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        call_id = api.call().json()["id"]
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        time.sleep(2.0)  # the call (≈13 virtual s at 20×) ends while the store is down
        assert server.runtime.metrics.completed >= 1
        # a new call cannot be stored: the client is told so at once, nothing is placed
        refused = api.call()
        assert refused.status_code == 503, refused.text
        assert refused.json()["type"].endswith("store-unavailable")
        assert refused.headers["retry-after"] == "5"
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    admin.dispose()
    doc = api.wait(call_id, timeout=30)
    assert doc["status"] == "ANSWER" and doc["end_reason"] is None
    assert [leg["outcome"] for leg in doc["legs"]] == ["ANSWERED", "ANSWERED"]
    assert server.runtime.metrics.completed == 1  # the refused call never ran
    after = api.call()  # and the service takes calls again
    assert after.status_code == 201, after.text
    assert api.wait(after.json()["id"], timeout=30)["status"] == "ANSWER"
