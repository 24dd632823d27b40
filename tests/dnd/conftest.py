"""Fixtures: a real SQLite file and a real PostgreSQL database per test session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from legato.dnd import DndRegistry

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A uniquely named PostgreSQL database, dropped when the session ends."""
    name = f"legato_dnd_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _drop_registry_tables(url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as conn:
        conn.execute(text("DROP VIEW IF EXISTS dnd_current"))
        names = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'dnd\\_%'")
        ).scalars()
        for name in list(names):
            conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
        conn.commit()
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty registry database: a fresh SQLite file, or the session's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'legato.db'}"
        return
    url: str = request.getfixturevalue("pg_database")
    _drop_registry_tables(url)
    yield url
    _drop_registry_tables(url)


@pytest.fixture
def registry(db_url: str) -> Iterator[DndRegistry]:
    reg = DndRegistry(db_url)
    yield reg
    reg.close()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path
