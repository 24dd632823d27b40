"""Fixtures: a real Legato server (SQLite and PostgreSQL) and a real customer app."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from legato.store.scratch import scratch_url

# This folder cannot be a package: it would be imported as `twilio` and shadow the
# library. Its helpers are a plain module on the path instead.
sys.path.insert(0, str(Path(__file__).parent))

from twilio_testkit import PHONES, CustomerApp, LegatoServer


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with scratch_url(request.param) as url:
        yield url


@pytest.fixture
def legato(db_url: str, tmp_path: Path) -> Iterator[LegatoServer]:
    phones = tmp_path / "phones.yaml"
    phones.write_text(PHONES)
    server = LegatoServer(db_url, phones, speed=20.0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def customer() -> Iterator[CustomerApp]:
    app = CustomerApp()
    try:
        yield app
    finally:
        app.stop()
