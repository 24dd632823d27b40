"""The shipped migrations build exactly the models' schema, both ways, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from legato.store.db import Database
from legato.store.models import Base


def test_upgrade_reaches_head_and_matches_the_models(db: Database) -> None:
    assert db.current_revision() == db.head_revision()
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_upgrade_is_idempotent_and_downgrade_removes_everything(db: Database) -> None:
    db.upgrade()  # a second `legato serve` start
    assert db.current_revision() == db.head_revision()
    db.downgrade("base")
    tables = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    db.upgrade()
    assert {"accounts", "api_keys", "numbers", "calls", "legs", "events"} <= set(
        inspect(db.engine).get_table_names()
    )
