"""Webhook tests run on SQLite and on the real PostgreSQL (a fresh database each)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from legato.store.db import Database
from legato.store.scratch import scratch_url

from .receiver import Receiver


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with scratch_url(request.param) as url:
        yield url


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()
