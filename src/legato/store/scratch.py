"""Throw-away databases for tests and benchmarks: a fresh SQLite file or a freshly
created PostgreSQL database that is dropped afterwards, so parallel runs never collide."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

#: The PostgreSQL server used for scratch databases (its `test` database is the admin entry).
ADMIN_URL_ENV = "LEGATO_TEST_PG"
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def scratch_url(backend: str, directory: Path | None = None) -> Iterator[str]:
    """Yield the URL of an empty database of `backend` (`sqlite` or `postgresql`)."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            yield f"sqlite:///{Path(tmp) / 'legato.db'}"
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}")
    admin_url = make_url(os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL))
    name = f"legato_t_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
