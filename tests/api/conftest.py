"""Route tests run the real app (store, runtime, sim network) on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from legato.api.app import ServerSettings, create_app
from legato.store import accounts
from legato.store.db import Database
from legato.store.scratch import scratch_url

from .api_testkit import AGENT, AGENT_2, BUSY, CUSTOMER, NUMBER, SLOW

PHONES = f"""
phones:
  "{AGENT}": {{answer_after: 1, hangup_after: 30}}
  "{AGENT_2}": {{no_answer: true}}
  "{CUSTOMER}": {{answer_after: 2, hangup_after: 10}}
  "{BUSY}": {{busy: true}}
  "{SLOW}": {{answer_after: 25, hangup_after: 5}}
default: {{unreachable: true}}
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with scratch_url(request.param) as url:
        yield url


@pytest.fixture
def phones_file(tmp_path: Path) -> Path:
    path = tmp_path / "phones.yaml"
    path.write_text(PHONES)
    return path


class Api:
    """A client bound to one account's key, with helpers the tests share."""

    def __init__(self, client: TestClient, key: str, account_id: str) -> None:
        self.client = client
        self.key = key
        self.account_id = account_id
        self.headers = {"Authorization": f"Bearer {key}"}

    def request(self, method: str, url: str, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kw)

    def get(self, url: str, **kw: Any) -> Any:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> Any:
        return self.request("PUT", url, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.request("DELETE", url, **kw)

    def add_number(self, number: str = NUMBER, config: dict[str, Any] | None = None) -> Any:
        body: dict[str, Any] = {"number": number}
        if config is not None:
            body["config"] = config
        r = self.post("/v1/numbers", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def call(self, **body: Any) -> Any:
        payload = {"service": "click_to_call", "number": NUMBER, "from": AGENT, "to": CUSTOMER}
        payload.update(body)
        return self.post("/v1/calls", json=payload)

    def wait(self, call_id: str, timeout: float = 15.0) -> dict[str, Any]:
        """Poll the call until it is completed."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.get(f"/v1/calls/{call_id}").json()
            if doc["state"] == "completed":
                return doc  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                raise AssertionError(f"call {call_id} still {doc['state']}: {doc}")
            time.sleep(0.02)


class Server:
    """The app running in a TestClient, and a way to add accounts."""

    def __init__(self, client: TestClient, database: Database) -> None:
        self.client = client
        self.database = database

    def account(self, name: str = "Acme") -> Api:
        with self.database.session() as s:
            issued = accounts.create_account(s, name)
        return Api(self.client, issued.api_key, issued.account_id)

    @property
    def runtime(self) -> Any:
        return self.client.app.state.runtime  # type: ignore[attr-defined]


ServerFactory = Callable[..., Server]


@pytest.fixture
def make_server(db_url: str, phones_file: Path) -> Iterator[ServerFactory]:
    """Start the app (lifespan and all) with a given sim speed."""
    with ExitStack() as stack:

        def start(speed: float = 100.0, phones: Path | None = phones_file) -> Server:
            app = create_app(ServerSettings(db_url=db_url, sim_speed=speed, phones=phones))
            client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
            database = Database(db_url)
            stack.callback(database.dispose)
            return Server(client, database)

        yield start


@pytest.fixture
def server(make_server: ServerFactory) -> Server:
    return make_server()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "schemathesis: property-based run against /openapi.json (bounded)"
    )
