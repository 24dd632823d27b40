"""Property-based run of schemathesis against /openapi.json of a real server on loopback.

Bounded (a fixed number of examples per operation) so CI can afford it; marked
`schemathesis` so it can be selected or skipped (`-m "not schemathesis"`). It asserts that
no request makes the server fail (5xx) and every response matches the documented schema,
status codes, content types and headers.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis import checks

from legato.api.app import ServerSettings, create_app
from legato.store import accounts
from legato.store.db import Database

from .api_testkit import NUMBER

pytestmark = pytest.mark.schemathesis

CHECKS = (
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
)


class _Live:
    """uvicorn serving the app in a thread, stopped at the end."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from legato.store.scratch import scratch_url

    with scratch_url("sqlite") as url:
        phones = Path(tmp_path_factory.mktemp("phones")) / "phones.yaml"
        phones.write_text("default: {answer_after: 1, hangup_after: 2}\n")
        database = Database(url)
        database.upgrade()
        with database.session() as s:
            key = accounts.create_account(s, "Fuzz").api_key
        database.dispose()
        live = _Live(create_app(ServerSettings(db_url=url, sim_speed=1000, phones=phones)))
        httpx.post(
            live.base + "/v1/numbers",
            json={"number": NUMBER},
            headers={"Authorization": f"Bearer {key}"},
        ).raise_for_status()
        try:
            yield live.base, key
        finally:
            live.stop()


@pytest.fixture(scope="module")
def api_schema(live_api: tuple[str, str]) -> Any:
    return schemathesis.openapi.from_url(live_api[0] + "/openapi.json")


# The Legato API (/v1); compatibility layers are fuzzed by their owners' tests.
schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex="^/v1/")


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("LEGATO_FUZZ_EXAMPLES", "25")),
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_responses_match_the_schema(
    case: Any, live_api: tuple[str, str]
) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {live_api[1]}"}, checks=CHECKS)
