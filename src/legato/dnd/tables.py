"""The registry's own tables: one meta table plus one table per registry version.

Registry versions are data created at import time, not schema, so they live outside the
main store's Alembic migrations: ``dnd_versions`` is created with CREATE TABLE IF NOT
EXISTS semantics and each version ``N`` is a table ``dnd_vN`` (number BIGINT primary key,
categories SMALLINT mask). Exactly one row of ``dnd_versions`` has state ``current``, and
the view ``dnd_current`` selects from that version's table; both move in the one
transaction that is the atomic switch (DDL is transactional in SQLite and PostgreSQL).
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
)

meta = MetaData()

CURRENT_VIEW = "dnd_current"

versions = Table(
    "dnd_versions",
    meta,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("state", String(16), nullable=False, index=True),
    Column("numbers", BigInteger, nullable=False, default=0),
    Column("generation", Integer, nullable=False, default=0),
    Column("source", String(1000), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("switched_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    sqlite_autoincrement=True,
)


class VersionState(StrEnum):
    """Life of a registry version: loading → current → retired (or loading → failed)."""

    LOADING = "loading"
    CURRENT = "current"
    RETIRED = "retired"
    FAILED = "failed"


def table_name(version: int) -> str:
    """Name of the table holding registry version ``version``."""
    return f"dnd_v{int(version)}"


def version_table(version: int, *, primary_key: bool = True) -> Table:
    """The table of one version; without the key for PostgreSQL's load-then-index path."""
    return Table(
        table_name(version),
        MetaData(),
        Column("number", BigInteger, primary_key=primary_key, autoincrement=False),
        Column("categories", SmallInteger, nullable=False),
        sqlite_with_rowid=False,
    )


def ensure_meta(engine: Engine) -> None:
    """Create the meta table when it is missing (idempotent, safe to race)."""
    meta.create_all(engine, checkfirst=True)


def point_current_view(conn: Connection, version: int) -> None:
    """Make ``dnd_current`` select from ``version`` (inside the caller's transaction)."""
    conn.exec_driver_sql(f"DROP VIEW IF EXISTS {CURRENT_VIEW}")
    conn.exec_driver_sql(
        f"CREATE VIEW {CURRENT_VIEW} AS SELECT number, categories FROM {table_name(version)}"
    )
